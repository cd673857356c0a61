//! The user index alone, over a real log, real keys and its own files:
//! deliveries apply each record once (a repeat, an overlap and an old
//! delivery change nothing), only the issuer's signed and chained records
//! are taken, and a disclosure is answered only on the issuer's signed
//! word for exactly that order and two different approving keys.

#![allow(clippy::expect_used)]

use std::sync::OnceLock;

use ledger::{
    Amount, CoinBody, CoinId, DisclosureSubject, Event, EventStore, Hash32, IssueCause, KeyEpoch,
    MemoryStore, ParticipantId, PurchaseId, RawEventStore, Seq, Timestamp, TxId,
};
use protocol::crypto::{IdentitySealer, PublicKey, SecretKey, SuiteId};
use protocol::wire::{BoundedBytes, BoundedText, BoundedVec};
use user_index::constants::{DELIVERY_LABEL, DISCLOSURE_LOGGED_LABEL};
use user_index::wire::{DeliveredRecord, DisclosureLogged, DisclosureOrder, RecordDelivery};
use user_index::{IndexError, IndexService};

fn issuer_key() -> &'static SecretKey {
    static KEY: OnceLock<SecretKey> = OnceLock::new();
    KEY.get_or_init(|| SecretKey::generate(2048).expect("rsa"))
}

fn coin(n: u8) -> CoinBody {
    CoinBody {
        id: CoinId::from_bytes([n; 16]),
        value: Amount::from_minor(250),
        expiry: Timestamp(5_000),
        epoch: KeyEpoch(1),
    }
}

/// An index in a fresh directory and a log whose identities are sealed to
/// its key: alice buys coin 1 (purchase 7), bob coin 2, then a record
/// nobody cares about.
fn index_and_log(dir: &std::path::Path) -> (IndexService, MemoryStore) {
    let public =
        IndexService::create_keys(&dir.join("index"), SuiteId::Aes256, 2048).expect("keys");
    let index = IndexService::open(&dir.join("index"), issuer_key().public()).expect("open");
    let sealer =
        IdentitySealer::new(public, SuiteId::Aes256).expect("an RSA key seals under aes256");
    let alice = ParticipantId::new("alice").expect("id");
    let bob = ParticipantId::new("bob").expect("id");
    let log = MemoryStore::new();
    let batch = |events| ledger::Batch {
        tx: TxId::random(),
        at: Timestamp(1_000),
        events,
    };
    log.append(&[
        batch(vec![Event::PurchaseRequested {
            purchase: PurchaseId::from_bytes([7; 16]),
            purchaser: sealer.seal_identity(&alice),
            bank_account: sealer.seal_account(&ledger::BankAccount::new("ACH-a").expect("a")),
            spec: ledger::CoinSpec::new(vec![ledger::Denomination {
                count: 1,
                value: Amount::from_minor(250),
            }])
            .expect("spec"),
            amount: Amount::from_minor(250),
            anonymous: false,
            authorization: ledger::SignatureBytes(vec![1; 8]),
        }]),
        batch(vec![Event::CoinsIssued {
            coins: vec![coin(1)],
            holder: Some(sealer.seal_identity(&alice)),
            cause: IssueCause::Purchase(PurchaseId::from_bytes([7; 16])),
        }]),
        batch(vec![Event::CoinsIssued {
            coins: vec![coin(2)],
            holder: Some(sealer.seal_identity(&bob)),
            cause: IssueCause::Refund,
        }]),
        batch(vec![Event::EpochClosed { epoch: KeyEpoch(9) }]),
    ])
    .expect("append");
    (index, log)
}

fn delivery(log: &MemoryStore, from: u64, n: usize, key: &SecretKey) -> RecordDelivery {
    let records: Vec<DeliveredRecord> = log
        .read_raw(Seq(from), n)
        .expect("read")
        .into_iter()
        .map(|r| DeliveredRecord::from_raw(r).expect("fits"))
        .collect();
    let signature = key.sign(DELIVERY_LABEL, &RecordDelivery::signed_bytes(&records));
    RecordDelivery {
        records: BoundedVec::new(records).expect("few"),
        signature: BoundedBytes::new(signature.as_bytes().to_vec()).expect("short"),
    }
}

fn order(subject: DisclosureSubject) -> DisclosureOrder {
    DisclosureOrder {
        subject,
        requester: BoundedText::new("district court").expect("short"),
        reason: BoundedText::new("case 42").expect("short"),
    }
}

fn logged(
    order: &DisclosureOrder,
    seq: u64,
    keys: [Hash32; 2],
    by: &SecretKey,
) -> DisclosureLogged {
    let signed = DisclosureLogged::signed_bytes(Seq(seq), &order.event(keys));
    DisclosureLogged {
        seq: Seq(seq),
        approver_keys: keys,
        signature: BoundedBytes::new(
            by.sign(DISCLOSURE_LOGGED_LABEL, &signed)
                .as_bytes()
                .to_vec(),
        )
        .expect("short"),
    }
}

const KEYS: [Hash32; 2] = [Hash32([1; 32]), Hash32([2; 32])];

#[test]
fn each_record_is_applied_once_whatever_is_delivered_twice() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (index, log) = index_and_log(dir.path());
    assert_eq!(
        index
            .receive(&delivery(&log, 1, 2, issuer_key()))
            .expect("first"),
        Seq(2)
    );
    // The same delivery again (an acknowledgement lost): nothing moves.
    let before = index.users().snapshot().expect("snapshot");
    assert_eq!(
        index
            .receive(&delivery(&log, 1, 2, issuer_key()))
            .expect("again"),
        Seq(2)
    );
    assert_eq!(index.users().snapshot().expect("snapshot"), before);
    // An overlapping one (an outbox behind the index): only the new records apply.
    assert_eq!(
        index
            .receive(&delivery(&log, 2, 3, issuer_key()))
            .expect("overlap"),
        Seq(4)
    );
    let alice = ParticipantId::new("alice").expect("id");
    assert_eq!(index.users().coins_of(&alice).expect("coins").len(), 1);
    // Past the next record: a gap, nothing applied.
    let (index2, log2) = index_and_log(&dir.path().join("second"));
    assert!(matches!(
        index2.receive(&delivery(&log2, 3, 2, issuer_key())),
        Err(IndexError::Gap { .. })
    ));
    assert_eq!(index2.applied().expect("applied"), Seq(0));
    drop(log2);
    // Reopened from its files, the index knows where it is.
    drop(index);
    let index = IndexService::open(&dir.path().join("index"), issuer_key().public()).expect("open");
    assert_eq!(index.applied().expect("applied"), Seq(4));
}

#[test]
fn only_the_issuers_signed_and_chained_records_are_taken() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (index, log) = index_and_log(dir.path());
    let stranger = SecretKey::generate(2048).expect("rsa");
    assert!(matches!(
        index.receive(&delivery(&log, 1, 4, &stranger)),
        Err(IndexError::NotFromTheIssuer)
    ));
    // A record's event changed after signing: its chain hash no longer matches.
    let mut changed = delivery(&log, 1, 4, issuer_key());
    let mut records = changed.records.into_vec();
    records[3].event =
        BoundedBytes::new(Event::EpochClosed { epoch: KeyEpoch(8) }.encode()).expect("short");
    let signature = issuer_key().sign(DELIVERY_LABEL, &RecordDelivery::signed_bytes(&records));
    changed.records = BoundedVec::new(records).expect("few");
    changed.signature = BoundedBytes::new(signature.as_bytes().to_vec()).expect("short");
    assert!(matches!(
        index.receive(&changed),
        Err(IndexError::BadHash(_))
    ));
    // A record left out: the chain breaks.
    let mut holed = delivery(&log, 1, 4, issuer_key());
    let mut records = holed.records.into_vec();
    records.remove(1);
    let signature = issuer_key().sign(DELIVERY_LABEL, &RecordDelivery::signed_bytes(&records));
    holed.records = BoundedVec::new(records).expect("few");
    holed.signature = BoundedBytes::new(signature.as_bytes().to_vec()).expect("short");
    assert!(matches!(
        index.receive(&holed),
        Err(IndexError::BrokenChain(_))
    ));
    assert_eq!(index.applied().expect("applied"), Seq(0));
}

#[test]
fn a_disclosure_is_answered_only_on_the_issuers_word_for_that_order_and_two_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (index, log) = index_and_log(dir.path());
    index
        .receive(&delivery(&log, 1, 4, issuer_key()))
        .expect("delivered");
    let by_coin = order(DisclosureSubject::Coin(coin(1).id));
    // The issuer's word, for this order and these keys: alice.
    let answer = index
        .disclose(&by_coin, KEYS, &logged(&by_coin, 9, KEYS, issuer_key()))
        .expect("disclosed");
    assert_eq!(answer.participant.as_str(), "alice");
    assert_eq!(answer.logged_at, Seq(9));
    // By purchase too.
    let by_purchase = order(DisclosureSubject::Purchase(PurchaseId::from_bytes([7; 16])));
    let answer = index
        .disclose(
            &by_purchase,
            KEYS,
            &logged(&by_purchase, 10, KEYS, issuer_key()),
        )
        .expect("disclosed");
    assert_eq!(answer.participant.as_str(), "alice");
    // Not the issuer's key: nothing.
    let stranger = SecretKey::generate(2048).expect("rsa");
    assert!(matches!(
        index.disclose(&by_coin, KEYS, &logged(&by_coin, 9, KEYS, &stranger)),
        Err(IndexError::NotLogged)
    ));
    // The issuer's word for another order (bob's coin) does not open alice's.
    let bobs = order(DisclosureSubject::Coin(coin(2).id));
    assert!(matches!(
        index.disclose(&by_coin, KEYS, &logged(&bobs, 9, KEYS, issuer_key())),
        Err(IndexError::NotLogged)
    ));
    // One key twice is one approval, not two.
    let same = [KEYS[0], KEYS[0]];
    assert!(matches!(
        index.disclose(&by_coin, same, &logged(&by_coin, 9, same, issuer_key())),
        Err(IndexError::ApprovalsDisagree)
    ));
    // Logged for other approvers than those who signed this request.
    let others = [KEYS[0], Hash32([3; 32])];
    assert!(matches!(
        index.disclose(&by_coin, KEYS, &logged(&by_coin, 9, others, issuer_key())),
        Err(IndexError::ApprovalsDisagree)
    ));
    // A coin nobody was issued (or anonymously): nothing to disclose.
    let unknown = order(DisclosureSubject::Coin(CoinId::from_bytes([9; 16])));
    assert!(matches!(
        index.check_attributed(&unknown),
        Err(IndexError::NotAttributed(_))
    ));
}

#[test]
fn the_key_pair_is_made_in_the_index_directory_only_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let index_dir = dir.path().join("index");
    let public = IndexService::create_keys(&index_dir, SuiteId::Aes256, 2048).expect("keys");
    assert!(IndexService::create_keys(&index_dir, SuiteId::Aes256, 2048).is_err());
    let read =
        PublicKey::read_spki(&index_dir.join(user_index::INDEX_PUBLIC_KEY_FILE)).expect("pub");
    assert_eq!(read.to_spki_der(), public.to_spki_der());
    use std::os::unix::fs::PermissionsExt;
    let mode =
        |p: &std::path::Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode(&index_dir), 0o700);
    assert_eq!(mode(&index_dir.join(user_index::INDEX_KEY_FILE)), 0o600);
}
