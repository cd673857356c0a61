//! Nothing is acknowledged before it is durable: when the log stops taking
//! writes, the payment is not answered with coins, its reservations are
//! released, no coin leaves the shards, and the issuer refuses every later
//! commit (it never guesses what the disk holds).

mod util;

use std::sync::Arc;

use ledger::{MemoryStore, Role};
use protocol::wire::payment::PaymentOutcome;
use util::{Harness, Who, refresh, spec};
use vc_actors::{IssuerCore, IssuerError};

#[test]
fn a_failed_log_append_acknowledges_nothing_and_releases_the_reservations() {
    // Build coins with an ordinary issuer, then run a second issuer over a
    // memory log that a test can break. Its log starts with the same events.
    let h = Harness::new();
    let alice = h.purchaser("alice", 0, 1_000);
    let shop = Who::new("shop", 1);
    h.register(&shop, 0);
    h.enroll(&shop, Role::Merchant);
    let coins = h.buy(&alice, spec(&[(1, 500)]));
    let (payee_state, _payer, _inv, send) = h.send_coins(&alice, &shop, coins.clone());
    let (_awaiting, vreq) = h.validation(&payee_state, &send, refresh(500));

    let memory = Arc::new(MemoryStore::new());
    let records =
        ledger::EventStore::read(h.core().store().as_ref(), ledger::Seq(1), 10_000).expect("read");
    let mut batches: Vec<ledger::Batch> = Vec::new();
    for r in records {
        let r = r.record;
        if r.batch_index == 0 {
            batches.push(ledger::Batch {
                tx: r.tx,
                events: Vec::new(),
            });
        }
        batches.last_mut().expect("a batch").events.push(r.event);
    }
    ledger::EventStore::append(memory.as_ref(), &batches).expect("copy the log");
    let mut config = h.config();
    config.dir = h.dir.path().join("issuer-copy");
    std::fs::create_dir_all(&config.dir).expect("dir");
    for file in ["issuer.key", "user-index.key", "mint.key", "registry.redb"] {
        std::fs::copy(
            h.dir.path().join("issuer").join(file),
            config.dir.join(file),
        )
        .expect("copy issuer file");
    }
    config.memory_log = Some(memory.clone());
    let copy = IssuerCore::open(config, h.bank().clone()).expect("second issuer");
    assert!(copy.shards().get(&coins[0].id()).is_some());

    memory.fail_after_appends(0);
    let err = copy
        .validate(&vreq)
        .expect_err("no answer without a durable log");
    assert!(matches!(err, IssuerError::Log(_)), "got {err}");
    assert_eq!(
        copy.shards().n_reserved(),
        0,
        "reservations outlived the failure"
    );
    assert!(
        copy.shards().get(&coins[0].id()).is_some(),
        "the coin left without a log record"
    );
    // The log writer is poisoned: later commits are refused, not guessed.
    assert!(matches!(copy.validate(&vreq), Err(IssuerError::Log(_))));

    // The original issuer still serves the same request once.
    let iss1 = h.core().validate(&vreq).expect("served");
    assert!(matches!(iss1.outcome, PaymentOutcome::Refreshed { .. }));
    h.assert_conserved();
}
