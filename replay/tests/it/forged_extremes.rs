//! A forger who rewrites the log and recomputes its chain (everything one
//! can do without the issuer's key) puts extreme values in the fields the
//! auditor adds up: amounts of `u64::MAX`, `i64::MAX`, `u32::MAX` and zero,
//! the same in times, epochs, counts and periods, in one record or in every
//! record at once. The audit runs to a typed outcome every time, never a
//! panic, and with the issuer's key it never passes a changed log.

use crate::util;

use ledger::{Amount, CoinBody, Event, KeyEpoch, MemoryStore, RawRecord, Seq, Timestamp};
use util::*;
use vc_replay::{AuditOptions, Outcome, audit_store};

/// Every number of `event` the auditor reads set to `v` (truncated for
/// the 32-bit ones).
fn set_every_number(event: &mut Event, v: u64) {
    let amount = Amount::from_minor(v);
    let small = u32::try_from(v).unwrap_or(u32::MAX);
    let coin = |c: &mut CoinBody| {
        c.value = amount;
        c.expiry = Timestamp(v);
        c.epoch = KeyEpoch(small);
    };
    match event {
        Event::PurchaseSettled { amount: a, .. }
        | Event::Redeemed { amount: a, .. }
        | Event::Aggregated { amount: a, .. }
        | Event::AggregateWithdrawn { amount: a, .. }
        | Event::CardUnloaded { amount: a, .. }
        | Event::PurchaseDebitReturned { amount: a, .. } => *a = amount,
        Event::CoinsIssued { coins, .. }
        | Event::CoinsSpent { coins, .. }
        | Event::CoinsRevoked { coins } => coins.iter_mut().for_each(coin),
        Event::CardLoaded {
            amount: a,
            nt,
            guaranteed_at,
            ..
        } => {
            *a = amount;
            *nt = small;
            *guaranteed_at = Timestamp(v);
        }
        Event::Cleared {
            period,
            paid_to_lus,
            received_from_lus,
            ..
        } => {
            *period = small;
            *paid_to_lus = amount;
            *received_from_lus = amount;
        }
        Event::EpochOpened {
            epoch,
            coins_expire_at,
            grace_ends_at,
        } => {
            *epoch = KeyEpoch(small);
            *coins_expire_at = Timestamp(v);
            *grace_ends_at = Timestamp(v);
        }
        Event::EpochClosed { epoch } => *epoch = KeyEpoch(small),
        Event::EpochRevoked { epoch, owed } => {
            *epoch = KeyEpoch(small);
            *owed = amount;
        }
        Event::EpochErased {
            epoch,
            through,
            n_coins,
            value,
            ..
        } => {
            *epoch = KeyEpoch(small);
            *through = Seq(v);
            *n_coins = v;
            *value = amount;
        }
        _ => {}
    }
}

/// How a forgery changes the genuine log.
#[derive(Debug, Clone, Copy)]
enum Forgery {
    /// Every number of one record's event.
    OneEvent(usize),
    /// One record's time.
    OneTime(usize),
    /// Every number of every record's event.
    EveryEvent,
}

fn forge(records: &[RawRecord], forgery: Forgery, v: u64) -> Vec<RawRecord> {
    let mut forged = records.to_vec();
    match forgery {
        Forgery::OneEvent(i) => edit_event(&mut forged[i], |e| set_every_number(e, v)),
        Forgery::OneTime(i) => forged[i].at = Timestamp(v),
        Forgery::EveryEvent => forged
            .iter_mut()
            .for_each(|r| edit_event(r, |e| set_every_number(e, v))),
    }
    rechain(&mut forged, 0);
    forged
}

#[test]
fn extreme_values_in_a_rechained_log_end_in_a_typed_outcome_never_a_panic_or_a_pass() {
    let g = genuine(2);
    let store = MemoryStore::new();
    write_log(&store, &g.sim.batches, issuer_key(), 5);
    let records = raw_records(&store);
    let values = [u64::MAX, i64::MAX.unsigned_abs(), u64::from(u32::MAX), 0];
    let forgeries = (0..records.len())
        .flat_map(|i| [Forgery::OneEvent(i), Forgery::OneTime(i)])
        .chain([Forgery::EveryEvent]);
    let (mut panics, mut passes) = (Vec::new(), Vec::new());
    for forgery in forgeries {
        for v in values {
            let forged = forge(&records, forgery, v);
            let changed = forged
                .iter()
                .zip(&records)
                .any(|(f, r)| f.event_bytes != r.event_bytes || f.at != r.at);
            let outcome = std::panic::catch_unwind(|| {
                let unkeyed = audit_store(
                    &MemoryStore::from_raw_records(forged.clone()),
                    AuditOptions::new("forged"),
                );
                let mut opts = AuditOptions::new("forged");
                opts.checkpoint_verifier = Some(issuer_verifier());
                let keyed = audit_store(&MemoryStore::from_raw_records(forged.clone()), opts);
                (unkeyed.map(|_| ()), keyed.map(|r| r.outcome))
            });
            match outcome {
                Err(_) => panics.push((forgery, v)),
                Ok((_, Ok(Outcome::Holds))) if changed => passes.push((forgery, v)),
                Ok(_) => {}
            }
        }
    }
    assert!(panics.is_empty(), "the audit panicked on {panics:?}");
    assert!(
        passes.is_empty(),
        "with the issuer's key, changed logs passed: {passes:?}"
    );
}
