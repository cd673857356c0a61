//! Signed log checkpoints: the issuer vouches for its history with
//! `S_I(seq, hash)`, which an auditor verifies with the issuer's public key
//! alone; an idle log gets no new signature.

mod util;

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
