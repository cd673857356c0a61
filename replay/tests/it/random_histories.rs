//! Many histories, not one: a simulated issuer takes random sequences of
//! every operation (seeded, so a failure prints the seed that reproduces
//! it), and every such log passes the audit with conservation holding after
//! each transaction; the same log with one issued coin inflated, even with
//! the chain recomputed, does not.

use crate::util;

use ledger::{Amount, Event, KeyEpoch, MemoryStore};
use util::*;
use vc_replay::{AuditOptions, Outcome, Rule, audit_store};

/// A small, seeded generator (SplitMix64): no dependency, reproducible.
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
        self.next() % n.max(1)
    }
}

fn random_history(seed: u64, n_ops: usize) -> History {
    let mut rng = Rng(seed);
    let mut sim = History::with_a_merchant();
    let mut rotated = false;
    for _ in 0..n_ops {
        // An honest issuer takes expired coins only for refresh in their grace.
        let have = sim.spendable();
        match rng.below(12) {
            0 | 1 => {
                let n = 1 + rng.below(4) as usize;
                let values: Vec<u64> = (0..n).map(|_| 25 * (1 + rng.below(40))).collect();
                sim.purchase(&values);
            }
            2 if have >= 2 => {
                sim.pay_refresh(2);
            }
            3 if have >= 1 => {
                sim.pay_aggregate(1);
            }
            4 if have >= 1 => {
                sim.pay_redeem(1);
            }
            5 if have >= 1 => {
                sim.change();
            }
            6 if sim.refreshable() >= 1 => {
                sim.refresh();
            }
            7 if have >= 1 => {
                sim.refund();
            }
            8 if have >= 1 => {
                sim.card_load(1);
            }
            9 => {
                sim.card_unload(50 * (1 + rng.below(10)));
            }
            10 if !rotated => {
                sim.rotate_epoch();
                rotated = true;
            }
            11 if rotated => {
                // Erasure comes once epoch 1's grace has ended.
                let grace_end = ledger::Timestamp(sim.expiry().0 - 1_000_000 + 100_000);
                sim.advance_to(grace_end);
                sim.erase(KeyEpoch(1));
            }
            _ => {
                sim.rejected_purchase(100);
            }
        }
    }
    sim
}

#[test]
fn random_honest_histories_pass_and_an_inflated_coin_never_does() {
    for seed in 1..=12u64 {
        let sim = random_history(seed, 60);
        let store = MemoryStore::new();
        write_log(&store, &sim.batches, issuer_key(), 7);
        let report = audit_store(&store, AuditOptions::new("random")).expect("audit");
        assert_eq!(
            report.outcome,
            Outcome::Holds,
            "seed {seed}:\n{}",
            report.to_text()
        );
        let held: u64 = sim.wallet().iter().map(|c| c.value.minor_units()).sum();
        assert_eq!(report.totals.outstanding, i128::from(held), "seed {seed}");

        // Inflate the first coin of a randomly chosen issuance, recompute
        // the chain and drop the checkpoints' protection (no key given):
        // the money rules alone must still catch it.
        let mut records = raw_records(&store);
        let issuances: Vec<usize> = records
            .iter()
            .enumerate()
            .filter(|(_, r)| matches!(Event::decode(&r.event_bytes), Ok(Event::CoinsIssued { .. })))
            .map(|(i, _)| i)
            .collect();
        let k = issuances[Rng(seed).below(issuances.len() as u64) as usize];
        edit_event(&mut records[k], |e| {
            if let Event::CoinsIssued { coins, .. } = e {
                coins[0].value = Amount::from_minor(coins[0].value.minor_units() + 1);
            }
        });
        rechain(&mut records, k);
        let tx = records[k].tx;
        let report = audit_store(
            &MemoryStore::from_raw_records(records),
            AuditOptions::new("inflated"),
        )
        .expect("audit");
        let Outcome::Violation(v) = &report.outcome else {
            panic!("seed {seed}: an inflated coin passed\n{}", report.to_text());
        };
        // Caught at the forged transaction, by a money rule, before any
        // later checkpoint could notice the rewritten chain.
        assert_eq!(v.tx, Some(tx), "seed {seed}: {v}");
        assert!(
            matches!(v.rule, Rule::Unbalanced | Rule::CoinsWithoutMoney),
            "seed {seed}: {v}"
        );
    }
}
