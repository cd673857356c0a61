//! A model-based test of the card system against the holders of tampered
//! cards: seeded random sequences of loads, unloads, purchases at two
//! devices, collections and clearings over a directory-backed
//! `CardSystem`, with the card images edited between operations as their
//! holders would (balance, counter, limit, expiry, and images replayed from
//! an earlier copy). One card is issued already expired by the LUS's clock
//! while the terminal's clock says it is good.
//!
//! After every step, from the servers' own records: no card has been paid
//! out (unloads and collected purchases) more than was loaded onto it; the
//! LUS's committed loads and unloads are exactly those the operations
//! reported; merchants are credited exactly the cards' collected
//! purchases; the expired card never loads or unloads; and an honest card
//! (never edited) is never refused for a false claim. At the end the
//! auditor's reading of the records finds no card overspent and agrees
//! with the agency. Set VC_TAMPER_SEED to replay one seed.

use crate::util;

use std::collections::BTreeMap;

use ledger::{Amount, BankAccount, CardId, LusId, Timestamp};
use util::*;
use vc_card_bridge::audit::{CardProblem, audit_card_records};
use vc_card_bridge::card::persist::{self, Segment};
use vc_card_bridge::card::{Eeprom, SmartCard};
use vc_card_bridge::crypto::{CardKeys, Suite};
use vc_card_bridge::flows::FlowError;
use vc_card_bridge::system::{CardSystem, SystemError};
use vc_card_bridge::wire::{Direction, Outcome, PsamId};

/// splitmix64, as in `simulation.rs`.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const LIMIT_MINOR: u64 = 50_000;
const EXPIRED: usize = 2;

/// What the holder of an image writes into it.
enum Edit {
    Balance(Amount),
    CounterForward(u32),
    Limit(Amount),
    Expiry(Timestamp),
}

fn edit(dir: &std::path::Path, card: &CardId, e: Edit) {
    let path = dir.join(format!("card-{card}.img"));
    let mut eeprom = Eeprom::load(&path, SmartCard::IMAGE_BYTES).expect("image");
    eeprom.power_on();
    let update = match e {
        Edit::Balance(b) => (Segment::Balance, persist::encode(Segment::Balance, &b)),
        Edit::CounterForward(k) => {
            let nt: u32 = persist::read(&eeprom, Segment::Counter).expect("counter");
            let nt = nt.saturating_add(k);
            (Segment::Counter, persist::encode(Segment::Counter, &nt))
        }
        Edit::Limit(_) | Edit::Expiry(_) => {
            // The personalisation's fields, in order (postcard encodes a
            // struct as the tuple of its fields).
            let (id, mut expiry, mut max, keys): (CardId, Timestamp, Amount, CardKeys) =
                persist::read(&eeprom, Segment::Personalisation).expect("personalisation");
            match e {
                Edit::Limit(m) => max = m,
                Edit::Expiry(t) => expiry = t,
                _ => {}
            }
            (
                Segment::Personalisation,
                persist::encode(Segment::Personalisation, &(id, expiry, max, keys)),
            )
        }
    };
    persist::commit(&mut eeprom, &[(update.0, update.1.expect("encode"))]).expect("commit");
    eeprom.save(&path).expect("save");
}

#[derive(Default, Clone, Copy)]
struct CardModel {
    loaded: u64,
    unloaded: u64,
    tampered: bool,
}

fn check(seed: u64, step: usize, sys: &CardSystem, ids: &[CardId], model: &[CardModel]) {
    let mut spent_total = 0u64;
    for (i, id) in ids.iter().enumerate() {
        let s = sys.lus.standing(id).expect("standing");
        let spent = sys.collection.spent_by(id).expect("spent").minor_units();
        spent_total += spent;
        let at = format!("seed {seed} step {step} card {i}");
        assert_eq!(s.loaded.minor_units(), model[i].loaded, "{at}: loads");
        assert_eq!(s.unloaded.minor_units(), model[i].unloaded, "{at}: unloads");
        assert!(
            s.unloaded.minor_units() + spent <= s.loaded.minor_units(),
            "{at}: paid out {} + {spent} of {} taken in",
            s.unloaded,
            s.loaded
        );
        if i == EXPIRED {
            assert_eq!(
                model[i].loaded + model[i].unloaded,
                0,
                "{at}: expired card moved value"
            );
        }
    }
    let credited = sys
        .collection
        .merchant_credit(&BankAccount::new("shop-a").expect("account"))
        .expect("credit")
        .minor_units()
        + sys
            .collection
            .merchant_credit(&BankAccount::new("shop-b").expect("account"))
            .expect("credit")
            .minor_units();
    assert_eq!(credited, spent_total, "seed {seed} step {step}: credits");
}

/// An operation's result, for the honest-card rule: a card never edited is
/// never refused for a claim its history contradicts.
fn honest_not_refused<T>(seed: u64, step: usize, tampered: bool, r: &Result<T, SystemError>) {
    if tampered {
        return;
    }
    if let Err(SystemError::Flow(FlowError::Lus(e)) | SystemError::Lus(e)) = r {
        assert!(
            !e.is_false_claim(),
            "seed {seed} step {step}: an honest card was refused: {e}"
        );
    }
}

fn run(seed: u64, n_ops: usize) {
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().expect("tempdir");
    let sys = CardSystem::open(dir.path(), LusId(1), Suite::Tdes).expect("open");
    let ids: Vec<CardId> = (1..=3).map(|n| CardId::from_bytes([n; 8])).collect();
    for (i, id) in ids.iter().enumerate() {
        // The expired card expires now by the LUS's clock; the terminals
        // below run at `NOW`, long before, so the card itself accepts.
        let expiry = if i == EXPIRED {
            Timestamp::now()
        } else {
            EXPIRY
        };
        sys.issue_card(*id, expiry, cents(LIMIT_MINOR))
            .expect("issue");
    }
    let shops = [
        (
            PsamId([0xa1; 8]),
            BankAccount::new("shop-a").expect("account"),
        ),
        (
            PsamId([0xa2; 8]),
            BankAccount::new("shop-b").expect("account"),
        ),
    ];
    let mut model = vec![CardModel::default(); ids.len()];
    let mut copies: BTreeMap<usize, Vec<u8>> = BTreeMap::new();
    // The expired card's holder has moved its expiry on from the start.
    edit(dir.path(), &ids[EXPIRED], Edit::Expiry(EXPIRY));
    model[EXPIRED].tampered = true;

    for step in 0..n_ops {
        let i = rng.below(ids.len() as u64) as usize;
        let id = ids[i];
        let amount = cents(1 + rng.below(20_000));
        let image = dir.path().join(format!("card-{id}.img"));
        match rng.below(16) {
            0..=2 => {
                let r = sys.load(&id, amount, &holder(), NOW);
                honest_not_refused(seed, step, model[i].tampered, &r);
                if let Ok(rec) = r
                    && rec.outcome == Outcome::Committed
                {
                    assert_eq!(rec.direction, Direction::Load);
                    model[i].loaded += rec.amount.minor_units();
                }
            }
            3..=4 => {
                let r = sys.unload(&id, amount, &holder(), NOW);
                honest_not_refused(seed, step, model[i].tampered, &r);
                if let Ok(rec) = r
                    && rec.outcome == Outcome::Committed
                {
                    model[i].unloaded += rec.amount.minor_units();
                }
            }
            5..=7 => {
                let (psam, merchant) = &shops[rng.below(2) as usize];
                let mut device = sys.psam(*psam, merchant).expect("psam");
                let _ = sys.pay(&id, &mut device, amount, NOW);
                if rng.below(2) == 0 {
                    sys.collect(&mut device)
                        .unwrap_or_else(|e| panic!("seed {seed} step {step}: collect: {e}"));
                }
            }
            8 => {
                sys.clear()
                    .unwrap_or_else(|e| panic!("seed {seed} step {step}: clear: {e}"));
            }
            9 => {
                copies.insert(i, std::fs::read(&image).expect("copy"));
            }
            10 => {
                if let Some(copy) = copies.get(&i) {
                    std::fs::write(&image, copy).expect("replay the copy");
                    model[i].tampered = true;
                }
            }
            11 => {
                edit(
                    dir.path(),
                    &id,
                    Edit::Balance(cents(rng.below(2 * LIMIT_MINOR))),
                );
                model[i].tampered = true;
            }
            12 => {
                edit(
                    dir.path(),
                    &id,
                    Edit::CounterForward(1 + rng.below(40) as u32),
                );
                model[i].tampered = true;
            }
            13 => {
                edit(dir.path(), &id, Edit::Limit(cents(LIMIT_MINOR * 10)));
                model[i].tampered = true;
            }
            _ => {
                let _ = sys.resolve(&id);
            }
        }
        check(seed, step, &sys, &ids, &model);
    }

    // Everything collected and cleared; the auditor reads the records.
    for (psam, merchant) in &shops {
        let mut device = sys.psam(*psam, merchant).expect("psam");
        sys.collect(&mut device)
            .unwrap_or_else(|e| panic!("seed {seed}: final collect: {e}"));
    }
    sys.clear()
        .unwrap_or_else(|e| panic!("seed {seed}: final clearing: {e}"));
    check(seed, n_ops, &sys, &ids, &model);
    // The auditor reads the files when the card system is not running.
    drop(sys);
    let report = audit_card_records(dir.path()).expect("audit");
    for card in &report.cards {
        for p in &card.problems {
            assert!(
                matches!(p, CardProblem::ImageAboveHistory { .. }),
                "seed {seed}: card {}: {p:?}",
                card.card
            );
            let i = ids.iter().position(|c| *c == card.card).expect("ours");
            assert!(
                model[i].tampered,
                "seed {seed}: an honest card flagged: {p:?}"
            );
        }
    }
    for (i, m) in model.iter().enumerate() {
        if !m.tampered {
            let audit = report
                .cards
                .iter()
                .find(|c| c.card == ids[i])
                .expect("audited");
            assert!(audit.problems.is_empty(), "seed {seed}: honest card {i}");
        }
    }
}

#[test]
fn tampered_cards_never_take_out_more_than_was_put_in() {
    if let Some(seed) = std::env::var("VC_TAMPER_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        run(seed, 300);
        return;
    }
    for seed in [1, 2, 3, 4, 5, 6] {
        run(seed, 120);
    }
}
