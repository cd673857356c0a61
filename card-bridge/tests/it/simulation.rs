//! A seeded simulation: random loads, unloads, purchases, lost messages,
//! power cuts after random writes, server restarts and clearings over three
//! cards, then everything is resolved and collected. It checks, from three
//! independent records (the cards, the LUS log, the collection server), that
//! Σ card balances = Σ loads − Σ unloads − Σ purchases, that every NT still
//! in a card's log has one outcome the LUS agrees with, and that the agency
//! holds the LUS's records. Set VC_SIM_SEED to replay one seed.

use crate::util;

use ledger::BankAccount;
use util::*;
use vc_card_bridge::card::{SmartCard, TearAfter};
use vc_card_bridge::clearing::clear;
use vc_card_bridge::collection::CollectionServer;
use vc_card_bridge::crypto::{MasterKey, Suite};
use vc_card_bridge::flows::LossPoint;
use vc_card_bridge::lus::LusState;
use vc_card_bridge::psam::Psam;
use vc_card_bridge::wire::{Direction, Outcome, PsamId};

/// splitmix64: small, deterministic, good enough to pick operations.
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

fn run(seed: u64, n_ops: usize) {
    let mut rng = Rng(seed);
    let mut w = World::new(if seed.is_multiple_of(2) {
        Suite::Tdes
    } else {
        Suite::Aes256
    });
    let batch_master = MasterKey::random(w.masters.suite());
    let mut psam = Psam::new(
        PsamId([7; 8]),
        w.masters.purchase.clone(),
        batch_master.clone(),
    );
    let merchant = BankAccount::new("merchant-sim").expect("account");
    let mut cards: Vec<SmartCard> = (1..=3).map(|n| w.card(n)).collect();
    let mut batches = Vec::new();

    for step in 0..n_ops {
        let i = rng.below(3) as usize;
        let card = &mut cards[i];
        if !card.is_powered() {
            card.power_up().expect("power up");
        }
        let amount = cents(1 + rng.below(800));
        let tear = (rng.below(4) == 0).then(|| TearAfter(1 + rng.below(18)));
        card.arm_tear(tear);
        match rng.below(10) {
            0..=2 => {
                let lose = (rng.below(4) == 0).then(|| LossPoint::ALL[rng.below(5) as usize]);
                let _ = w
                    .terminal()
                    .transact(card, Direction::Load, amount, &holder(), NOW, lose);
            }
            3..=4 => {
                let lose = (rng.below(4) == 0).then(|| LossPoint::ALL[rng.below(5) as usize]);
                let _ =
                    w.terminal()
                        .transact(card, Direction::Unload, amount, &holder(), NOW, lose);
            }
            5..=6 => {
                let _ = psam.pay(card, amount, NOW);
                if !card.is_powered() {
                    card.power_up().expect("power up");
                }
                psam.recover(card).expect("psam recovery");
            }
            7 => {
                card.arm_tear(None);
                let _ = w.terminal().resolve(card);
            }
            8 => {
                let batch = psam.close_batch().expect("close batch");
                // The simulation carries the batch to collection itself.
                psam.acknowledge(batch.batch_no).expect("acknowledge");
                batches.push(batch);
            }
            _ => {
                if rng.below(2) == 0 {
                    w = w.restart();
                } else {
                    clear(&w.lus, &w.agency)
                        .unwrap_or_else(|e| panic!("seed {seed} step {step}: {e}"));
                }
            }
        }
        card.arm_tear(None);
    }

    // Quiesce: every card presented again, every batch collected.
    for card in &mut cards {
        if !card.is_powered() {
            card.power_up().expect("power up");
        }
        w.terminal()
            .resolve(card)
            .unwrap_or_else(|e| panic!("seed {seed}: resolve: {e}"));
    }
    batches.push(psam.close_batch().expect("close batch"));
    let collection = CollectionServer::open(
        &w.dir.path().join("collection.redb"),
        w.masters.purchase.clone(),
        batch_master,
    )
    .expect("collection");
    collection
        .register_psam(psam.id(), &merchant)
        .expect("register");
    for b in &batches {
        collection
            .collect(b)
            .unwrap_or_else(|e| panic!("seed {seed}: collect: {e}"));
    }
    clear(&w.lus, &w.agency).unwrap_or_else(|e| panic!("seed {seed}: final clearing: {e}"));

    let net: i128 = w.lus_net().values().sum();
    let purchases = i128::from(
        collection
            .merchant_credit(&merchant)
            .expect("credit")
            .minor_units(),
    );
    let balances: i128 = cards
        .iter()
        .map(|c| i128::from(c.balance().expect("balance").minor_units()))
        .sum();
    assert_eq!(
        balances,
        net - purchases,
        "seed {seed}: Σ balances ≠ Σ loads − Σ unloads − Σ purchases"
    );
    for card in &cards {
        let info = card.info().expect("info");
        assert!(info.pending.is_none(), "seed {seed}: pending left");
        let log = card.log().expect("log");
        // A load/unload the card aborted before anyone else saw it is known
        // only to the card's log; once that ring has wrapped past it, it is
        // gone, and so is any way to check it.
        let ring: Vec<u32> = log
            .iter()
            .filter(|r| r.kind != vc_card_bridge::card::TxKind::Purchase)
            .map(|r| r.nt)
            .collect();
        let wrapped_below = if ring.len() == vc_card_bridge::constants::CARD_LOG_ENTRIES {
            ring.iter().copied().min().unwrap_or(0)
        } else {
            0
        };
        for nt in 1..=info.nt {
            let on_card: Vec<_> = log.iter().filter(|r| r.nt == nt).collect();
            assert!(on_card.len() <= 1, "seed {seed}: NT {nt} logged twice");
            let at_lus = w.lus.record(&info.card, nt).expect("record");
            let collected = collection.collected(&info.card, nt).expect("collected");
            assert!(
                !(collected && at_lus.is_some()),
                "seed {seed}: NT {nt} is both a purchase and a load/unload"
            );
            assert!(
                !on_card.is_empty() || collected || at_lus.is_some() || nt < wrapped_below,
                "seed {seed}: NT {nt} has no outcome anywhere"
            );
            if let (Some(rec), Some(at_lus)) = (on_card.first(), at_lus) {
                let expected = match rec.outcome {
                    Outcome::Committed => LusState::Committed,
                    Outcome::Rejected => LusState::Rejected,
                };
                assert_eq!(
                    at_lus.state, expected,
                    "seed {seed}: NT {nt}: card and LUS disagree"
                );
            }
            if let Some(rec) = on_card.first() {
                let is_purchase = rec.kind == vc_card_bridge::card::TxKind::Purchase;
                assert_eq!(
                    is_purchase, collected,
                    "seed {seed}: NT {nt}: purchase not collected"
                );
            }
        }
    }
    assert!(
        w.lus
            .records()
            .expect("records")
            .iter()
            .all(|r| r.state.is_final()),
        "seed {seed}: open LUS records after every card was presented"
    );
    let refs: Vec<&SmartCard> = cards.iter().collect();
    assert_agency_agrees(&w, &refs);
}

#[test]
fn random_operations_with_faults_conserve_card_cash() {
    if let Some(seed) = std::env::var("VC_SIM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        run(seed, 120);
        return;
    }
    for seed in [1, 2, 3, 4] {
        run(seed, 80);
    }
}
