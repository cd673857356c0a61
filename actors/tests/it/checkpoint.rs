//! Signed log checkpoints: the issuer vouches for its history with
//! `S_I(seq, hash)`, which an auditor verifies with the issuer's public key
//! alone; an idle log gets no new signature.

use crate::util;

use ledger::{Event, EventStore, Seq};
use util::{Harness, refresh, spec};

#[test]
fn the_issuer_signs_its_head_and_the_signature_verifies_against_the_chain() {
    let h = Harness::new();
    let alice = h.purchaser("alice", 0, 10_000);
    let shop = util::Who::new("shop", 1);
    h.register(&shop, 0);
    h.enroll(&shop, ledger::Role::Merchant);
    let coins = h.buy(&alice, spec(&[(2, 100)]));
    h.pay(&alice, &shop, vec![coins[0]], refresh(100));

    let head = h.core().store().head().expect("head");
    let vouched = h
        .core()
        .append_checkpoint_if_due()
        .expect("checkpoint appended");
    assert_eq!(vouched, Some(head.last_seq));

    let records = h
        .core()
        .store()
        .read(Seq(head.last_seq.0 + 1), 1)
        .expect("read");
    let Some(Event::Checkpoint(cp)) = records.first().map(|r| r.record.event.clone()) else {
        panic!("the record after the head is not a checkpoint: {records:?}");
    };
    assert_eq!((cp.seq, cp.hash), (head.last_seq, head.last_hash));
    assert!(protocol::checkpoint::verify_checkpoint(&h.pk_i(), &cp));

    // Nothing happened since: no second signature.
    assert_eq!(h.core().append_checkpoint_if_due().expect("no-op"), None);
    h.assert_conserved();
}

/// The log's last record, decoded.
fn last_event(h: &Harness) -> (Seq, Event) {
    let head = h.core().store().head().expect("head");
    let records = h.core().store().read(head.last_seq, 1).expect("read");
    let record = records.first().expect("a record").record.clone();
    (record.seq, record.event)
}

#[test]
fn an_approved_enrollment_is_signed_at_once() {
    let h = Harness::new();
    let shop = util::Who::new("shop", 1);
    h.register(&shop, 0);
    h.enroll(&shop, ledger::Role::Merchant);
    let (seq, event) = last_event(&h);
    let Event::Checkpoint(cp) = event else {
        panic!("the approval was not followed by a checkpoint: {event:?}");
    };
    assert_eq!(cp.seq, Seq(seq.0 - 1), "it vouches for the approval itself");
    assert!(protocol::checkpoint::verify_checkpoint(&h.pk_i(), &cp));
}

#[test]
fn an_epoch_opened_by_the_operator_is_signed_at_once() {
    let h = Harness::new();
    h.core().open_epoch_now().expect("epoch opened");
    let (seq, event) = last_event(&h);
    assert!(
        matches!(event, Event::Checkpoint(ref cp) if cp.seq.0 + 1 == seq.0),
        "{event:?}"
    );
}

#[test]
fn a_clean_shutdown_signs_the_log_and_publishes_the_head() {
    let mut h = Harness::new();
    let alice = h.purchaser("alice", 0, 10_000);
    h.buy(&alice, spec(&[(2, 100)]));
    let head = h.core().store().head().expect("head");
    assert!(
        !matches!(last_event(&h).1, Event::Checkpoint(_)),
        "the purchase is the head"
    );
    // The audit requires every record signed: the shutdown signed them.
    let report = h.stop_and_audit();
    assert_eq!(report.exit_code(), 0, "{}", report.to_text());
    assert_eq!(report.unsigned_records, 0);
    assert_eq!(report.signed_through, Seq(head.last_seq.0 + 1));
    let published = std::fs::read_to_string(
        h.dir
            .path()
            .join("issuer")
            .join(vc_actors::SIGNED_HEAD_FILE),
    )
    .expect("the signed head file");
    let cp = ledger::Checkpoint::parse_published_head(&published).expect("a signed head");
    assert_eq!((cp.seq, cp.hash), (head.last_seq, head.last_hash));
}

#[test]
fn a_checkpoint_costs_under_one_percent_of_peak_throughput() {
    // What one seal costs the issuer: an RSA signature (CPU) and one
    // durable append of one record (the log writer waits for its fsyncs,
    // which cost no CPU). At the measured peak (BENCHMARKS.md: about 300
    // payments/s of 3 to 5 records, CPU-bound on two cores) the issuer
    // seals 1000 / LOG_CHECKPOINT_EVERY_MS + 1500 /
    // LOG_CHECKPOINT_EVERY_RECORDS times a second.
    let h = Harness::new();
    let alice = h.purchaser("alice", 0, 1_000_000);
    let n = 20;
    let key = protocol::crypto::SecretKey::read_pkcs8(&h.dir.path().join("issuer/issuer.key"))
        .expect("the issuer's key");
    let head = h.core().store().head().expect("head");
    let started = std::time::Instant::now();
    for _ in 0..n {
        std::hint::black_box(protocol::checkpoint::sign_checkpoint(
            &key,
            head.last_seq,
            head.last_hash,
        ));
    }
    let sign_ms = started.elapsed().as_secs_f64() * 1000.0 / f64::from(n);
    let mut sealing = std::time::Duration::ZERO;
    for _ in 0..n {
        h.buy(&alice, spec(&[(1, 100)]));
        let started = std::time::Instant::now();
        h.core().seal_log().expect("sealed");
        sealing += started.elapsed();
    }
    let seal_ms = sealing.as_secs_f64() * 1000.0 / f64::from(n);
    let seals_per_sec = 1000.0 / vc_actors::LOG_CHECKPOINT_EVERY_MS as f64
        + 1500.0 / vc_actors::LOG_CHECKPOINT_EVERY_RECORDS as f64;
    let cpu_share = sign_ms * seals_per_sec / 2000.0;
    println!(
        "one seal: {sign_ms:.2} ms of RSA, {seal_ms:.2} ms until durable (wall); \
         {seals_per_sec:.2} seals/s at peak: {:.3}% of two cores' CPU, \
         the log writer busy {:.2}% of its time",
        cpu_share * 100.0,
        seal_ms * seals_per_sec / 10.0
    );
    assert!(
        cpu_share < 0.01,
        "sealing costs {:.2}% of the CPU at peak",
        cpu_share * 100.0
    );
}
