//! What tests of this crate and others share (cargo feature `testkit`):
//! a proptest [`Strategy`] for every [`Event`] variant, within the limits
//! [`Event::validate`] enforces, and batches of them; the one generator of
//! valid histories ([`History`], module `history`); the in-memory store's
//! test helpers ([`StoreExt`], [`crate::MemoryStore::from_raw_records`]);
//! the `EventStore` conformance suite; and the test clocks
//! ([`ManualClock`], [`ForwardClock`]).

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

use crate::coin::CoinBody;
use crate::constants::{BATCH_EVENTS_MAX, SEALED_BYTES_MAX, SIGNATURE_BYTES_MAX, TEXT_BYTES_MAX};
use crate::event::{
    BankRejection, Checkpoint, DisclosureSubject, Event, IssueCause, PaymentOption, PublicKeyDer,
    SignatureBytes, SpendCause, Standing,
};
use crate::ids::{
    BalanceId, CardId, CoinId, KeyEpoch, LusId, PurchaseId, Role, SealedBankAccount,
    SealedIdentity, Timestamp, TxId,
};
use crate::money::{Amount, CoinSpec, Denomination};
use crate::store::{Batch, EventStore, Hash32, Seq, StoredRecord};

mod history;

pub use history::{
    ACCOUNTS, EPOCH_SECS, EpochModel, GRACE_SECS, HISTORY_START, HISTORY_STEP_SECS, History,
    PARTICIPANTS, busy_ops, coin_id, participant, seal, seal_account, seal_identity, unseal,
};

/// What tests do with any store (the in-memory one above all) beyond the
/// trait: append a batch of events without building it, read it all back.
pub trait StoreExt {
    /// Appends `events` as one batch (its transaction id derived from the
    /// next seq, its time [`SAMPLE_EPOCH_SECS`] plus that seq); returns the
    /// seq of its first record.
    fn append_events(&self, events: Vec<Event>) -> Seq;
    /// Every record, from seq 1.
    fn all(&self) -> Vec<StoredRecord>;
}

impl<S: EventStore + ?Sized> StoreExt for S {
    fn append_events(&self, events: Vec<Event>) -> Seq {
        history::append_events(self, events)
    }

    #[allow(clippy::expect_used)]
    fn all(&self) -> Vec<StoredRecord> {
        self.read(Seq(1), usize::MAX).expect("read")
    }
}

/// Coins per generated coin event: enough to exercise the vectors, few
/// enough to keep cases fast.
const ARB_COINS_MAX: usize = 8;

pub fn arb_amount() -> impl Strategy<Value = Amount> {
    any::<u64>().prop_map(Amount::from_minor)
}

pub fn arb_timestamp() -> impl Strategy<Value = Timestamp> {
    any::<u64>().prop_map(Timestamp)
}

pub fn arb_epoch() -> impl Strategy<Value = KeyEpoch> {
    any::<u32>().prop_map(KeyEpoch)
}

pub fn arb_sealed_identity() -> impl Strategy<Value = SealedIdentity> {
    vec(any::<u8>(), 0..=64.min(SEALED_BYTES_MAX)).prop_map(|bytes| {
        #[allow(clippy::expect_used)]
        SealedIdentity::from_sealed_bytes(bytes).expect("within SEALED_BYTES_MAX")
    })
}

pub fn arb_sealed_account() -> impl Strategy<Value = SealedBankAccount> {
    vec(any::<u8>(), 0..=64.min(SEALED_BYTES_MAX)).prop_map(|bytes| {
        #[allow(clippy::expect_used)]
        SealedBankAccount::from_sealed_bytes(bytes).expect("within SEALED_BYTES_MAX")
    })
}

pub fn arb_signature() -> impl Strategy<Value = SignatureBytes> {
    vec(any::<u8>(), 0..=SIGNATURE_BYTES_MAX.min(256)).prop_map(SignatureBytes)
}

pub fn arb_text() -> impl Strategy<Value = String> {
    "[a-z ]{0,40}".prop_filter("fits TEXT_BYTES_MAX", |s| s.len() <= TEXT_BYTES_MAX)
}

pub fn arb_role() -> impl Strategy<Value = Role> {
    prop_oneof![
        Just(Role::CoinPurchaser),
        Just(Role::Redeemer),
        Just(Role::Merchant)
    ]
}

pub fn arb_coin_body() -> impl Strategy<Value = CoinBody> {
    (
        any::<[u8; 16]>(),
        arb_amount(),
        arb_timestamp(),
        arb_epoch(),
    )
        .prop_map(|(id, value, expiry, epoch)| CoinBody {
            id: CoinId::from_bytes(id),
            value,
            expiry,
            epoch,
        })
}

pub fn arb_coins() -> impl Strategy<Value = Vec<CoinBody>> {
    vec(arb_coin_body(), 0..=ARB_COINS_MAX)
}

/// A valid coin spec: 1 to 4 lines of small counts and values (its total fits).
pub fn arb_spec() -> impl Strategy<Value = CoinSpec> {
    vec((1u32..=100, 1u64..=1_000_000), 1..=4).prop_map(|lines| {
        #[allow(clippy::expect_used)]
        CoinSpec::new(
            lines
                .into_iter()
                .map(|(count, value)| Denomination {
                    count,
                    value: Amount::from_minor(value),
                })
                .collect(),
        )
        .expect("small counts and values make a valid spec")
    })
}

fn arb_issue_cause() -> impl Strategy<Value = IssueCause> {
    prop_oneof![
        any::<[u8; 16]>().prop_map(|p| IssueCause::Purchase(PurchaseId::from_bytes(p))),
        Just(IssueCause::Payment),
        Just(IssueCause::Change),
        Just(IssueCause::Refresh),
        Just(IssueCause::Refund),
        Just(IssueCause::CardUnload),
        Just(IssueCause::Recoup),
    ]
}

fn arb_spend_cause() -> impl Strategy<Value = SpendCause> {
    prop_oneof![
        prop_oneof![
            Just(PaymentOption::Refresh),
            Just(PaymentOption::Redeem),
            Just(PaymentOption::Aggregate)
        ]
        .prop_map(SpendCause::Payment),
        Just(SpendCause::Change),
        Just(SpendCause::Refresh),
        Just(SpendCause::Redeem),
        Just(SpendCause::CardLoad),
        Just(SpendCause::Recoup),
    ]
}

fn arb_rejection() -> impl Strategy<Value = BankRejection> {
    prop_oneof![
        Just(BankRejection::InsufficientFunds),
        Just(BankRejection::AccountClosed),
        Just(BankRejection::UnknownAccount),
    ]
}

fn purchase_id() -> impl Strategy<Value = PurchaseId> {
    any::<[u8; 16]>().prop_map(PurchaseId::from_bytes)
}

fn balance_id() -> impl Strategy<Value = BalanceId> {
    any::<[u8; 16]>().prop_map(BalanceId::from_bytes)
}

fn card_id() -> impl Strategy<Value = CardId> {
    any::<[u8; 8]>().prop_map(CardId::from_bytes)
}

/// Any event, every variant reachable, within the limits of [`Event::validate`].
pub fn arb_event() -> impl Strategy<Value = Event> {
    prop_oneof![
        (
            arb_sealed_identity(),
            vec(any::<u8>(), 0..=300),
            arb_timestamp()
        )
            .prop_map(|(participant, key, cert_expiry)| Event::Registered {
                participant,
                public_key: PublicKeyDer(key),
                cert_expiry,
            }),
        (
            arb_sealed_identity(),
            arb_role(),
            arb_sealed_account(),
            arb_signature()
        )
            .prop_map(|(participant, role, bank_account, signature)| {
                Event::EnrollmentRequested {
                    participant,
                    role,
                    bank_account,
                    signature,
                }
            }),
        (arb_sealed_identity(), arb_role(), option::of(balance_id())).prop_map(
            |(participant, role, balance)| Event::Enrolled {
                participant,
                role,
                balance,
            }
        ),
        (
            purchase_id(),
            arb_sealed_identity(),
            arb_sealed_account(),
            arb_spec(),
            arb_amount(),
            any::<bool>(),
            arb_signature()
        )
            .prop_map(
                |(purchase, purchaser, bank_account, spec, amount, anonymous, authorization)| {
                    Event::PurchaseRequested {
                        purchase,
                        purchaser,
                        bank_account,
                        spec,
                        amount,
                        anonymous,
                        authorization,
                    }
                }
            ),
        (purchase_id(), arb_amount())
            .prop_map(|(purchase, amount)| Event::PurchaseSettled { purchase, amount }),
        (purchase_id(), arb_rejection())
            .prop_map(|(purchase, reason)| Event::PurchaseRejected { purchase, reason }),
        purchase_id().prop_map(|purchase| Event::PurchaseAcknowledged { purchase }),
        (
            arb_coins(),
            option::of(arb_sealed_identity()),
            arb_issue_cause()
        )
            .prop_map(|(coins, holder, cause)| Event::CoinsIssued {
                coins,
                holder,
                cause
            }),
        (arb_coins(), arb_spend_cause())
            .prop_map(|(coins, cause)| Event::CoinsSpent { coins, cause }),
        arb_coins().prop_map(|coins| Event::CoinsRevoked { coins }),
        (arb_amount(), arb_sealed_account()).prop_map(|(amount, bank_account)| {
            Event::Redeemed {
                amount,
                bank_account,
            }
        }),
        (balance_id(), arb_amount())
            .prop_map(|(balance, amount)| Event::Aggregated { balance, amount }),
        (balance_id(), arb_amount())
            .prop_map(|(balance, amount)| Event::AggregateWithdrawn { balance, amount }),
        (
            any::<u32>(),
            card_id(),
            any::<u32>(),
            arb_amount(),
            arb_timestamp()
        )
            .prop_map(|(lus, card, nt, amount, guaranteed_at)| Event::CardLoaded {
                lus: LusId(lus),
                card,
                nt,
                amount,
                guaranteed_at,
            }),
        (any::<u32>(), card_id(), any::<u32>(), arb_amount()).prop_map(
            |(lus, card, nt, amount)| Event::CardUnloaded {
                lus: LusId(lus),
                card,
                nt,
                amount,
            }
        ),
        (any::<u32>(), any::<u32>(), arb_amount(), arb_amount()).prop_map(
            |(lus, period, paid_to_lus, received_from_lus)| Event::Cleared {
                lus: LusId(lus),
                period,
                paid_to_lus,
                received_from_lus,
            }
        ),
        (arb_epoch(), arb_timestamp(), arb_timestamp()).prop_map(
            |(epoch, coins_expire_at, grace_ends_at)| Event::EpochOpened {
                epoch,
                coins_expire_at,
                grace_ends_at,
            }
        ),
        arb_epoch().prop_map(|epoch| Event::EpochClosed { epoch }),
        (arb_epoch(), any::<u64>(), arb_amount(), any::<[u8; 32]>()).prop_map(
            |(epoch, n_coins, value, digest)| Event::SpentCoinsErased {
                epoch,
                n_coins,
                value,
                digest: Hash32(digest),
            }
        ),
        (any::<[u8; 16]>(), arb_text(), arb_text()).prop_map(|(coin, requester, reason)| {
            Event::IdentityDisclosed {
                coin: CoinId::from_bytes(coin),
                requester,
                reason,
            }
        }),
        (any::<u64>(), any::<[u8; 32]>(), arb_signature()).prop_map(|(seq, hash, signature)| {
            Event::Checkpoint(Checkpoint {
                seq: Seq(seq),
                hash: Hash32(hash),
                signature,
            })
        }),
        (arb_sealed_identity(), arb_role())
            .prop_map(|(participant, role)| Event::EnrollmentRefused { participant, role }),
        (
            arb_sealed_identity(),
            prop_oneof![
                Just(Standing::Active),
                Just(Standing::Suspended),
                Just(Standing::Revoked)
            ]
        )
            .prop_map(|(participant, standing)| Event::StandingChanged {
                participant,
                standing
            }),
        (
            arb_sealed_identity(),
            vec(any::<u8>(), 0..=300),
            arb_timestamp(),
            arb_signature()
        )
            .prop_map(
                |(participant, key, cert_expiry, signature)| Event::KeyChanged {
                    participant,
                    public_key: PublicKeyDer(key),
                    cert_expiry,
                    signature,
                }
            ),
        (
            any::<bool>(),
            any::<[u8; 16]>(),
            arb_text(),
            arb_text(),
            any::<[u8; 32]>(),
        )
            .prop_map(|(by_coin, subject, requester, reason, key)| {
                let mut other = key;
                other[0] ^= 1;
                Event::IdentityDisclosedUnderDualControl {
                    subject: if by_coin {
                        DisclosureSubject::Coin(CoinId::from_bytes(subject))
                    } else {
                        DisclosureSubject::Purchase(PurchaseId::from_bytes(subject))
                    },
                    requester,
                    reason,
                    approver_keys: [Hash32(key), Hash32(other)],
                }
            }),
        (any::<[u8; 16]>(), arb_amount(), arb_text()).prop_map(|(purchase, amount, reason)| {
            Event::PurchaseDebitReturned {
                purchase: PurchaseId::from_bytes(purchase),
                amount,
                reason,
            }
        }),
        (arb_epoch(), arb_amount()).prop_map(|(epoch, owed)| Event::EpochRevoked { epoch, owed }),
        (
            arb_epoch(),
            any::<u64>(),
            any::<u64>(),
            arb_amount(),
            any::<[u8; 32]>()
        )
            .prop_map(
                |(epoch, through, n_coins, value, digest)| Event::EpochErased {
                    epoch,
                    through: Seq(through),
                    n_coins,
                    value,
                    digest: Hash32(digest),
                }
            ),
        (arb_epoch(), any::<u64>(), arb_amount(), any::<[u8; 32]>()).prop_map(
            |(epoch, n_coins, value, digest)| Event::FloatForfeited {
                epoch,
                // A forfeiture of no coins carries no value (`Event::validate`).
                n_coins: n_coins.max(u64::from(!value.is_zero())),
                value,
                digest: Hash32(digest),
            }
        ),
    ]
}

/// A batch of 1 to `events_max` random events (capped at [`BATCH_EVENTS_MAX`]).
pub fn arb_batch(events_max: usize) -> impl Strategy<Value = Batch> {
    (
        any::<[u8; 16]>(),
        arb_timestamp(),
        vec(arb_event(), 1..=events_max.clamp(1, BATCH_EVENTS_MAX)),
    )
        .prop_map(|(tx, at, events)| Batch {
            tx: TxId::from_bytes(tx),
            at,
            events,
        })
}

/// A deterministic batch of `n_events` small events, distinct for each
/// `batch_no`: for tests and benchmarks that need no randomness. Its time
/// is [`SAMPLE_EPOCH_SECS`] plus `batch_no` seconds, so times never go back.
pub fn sample_batch(batch_no: u64, n_events: usize) -> Batch {
    let mut tx = [0u8; 16];
    tx[..8].copy_from_slice(&batch_no.to_le_bytes());
    tx[8..].copy_from_slice(b"vc/test/");
    let events = (0..n_events as u64)
        .map(|i| Event::Aggregated {
            balance: BalanceId::from_bytes(tx),
            amount: Amount::from_minor(batch_no.wrapping_mul(1000).wrapping_add(i)),
        })
        .collect();
    Batch {
        tx: TxId::from_bytes(tx),
        at: Timestamp(SAMPLE_EPOCH_SECS.saturating_add(batch_no)),
        events,
    }
}

/// The time of [`sample_batch`]`(0, _)`: 2026-01-01T00:00:00Z.
pub const SAMPLE_EPOCH_SECS: u64 = 1_767_225_600;

/// `n` sample batches numbered from `first`, of 1 to 4 events each.
pub fn sample_batches(first: u64, n: u64) -> Vec<Batch> {
    (first..first + n)
        .map(|i| sample_batch(i, (i % 4) as usize + 1))
        .collect()
}

/// One conformance suite for every [`crate::EventStore`] backend (in the
/// manner of Cashu CDK's `mint_db_test!`): `event_store_conformance!(name,
/// make)` expands to a module `name` of tests, each checking one promise of
/// the trait's contract against a fresh store. `make()` returns
/// `Some((store, guard))`, the store (a [`crate::RawEventStore`]) and
/// whatever must outlive it (a temporary directory, a scratch database), or
/// `None` to skip the test (a backend whose server is not configured; the
/// backend says why).
#[macro_export]
macro_rules! event_store_conformance {
    ($backend:ident, $make:expr) => {
        mod $backend {
            #[allow(unused_imports)]
            use $crate::{
                Batch, ChainVerifier, EventStore, Hash32, RawEventStore, Seq, StoreError,
                testkit::{sample_batch, sample_batches},
                verify_store,
            };

            #[test]
            fn empty_log_has_genesis_head_and_no_records() {
                let Some((store, _guard)) = $make() else {
                    return;
                };
                let head = store.head().expect("head");
                assert_eq!(head.last_seq, Seq(0));
                assert_eq!(head.last_hash, Hash32::GENESIS);
                assert!(store.read(Seq(1), 10).expect("read").is_empty());
            }

            #[test]
            fn seqs_start_at_one_and_have_no_gaps() {
                let Some((store, _guard)) = $make() else {
                    return;
                };
                let firsts = store
                    .append(&[sample_batch(1, 3), sample_batch(2, 1), sample_batch(3, 2)])
                    .expect("append");
                assert_eq!(firsts, vec![Seq(1), Seq(4), Seq(5)]);
                let firsts = store.append(&[sample_batch(4, 2)]).expect("append");
                assert_eq!(firsts, vec![Seq(7)]);
                let seqs: Vec<u64> = store
                    .read(Seq(1), 100)
                    .expect("read")
                    .iter()
                    .map(|r| r.record.seq.0)
                    .collect();
                assert_eq!(seqs, (1..=8).collect::<Vec<_>>());
                assert_eq!(store.head().expect("head").last_seq, Seq(8));
            }

            #[test]
            fn records_read_back_as_appended_with_batch_positions() {
                let Some((store, _guard)) = $make() else {
                    return;
                };
                let batches = vec![sample_batch(10, 3), sample_batch(11, 2)];
                store.append(&batches).expect("append");
                let read = store.read(Seq(1), 100).expect("read");
                let mut i = 0;
                for batch in &batches {
                    for (index, event) in batch.events.iter().enumerate() {
                        let r = &read[i].record;
                        assert_eq!(r.tx, batch.tx);
                        assert_eq!(&r.event, event);
                        assert_eq!(usize::from(r.batch_index), index);
                        assert_eq!(usize::from(r.batch_len), batch.events.len());
                        i += 1;
                    }
                }
                assert_eq!(i, read.len());
            }

            #[test]
            fn chain_links_every_record_and_verifies() {
                let Some((store, _guard)) = $make() else {
                    return;
                };
                for i in 0..5 {
                    store.append(&sample_batches(i * 10, 3)).expect("append");
                }
                let read = store.read(Seq(1), 1000).expect("read");
                assert_eq!(read[0].prev_hash, Hash32::GENESIS);
                for pair in read.windows(2) {
                    assert_eq!(pair[1].prev_hash, pair[0].hash);
                }
                let head = verify_store(&store, 7).expect("chain verifies");
                assert_eq!(head, store.head().expect("head"));
                assert_eq!(head.last_hash, read.last().expect("records").hash);
            }

            #[test]
            fn reads_of_ranges_return_exactly_that_range() {
                let Some((store, _guard)) = $make() else {
                    return;
                };
                store.append(&sample_batches(0, 10)).expect("append");
                let all = store.read(Seq(1), usize::MAX).expect("read");
                let n = all.len() as u64;
                for from in [1, 2, n / 2, n, n + 1, n + 50] {
                    for max in [0usize, 1, 3, 1000] {
                        let got = store.read(Seq(from), max).expect("read");
                        let want: Vec<_> = all
                            .iter()
                            .filter(|r| r.record.seq.0 >= from)
                            .take(max)
                            .cloned()
                            .collect();
                        assert_eq!(got, want, "from {from} max {max}");
                    }
                }
                // Seq(0) reads from the start.
                assert_eq!(store.read(Seq(0), 2).expect("read"), all[..2].to_vec());
            }

            #[test]
            fn invalid_batch_is_refused_whole_and_appends_nothing() {
                let Some((store, _guard)) = $make() else {
                    return;
                };
                store.append(&[sample_batch(1, 2)]).expect("append");
                let before = store.head().expect("head");
                let empty = Batch {
                    tx: sample_batch(2, 1).tx,
                    at: sample_batch(2, 1).at,
                    events: vec![],
                };
                let err = store
                    .append(&[sample_batch(3, 1), empty])
                    .expect_err("empty batch refused");
                assert!(matches!(err, StoreError::InvalidBatch(_)), "{err}");
                let too_long = sample_batch(4, $crate::constants::BATCH_EVENTS_MAX + 1);
                let err = store
                    .append(&[too_long])
                    .expect_err("oversized batch refused");
                assert!(matches!(err, StoreError::InvalidBatch(_)), "{err}");
                assert_eq!(store.head().expect("head"), before);
                assert_eq!(store.read(Seq(1), 100).expect("read").len(), 2);
            }

            #[test]
            fn raw_reads_hash_to_the_stored_hash() {
                let Some((store, _guard)) = $make() else {
                    return;
                };
                store.append(&sample_batches(0, 4)).expect("append");
                let raw = store.read_raw(Seq(1), 100).expect("read raw");
                let decoded = store.read(Seq(1), 100).expect("read");
                assert_eq!(raw.len(), decoded.len());
                let mut verifier = ChainVerifier::new();
                for (r, d) in raw.iter().zip(&decoded) {
                    assert_eq!(r.recomputed_hash(), r.hash);
                    assert_eq!(r.event_bytes, d.record.event.encode());
                    assert_eq!(r.decode().expect("decode"), *d);
                    verifier.feed(r).expect("verifies");
                }
                verifier.finish().expect("ends on a batch boundary");
            }

            #[test]
            fn reads_into_a_used_buffer_return_exactly_what_fresh_reads_do() {
                // The auditor hands chunks back to be refilled: a refill must
                // leave nothing of the records it overwrote.
                let Some((store, _guard)) = $make() else {
                    return;
                };
                store.append(&sample_batches(0, 6)).expect("append");
                let mut buffer = store.read_raw(Seq(1), 100).expect("read raw");
                for (from, max) in [(3, 4), (1, 100), (5, 2), (1000, 3), (2, 1)] {
                    store
                        .read_raw_into(Seq(from), max, &mut buffer)
                        .expect("read into");
                    assert_eq!(
                        buffer,
                        store.read_raw(Seq(from), max).expect("read raw"),
                        "from {from}, at most {max}"
                    );
                }
            }

            #[test]
            fn empty_append_changes_nothing() {
                let Some((store, _guard)) = $make() else {
                    return;
                };
                assert_eq!(store.append(&[]).expect("append"), Vec::<Seq>::new());
                assert_eq!(store.head().expect("head").last_seq, Seq(0));
            }

            #[test]
            fn same_batches_make_the_same_chain_on_every_backend() {
                let Some((store, _guard)) = $make() else {
                    return;
                };
                store.append(&sample_batches(0, 6)).expect("append");
                let reference = $crate::MemoryStore::new();
                reference.append(&sample_batches(0, 6)).expect("append");
                assert_eq!(store.head().expect("head"), reference.head().expect("head"));
            }
        }
    };
}

/// A clock a test sets and moves by hand (the issuer's expiry and epochs,
/// a wallet's view of time), instead of sleeping until time has passed.
#[derive(Debug, Default)]
pub struct ManualClock(std::sync::atomic::AtomicU64);

impl ManualClock {
    /// A clock standing at `at` until the test moves it.
    pub fn at(at: Timestamp) -> ManualClock {
        ManualClock(std::sync::atomic::AtomicU64::new(at.0))
    }

    pub fn set(&self, at: Timestamp) {
        self.0.store(at.0, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn advance(&self, secs: u64) {
        self.0.fetch_add(secs, std::sync::atomic::Ordering::SeqCst);
    }
}

impl crate::Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(std::sync::atomic::Ordering::SeqCst))
    }
}

/// The wall clock plus an offset the test sets: time runs as usual, and a
/// test makes a day pass at once.
#[derive(Debug, Default)]
pub struct ForwardClock(std::sync::atomic::AtomicU64);

impl ForwardClock {
    pub fn set_offset(&self, secs: u64) {
        self.0.store(secs, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn advance(&self, secs: u64) {
        self.0.fetch_add(secs, std::sync::atomic::Ordering::SeqCst);
    }
}

impl crate::Clock for ForwardClock {
    fn now(&self) -> Timestamp {
        Timestamp::now().plus_secs(self.0.load(std::sync::atomic::Ordering::SeqCst))
    }
}
