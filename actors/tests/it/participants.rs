//! Registration (the issuer as CA) and enrollment with out-of-band approval;
//! key epochs opening on schedule, with coins carrying their epoch.

use crate::util;

use ledger::{Event, Role};
use protocol::flows::RegistrationClient;
use protocol::wire::enrollment::EnrollmentStatus;
use util::{Harness, Who, spec};
use vc_actors::IssuerError;

/// `Registered` events in the issuer's log (its first 100 records).
fn n_registered(h: &Harness) -> usize {
    ledger::EventStore::read(h.core().store().as_ref(), ledger::Seq(1), 100)
        .expect("read")
        .iter()
        .filter(|r| matches!(r.record.event, Event::Registered { .. }))
        .count()
}

#[test]
fn registration_certifies_the_key_and_refuses_a_taken_identity() {
    let h = Harness::new();
    let alice = Who::new("alice", 0);
    h.register(&alice, 0);
    // The same key again: a fresh certificate, no second registration.
    let (client, req) = RegistrationClient::start(alice.id.clone(), alice.sk);
    let cert = h.core().register(&req).expect("re-registered");
    client
        .on_certificate(&h.pk_i(), cert, h.now())
        .expect("valid");
    // Another key under the same identity (a pseudonym is taken once).
    let (_client, req) = RegistrationClient::start(alice.id.clone(), util::key(1));
    assert!(matches!(
        h.core().register(&req),
        Err(IssuerError::IdentityTaken)
    ));
    // A pseudonym: another identity the same person chose, its own
    // certificate, unlinkable in the log (identities are sealed, randomized).
    let pseudonym = ledger::ParticipantId::new("blue-heron-7").expect("valid id");
    let (client, req) = RegistrationClient::start(pseudonym.clone(), alice.sk);
    let cert = h.core().register(&req).expect("pseudonym registered");
    assert_eq!(cert.id, pseudonym);
    client
        .on_certificate(&h.pk_i(), cert, h.now())
        .expect("valid");
    // A forged proof of possession is refused.
    let (_client, mut req) = RegistrationClient::start(Who::new("bob", 2).id, util::key(2));
    req.public_key = util::key(3).public();
    assert!(matches!(h.core().register(&req), Err(IssuerError::Flow(_))));
    let n_registered = n_registered(&h);
    assert_eq!(n_registered, 2);
    h.assert_conserved();
}

/// Retransmissions of one registration that arrive together are logged
/// once: the others are told it is in flight and, retried, get their
/// certificate without a second `Registered` (which would otherwise stop
/// the transaction index, and the issuer's next start, at the duplicate).
#[test]
fn concurrent_copies_of_one_registration_are_logged_once() {
    let mut h = Harness::new();
    let carol = Who::new("carol", 3);
    let (_client, req) = RegistrationClient::start(carol.id.clone(), carol.sk);
    let in_flight = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                loop {
                    match h.core().register(&req) {
                        Ok(cert) => break assert_eq!(cert.id, carol.id),
                        Err(IssuerError::InFlight) => {
                            in_flight.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            std::thread::yield_now();
                        }
                        Err(e) => panic!("registration failed: {e}"),
                    }
                }
            });
        }
    });
    let n_registered = n_registered(&h);
    assert_eq!(
        n_registered,
        1,
        "({} answers were 'in flight')",
        in_flight.into_inner()
    );
    h.core()
        .checkpoint_tx_index()
        .expect("the index takes the log");
    h.restart();
    assert!(h.core().participant(&carol.id).expect("registry").is_some());
}

#[test]
fn enrollment_stays_pending_until_an_operator_approves_it() {
    let h = Harness::new();
    let shop = Who::new("shop", 1);
    h.register(&shop, 0);
    let req = protocol::flows::enrollment_request(
        h.core().suite(),
        shop.sk,
        &h.pk_i(),
        shop.id.clone(),
        Role::Merchant,
        shop.account.clone(),
        h.now(),
    )
    .expect("request");
    let answer = h.core().request_enrollment(&req).expect("recorded");
    assert_eq!(answer.status, EnrollmentStatus::Pending);
    let p = h
        .core()
        .participant(&shop.id)
        .expect("registry")
        .expect("known");
    assert!(p.enrolled(Role::Merchant).is_none());
    h.core()
        .approve_enrollment(&shop.id, Role::Merchant)
        .expect("approved");
    let p = h
        .core()
        .participant(&shop.id)
        .expect("registry")
        .expect("known");
    let e = p.enrolled(Role::Merchant).expect("enrolled");
    assert!(e.balance.is_some(), "a merchant gets an aggregate balance");
    assert_eq!(
        h.core()
            .request_enrollment(&req)
            .expect("asked again")
            .status,
        EnrollmentStatus::Approved
    );
    assert!(matches!(
        h.core().approve_enrollment(&shop.id, Role::Redeemer),
        Err(IssuerError::NoSuchEnrollment)
    ));
    // An unregistered participant cannot enroll.
    let ghost = Who::new("ghost", 4);
    let req = protocol::flows::enrollment_request(
        h.core().suite(),
        ghost.sk,
        &h.pk_i(),
        ghost.id.clone(),
        Role::Redeemer,
        ghost.account.clone(),
        h.now(),
    )
    .expect("request");
    assert!(h.core().request_enrollment(&req).is_err());
    h.assert_conserved();
}

#[test]
fn key_epochs_open_on_schedule_and_coins_carry_them_across_restarts() {
    let mut h = Harness::new();
    let alice = h.purchaser("alice", 0, 10_000);
    let (first, _) = h.core().current_epoch().expect("an epoch at start");
    let old = h.buy(&alice, spec(&[(1, 100)]));
    assert_eq!(old[0].body.epoch, first);
    assert_eq!(h.core().rotate_epoch_if_due().expect("not due"), None);
    h.clock.advance(400); // the epoch period
    let second = h
        .core()
        .rotate_epoch_if_due()
        .expect("due")
        .expect("opened");
    assert!(second > first);
    let new = h.buy(&alice, spec(&[(1, 100)]));
    assert_eq!(new[0].body.epoch, second);
    h.restart();
    assert_eq!(h.core().current_epoch().map(|(e, _)| e), Some(second));
    // Coins of both epochs still verify and spend after the restart.
    let shop = Who::new("shop", 1);
    h.register(&shop, 0);
    assert!(matches!(
        h.pay(&alice, &shop, vec![old[0], new[0]], util::refresh(200)),
        protocol::flows::PayeeOutcome::Coins { .. }
    ));
    h.assert_conserved();
}

/// A key change is made only from a fresh request signed by the registered
/// key and proving the new one; a repeat once it is made gets a
/// certificate and changes nothing; a request replayed after the identity
/// moved on and came back to its old key is refused; a suspended
/// participant changes nothing; a stale request is refused.
#[test]
fn a_key_changes_only_on_the_registered_keys_fresh_signature() {
    use protocol::flows::key_change::key_change_request;
    let h = Harness::new();
    let alice = h.purchaser("alice", 0, 10_000);
    let (k0, k1) = (util::key(0), util::key(4));
    let id_i = h.core().id().clone();
    let pk_i = h.core().public_key();
    let registered = || {
        h.core()
            .participant(&alice.id)
            .expect("registry")
            .expect("registered")
            .public_key
    };
    let forged = key_change_request(
        util::key(5),
        k1,
        alice.id.clone(),
        id_i.clone(),
        &pk_i,
        h.now(),
    );
    assert!(matches!(
        h.core().change_key(&forged),
        Err(IssuerError::Flow(_))
    ));
    // Signed by the registered key for another issuer of the same name.
    let elsewhere = key_change_request(
        k0,
        k1,
        alice.id.clone(),
        id_i.clone(),
        &util::key(5).public(),
        h.now(),
    );
    assert!(matches!(
        h.core().change_key(&elsewhere),
        Err(IssuerError::Flow(_))
    ));
    assert_eq!(registered(), k0.public());
    let to_k1 = key_change_request(k0, k1, alice.id.clone(), id_i.clone(), &pk_i, h.now());
    let cert = h.core().change_key(&to_k1).expect("changed");
    assert_eq!(cert.public_key, k1.public());
    assert_eq!(registered(), k1.public());
    h.core().change_key(&to_k1).expect("a repeat is answered");
    assert_eq!(registered(), k1.public());
    // Back to the old key, signed by the new one; the first request
    // replayed must not move the identity again.
    h.clock.advance(1);
    let back = key_change_request(k1, k0, alice.id.clone(), id_i.clone(), &pk_i, h.now());
    h.core().change_key(&back).expect("changed back");
    assert_eq!(registered(), k0.public());
    assert!(matches!(
        h.core().change_key(&to_k1),
        Err(IssuerError::Flow(_))
    ));
    assert_eq!(registered(), k0.public());
    // Suspended: nothing changes.
    h.core()
        .set_standing(&alice.id, ledger::Standing::Suspended)
        .expect("suspended");
    let again = key_change_request(k0, k1, alice.id.clone(), id_i.clone(), &pk_i, h.now());
    assert!(matches!(
        h.core().change_key(&again),
        Err(IssuerError::ParticipantSuspended)
    ));
    h.core()
        .set_standing(&alice.id, ledger::Standing::Active)
        .expect("reinstated");
    // Stale: refused.
    h.clock.advance(24 * 3600);
    assert!(matches!(
        h.core().change_key(&again),
        Err(IssuerError::Flow(protocol::flows::FlowError::Stale))
    ));
    assert_eq!(registered(), k0.public());
    h.assert_conserved();
}

/// A key of a kind the issuer's suite cannot seal to (RSA under `dhaes`,
/// Ed25519/X25519 under `aes256` or `tdes`) is refused at registration and
/// as a new key, before anything is logged: every answer the issuer owes
/// such a participant (a payee's session key, a refund's replacements)
/// would fail after its commit.
#[test]
fn a_key_the_issuers_suite_cannot_serve_is_neither_registered_nor_taken_as_a_new_key() {
    use protocol::crypto::{KeyKind, SecretKey, SuiteId};
    use protocol::flows::key_change::key_change_request;
    let h = Harness::new();
    let other_kind = match h.core().suite().key_kind() {
        KeyKind::Rsa => SecretKey::generate_for(SuiteId::Dhaes, 0),
        KeyKind::Ed25519X25519 => SecretKey::generate_for(SuiteId::Aes256, 2048),
    }
    .expect("keygen");
    let before = n_registered(&h);
    let (_client, req) = RegistrationClient::start(Who::new("mallory", 0).id, &other_kind);
    assert!(matches!(
        h.core().register(&req),
        Err(IssuerError::Flow(protocol::flows::FlowError::Crypto(_)))
    ));
    assert_eq!(n_registered(&h), before);
    let alice = h.purchaser("alice", 0, 10_000);
    let id_i = h.core().id().clone();
    let pk_i = h.core().public_key();
    let change = key_change_request(
        util::key(0),
        &other_kind,
        alice.id.clone(),
        id_i,
        &pk_i,
        h.now(),
    );
    assert!(matches!(
        h.core().change_key(&change),
        Err(IssuerError::Flow(protocol::flows::FlowError::Crypto(_)))
    ));
    assert_eq!(
        h.core()
            .participant(&alice.id)
            .expect("registry")
            .expect("registered")
            .public_key,
        util::key(0).public()
    );
    h.assert_conserved();
}

/// A participant's record is read, its change logged and the record
/// written back as one step: changes at once (enrollments for every role,
/// a key change beside them) never write one's stale copy over another's.
#[test]
fn changes_to_one_participant_at_once_are_all_kept() {
    use protocol::flows::enrollment_request;
    use protocol::flows::key_change::key_change_request;
    let h = Harness::new();
    let core = h.core();
    let roles = [Role::CoinPurchaser, Role::Redeemer, Role::Merchant];
    for round in 0..6 {
        let who = Who::new(&format!("racer{round}"), 0);
        h.register(&who, 0);
        let enrollments: Vec<_> = roles
            .iter()
            .map(|role| {
                enrollment_request(
                    core.suite(),
                    who.sk,
                    &h.pk_i(),
                    who.id.clone(),
                    *role,
                    who.account.clone(),
                    h.now(),
                )
                .expect("enrollment request")
            })
            .collect();
        let new_key = util::key(4);
        let change = key_change_request(
            who.sk,
            new_key,
            who.id.clone(),
            core.id().clone(),
            &h.pk_i(),
            h.now(),
        );
        let at_once = std::sync::Barrier::new(enrollments.len() + 1);
        let recorded: Vec<Role> = std::thread::scope(|s| {
            let asks: Vec<_> = enrollments
                .iter()
                .zip(roles)
                .map(|(req, role)| {
                    let at_once = &at_once;
                    s.spawn(move || {
                        at_once.wait();
                        // Signed by the old key: refused once the change
                        // is in, which must then leave the record alone.
                        core.request_enrollment(req).ok().map(|_| role)
                    })
                })
                .collect();
            s.spawn(|| {
                at_once.wait();
                core.change_key(&change).expect("key changed");
            });
            asks.into_iter()
                .filter_map(|t| t.join().expect("no panic"))
                .collect()
        });
        let record = core
            .participant(&who.id)
            .expect("registry")
            .expect("registered");
        assert_eq!(
            record.public_key,
            new_key.public(),
            "round {round}: the key change was written over"
        );
        for role in recorded {
            assert!(
                record.enrollments.iter().any(|e| e.role == role),
                "round {round}: the {role} enrollment the issuer answered was written over"
            );
        }
    }
}
