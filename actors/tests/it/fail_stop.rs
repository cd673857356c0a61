//! Fail-stop in library use: a broken invariant (a panic on one of the
//! issuer's threads, a lock poisoned by a panic) stops that issuer, whose
//! every later request is refused with `IssuerError::FailStopped`, while the
//! process hosting it (this test binary) carries on; a restart from the
//! files serves again. The invariant is broken through a hook that only
//! debug builds contain, so this file is compiled for debug builds only.
#![cfg(debug_assertions)]

use crate::util;

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use protocol::flows::RegistrationClient;
use util::{Harness, Who};
use vc_actors::SimulatedBank;
use vc_actors::{Issuer, IssuerConfig, IssuerError};

// A panic on a crypto worker stops the whole issuer: the next request on
// another worker is refused with a typed error, not served.
#[actix_rt::test]
async fn a_panic_on_a_worker_stops_the_issuer_and_every_later_request_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bank =
        Arc::new(SimulatedBank::open(dir.path().join("bank.redb"), Duration::ZERO).expect("bank"));
    let mut config = IssuerConfig::new(dir.path().join("issuer"));
    config.n_shards = 2;
    let issuer = Issuer::start(config, bank).expect("issuer starts");
    let alice = Who::new("alice", 0);
    let (_, req) = RegistrationClient::start(alice.id.clone(), alice.sk);
    issuer.register(req).await.expect("registered while alive");

    let broken = issuer.break_invariant_for_tests().await;
    assert!(broken.is_err(), "the worker's panic is not an answer");
    assert!(issuer.core().fail_stop().is_stopped());

    let bob = Who::new("bob", 1);
    let (_, req) = RegistrationClient::start(bob.id.clone(), bob.sk);
    let refused = issuer.register(req).await;
    assert!(
        matches!(refused, Err(IssuerError::FailStopped(ref why)) if why.contains("fail-stop test hook")),
        "{refused:?}"
    );
}

// A lock poisoned by a panic on a thread the issuer does not own is not
// recovered: the next of the issuer's threads to take it stops the issuer,
// after the batch it was recording is durable; a restart rebuilds from the
// log, the interrupted registration is retried once, and conservation holds.
#[test]
fn a_poisoned_lock_stops_the_issuer_and_a_restart_serves_from_the_log() {
    let mut h = Harness::new();
    h.purchaser("alice", 0, 10_000);
    std::thread::scope(|scope| {
        let poisoner = scope.spawn(|| h.core().break_invariant_for_tests());
        assert!(poisoner.join().is_err(), "the hook panics");
    });
    assert!(
        !h.core().fail_stop().is_stopped(),
        "a thread the issuer does not own stops nothing by itself"
    );

    // This thread booted the issuer, so it is the issuer's own; recording
    // bob's registration takes the poisoned state lock.
    let bob = Who::new("bob", 1);
    let registered = std::panic::catch_unwind(AssertUnwindSafe(|| h.register(&bob, 0)));
    assert!(registered.is_err(), "a poisoned lock was recovered");
    assert!(matches!(
        h.core().ensure_alive(),
        Err(IssuerError::FailStopped(_))
    ));
    let carol = Who::new("carol", 2);
    let (_, req) = RegistrationClient::start(carol.id.clone(), carol.sk);
    assert!(matches!(
        h.core().register(&req),
        Err(IssuerError::FailStopped(_))
    ));

    h.restart();
    assert!(h.core().ensure_alive().is_ok(), "a restart is alive again");
    h.register(&bob, 0);
    h.register(&carol, 0);
    h.assert_conserved();
    let report = h.stop_and_audit();
    assert_eq!(report.exit_code(), 0, "{}", report.to_text());
}

/// Tables beside the log that fail every call once `gone` is set.
struct Vanishing {
    inner: ledger::MemoryKv,
    gone: std::sync::atomic::AtomicBool,
}

impl Vanishing {
    fn check(&self) -> Result<(), ledger::KvError> {
        if self.gone.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(ledger::KvError::Storage("the database is gone".into()));
        }
        Ok(())
    }
}

impl ledger::KvStore for Vanishing {
    fn get(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>, ledger::KvError> {
        self.check()?;
        self.inner.get(table, key)
    }
    fn scan(&self, table: &str, prefix: &[u8]) -> Result<Vec<ledger::KvRow>, ledger::KvError> {
        self.check()?;
        self.inner.scan(table, prefix)
    }
    fn write(&self, batch: &ledger::KvBatch) -> Result<(), ledger::KvError> {
        self.check()?;
        self.inner.write(batch)
    }
}

// The tables beside the log (PostgreSQL) gone while the issuer is idle:
// it stops within a few housekeeping runs, without a request to notice.
#[actix_rt::test]
async fn an_idle_issuer_whose_tables_are_gone_stops_by_itself() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bank =
        Arc::new(SimulatedBank::open(dir.path().join("bank.redb"), Duration::ZERO).expect("bank"));
    let tables = Arc::new(Vanishing {
        inner: ledger::MemoryKv::new(),
        gone: std::sync::atomic::AtomicBool::new(false),
    });
    let mut config = IssuerConfig::new(dir.path().join("issuer"));
    config.n_shards = 2;
    config.side_tables = Some(tables.clone());
    let issuer = Issuer::start(config, bank).expect("issuer starts");
    actix_rt::time::sleep(Duration::from_millis(600)).await;
    assert!(!issuer.core().fail_stop().is_stopped());

    tables.gone.store(true, std::sync::atomic::Ordering::SeqCst);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !issuer.core().fail_stop().is_stopped() {
        assert!(
            std::time::Instant::now() < deadline,
            "the issuer went on with its tables gone"
        );
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
    let alice = Who::new("alice", 0);
    let (_, req) = RegistrationClient::start(alice.id.clone(), alice.sk);
    assert!(matches!(
        issuer.register(req).await,
        Err(IssuerError::FailStopped(_))
    ));
}
