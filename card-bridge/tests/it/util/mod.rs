//! Shared helpers of the integration tests: a world of one LUS, one agency
//! and cards, and the invariant checks every test ends with.
#![allow(dead_code)]

use std::collections::BTreeMap;

use ledger::{Amount, BankAccount, CardId, LusId, Timestamp};
use tempfile::TempDir;
use vc_card_bridge::agency::{Agency, DurableAgency};
use vc_card_bridge::card::{SmartCard, TxKind};
use vc_card_bridge::crypto::{MasterKeys, Suite};
use vc_card_bridge::flows::CardTerminal;
use vc_card_bridge::lus::{LoadUnloadServer, LusState};
use vc_card_bridge::wire::{Direction, Outcome};

pub const NOW: Timestamp = Timestamp(1_000);
/// Far in the future by every clock: the terminals' (`NOW`) and the LUS's
/// own (the wall clock), which checks the expiry of every registered card.
pub const EXPIRY: Timestamp = Timestamp(4_102_444_800);

pub fn cents(n: u64) -> Amount {
    Amount::from_minor(n)
}

pub fn holder() -> BankAccount {
    BankAccount::new("holder-1").expect("valid account")
}

pub struct World {
    pub dir: TempDir,
    pub masters: MasterKeys,
    pub lus: LoadUnloadServer,
    pub agency: DurableAgency,
}

impl World {
    pub fn new(suite: Suite) -> World {
        let dir = tempfile::tempdir().expect("tempdir");
        let masters = MasterKeys::random(suite);
        let lus = LoadUnloadServer::open(&dir.path().join("lus.redb"), LusId(1), (&masters).into())
            .expect("open lus");
        let agency = DurableAgency::open(&dir.path().join("agency.redb")).expect("open agency");
        World {
            dir,
            masters,
            lus,
            agency,
        }
    }

    pub fn card(&self, n: u8) -> SmartCard {
        SmartCard::issue(
            &self.masters,
            CardId::from_bytes([n; 8]),
            EXPIRY,
            cents(100_000),
        )
        .expect("issue card")
    }

    pub fn terminal(&self) -> CardTerminal<'_, DurableAgency> {
        CardTerminal::new(&self.lus, &self.agency)
    }

    /// Reopens the LUS and the agency from their files, as after a crash.
    pub fn restart(self) -> World {
        let World {
            dir,
            masters,
            lus,
            agency,
        } = self;
        drop(lus);
        drop(agency);
        let lus = LoadUnloadServer::open(&dir.path().join("lus.redb"), LusId(1), (&masters).into())
            .expect("reopen lus");
        let agency = DurableAgency::open(&dir.path().join("agency.redb")).expect("reopen agency");
        World {
            dir,
            masters,
            lus,
            agency,
        }
    }

    /// Σ committed loads − Σ committed unloads per card, from the LUS log.
    pub fn lus_net(&self) -> BTreeMap<CardId, i128> {
        let mut out = BTreeMap::new();
        for r in self.lus.records().expect("records") {
            if r.state == LusState::Committed {
                let a = i128::from(r.l1.amount.minor_units());
                *out.entry(r.card()).or_insert(0) += match r.l1.direction {
                    Direction::Load => a,
                    Direction::Unload => -a,
                };
            }
        }
        out
    }
}

/// Σ purchases recorded on the card (committed).
pub fn card_purchases(card: &SmartCard) -> i128 {
    card.log()
        .expect("log")
        .iter()
        .filter(|r| r.kind == TxKind::Purchase && r.outcome == Outcome::Committed)
        .map(|r| i128::from(r.amount.minor_units()))
        .sum()
}

/// Every NT the card ever used has exactly one outcome, and the LUS agrees
/// with the card about every load and unload both know.
pub fn assert_one_outcome_per_nt(world: &World, card: &SmartCard) {
    let info = card.info().expect("info");
    assert!(
        info.pending.is_none(),
        "card still has a pending transaction: {:?}",
        info.pending
    );
    let log = card.log().expect("log");
    for nt in 1..=info.nt {
        let on_card: Vec<_> = log.iter().filter(|r| r.nt == nt).collect();
        assert_eq!(
            on_card.len(),
            1,
            "NT {nt} has {} outcomes on the card",
            on_card.len()
        );
        let rec = on_card[0];
        if let Some(at_lus) = world.lus.record(&info.card, nt).expect("record") {
            let expected = match rec.outcome {
                Outcome::Committed => LusState::Committed,
                Outcome::Rejected => LusState::Rejected,
            };
            assert_eq!(at_lus.state, expected, "NT {nt}: LUS and card disagree");
        }
    }
}

/// Σ card balances = Σ loads − Σ unloads − Σ purchases (LUS view for loads
/// and unloads, card log for purchases), card by card.
pub fn assert_conserved(world: &World, cards: &[&SmartCard]) {
    let net = world.lus_net();
    for card in cards {
        let info = card.info().expect("info");
        let expected = net.get(&info.card).copied().unwrap_or(0) - card_purchases(card);
        assert_eq!(
            i128::from(info.balance.minor_units()),
            expected,
            "card balance differs from loads − unloads − purchases"
        );
    }
}

/// The agency has no open guarantee and holds exactly the LUS's finished
/// records; the holder paid for exactly the committed loads.
pub fn assert_agency_agrees(world: &World, cards: &[&SmartCard]) {
    for card in cards {
        let id = card.id().expect("id");
        assert!(
            world.agency.open_guarantees(&id).expect("open").is_empty(),
            "agency still has open guarantees"
        );
    }
    let lus_final: Vec<_> = world
        .lus
        .records()
        .expect("records")
        .into_iter()
        .filter(|r| r.state.is_final())
        .map(|r| (r.card(), r.nt(), r.state == LusState::Committed))
        .collect();
    let ag_final: Vec<_> = world
        .agency
        .all_finished()
        .expect("finished")
        .into_iter()
        .filter(|r| world.lus.record(&r.card, r.nt).expect("record").is_some())
        .map(|r| (r.card, r.nt, r.outcome == Outcome::Committed))
        .collect();
    assert_eq!(
        lus_final, ag_final,
        "agency and LUS disagree on finished records"
    );
    let acc = world.agency.holder(&holder()).expect("holder");
    let committed = |d: Direction| -> u64 {
        world
            .lus
            .records()
            .expect("records")
            .iter()
            .filter(|r| r.state == LusState::Committed && r.l1.direction == d)
            .map(|r| r.l1.amount.minor_units())
            .sum()
    };
    assert_eq!(
        acc.paid_for_loads.minor_units() - acc.refunded.minor_units(),
        committed(Direction::Load),
        "holder paid for other than the committed loads"
    );
    assert_eq!(
        acc.credited_from_unloads.minor_units(),
        committed(Direction::Unload),
        "holder credited other than the committed unloads"
    );
}

pub mod issuer;
