//! [`Sequencer`]: the one place that decides whether a transaction's inputs
//! are still unspent and appends its batch. It owns the coin shards, the
//! idempotency table and the group commit, rebuilt from the log at start.
//!
//! ```text
//! CommitRequest
//!   -> limits, events decode (the log's decoder)     Malformed
//!   -> inputs == the coins the events spend/revoke    Malformed
//!   -> Flows::check_balanced                          Malformed
//!   -> idempotency: committed before?                 Durable { earlier: true }
//!                   in flight?                        InFlight
//!   -> dated within the auditor's tolerance of the    Malformed
//!      log's latest time and of this clock
//!   -> reserve inputs (never waiting)                 Busy / NotUnspent
//!   -> every spent body is the shard's body           Malformed (released)
//!   -> every issued coin id never seen, not in flight Malformed (released)
//!   -> group commit: durable (fsync)                  Storage (released)
//!   -> on the writer's thread: commit shards, mark committed
//!   -> Durable { first_seq }
//! ```
//!
//! The decision ([`check_request`]) is pure; reserving, appending and
//! answering happen around it.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use actors::{Begin, CoinPresence, CommitRef, IdempotencyTable, ReserveError, ShardSet};
use ledger::sync::lock;
use ledger::{
    Batch, CoinBody, CoinId, Event, EventStore, Flows, GroupCommit, GroupCommitConfig, Sealing,
    Seq, StoreError, Timestamp, TxId,
};

use crate::constants::{
    BATCH_AHEAD_OF_CLOCK_SECS_MAX, BATCH_BEHIND_LOG_SECS_MAX, INPUTS_PER_COMMIT_MAX,
};
use crate::wire::{CoinState, CommitRequest, FencingEpoch, FromSequencer, Refusal};

/// Records read per step while rebuilding from the log.
const REBUILD_RECORDS_PER_READ: usize = 4096;

/// Why a sequencer could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SequencerError {
    #[error("log: {0}")]
    Store(#[from] StoreError),
}

/// What a valid request moves: the events to append, the inputs' bodies as
/// the events name them, and the coins it issues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedCommit {
    pub events: Vec<Event>,
    pub spent: BTreeMap<CoinId, CoinBody>,
    pub issued: Vec<CoinBody>,
}

/// The pure check of a commit request: limits, events, inputs, balance.
pub fn check_request(request: &CommitRequest) -> Result<CheckedCommit, Refusal> {
    if !request.within_limits() {
        return Err(Refusal::Malformed(
            "counts over the protocol's limits".into(),
        ));
    }
    let mut events = Vec::with_capacity(request.events.len());
    for bytes in &request.events {
        let event = Event::decode(bytes).map_err(|e| Refusal::Malformed(format!("event: {e}")))?;
        events.push(event);
    }
    let mut spent = BTreeMap::new();
    let mut issued = Vec::new();
    for event in &events {
        match event {
            Event::CoinsSpent { coins, .. } | Event::CoinsRevoked { coins } => {
                for body in coins {
                    if spent.insert(body.id, *body).is_some() {
                        return Err(Refusal::Malformed("a coin spent twice".into()));
                    }
                }
            }
            Event::CoinsIssued { coins, .. } => issued.extend(coins.iter().copied()),
            // A checkpoint is the sequencer's own seal, never a validator's.
            Event::Checkpoint(_) => {
                return Err(Refusal::Malformed("a checkpoint from a validator".into()));
            }
            _ => {}
        }
    }
    let mut issued_ids = std::collections::BTreeSet::new();
    for body in &issued {
        if !issued_ids.insert(body.id) || spent.contains_key(&body.id) {
            return Err(Refusal::Malformed("a coin issued twice".into()));
        }
    }
    let mut inputs: Vec<CoinId> = request.inputs.clone();
    inputs.sort();
    let before = inputs.len();
    inputs.dedup();
    if inputs.len() != before {
        return Err(Refusal::Malformed("an input listed twice".into()));
    }
    if !inputs.iter().eq(spent.keys()) {
        return Err(Refusal::Malformed(
            "the inputs are not the coins the events spend".into(),
        ));
    }
    Flows::of(&events)
        .check_balanced()
        .map_err(|e| Refusal::Malformed(format!("unbalanced: {e}")))?;
    Ok(CheckedCommit {
        events,
        spent,
        issued,
    })
}

/// The sequencer: shards, idempotency, group commit, its fencing epoch.
pub struct Sequencer<S: EventStore + 'static> {
    /// The latest time of any batch in the log (seconds).
    latest_at: AtomicU64,
    /// Coin ids that commits in flight are issuing: a second commit
    /// issuing one of them is refused before it reaches the log.
    issuing: Mutex<HashSet<CoinId>>,
    shards: ShardSet,
    idempotency: Arc<IdempotencyTable>,
    log: GroupCommit<S>,
    epoch: FencingEpoch,
    n_durable: AtomicU64,
}

impl<S: EventStore + 'static> Sequencer<S> {
    /// Rebuilds the shards and the idempotency table from the whole log in
    /// `store`, then starts its group commit, which seals the log as
    /// `sealing` says (the issuer's signed checkpoints; `None`: unsigned,
    /// for tests of the protocol alone).
    pub fn rebuild(
        store: Arc<S>,
        n_shards: u16,
        epoch: FencingEpoch,
        sealing: Option<Sealing>,
    ) -> Result<Sequencer<S>, SequencerError> {
        let shards = ShardSet::new(n_shards);
        let idempotency = Arc::new(IdempotencyTable::new());
        let mut next = Seq(1);
        let mut latest_at = 0u64;
        loop {
            let records = store.read(next, REBUILD_RECORDS_PER_READ)?;
            let Some(last) = records.last() else { break };
            next = Seq(last.record.seq.0 + 1);
            for stored in &records {
                latest_at = latest_at.max(stored.record.at.0);
                shards.apply_logged(&stored.record.event);
                idempotency.apply_record(&stored.record);
            }
        }
        tracing::info!(
            records = next.0 - 1,
            unspent = shards.n_unspent(),
            epoch = epoch.0,
            "sequencer rebuilt from the log"
        );
        let log = match sealing {
            Some(sealing) => {
                GroupCommit::start_sealed(store, GroupCommitConfig::default(), sealing)?
            }
            None => GroupCommit::start(store, GroupCommitConfig::default())?,
        };
        Ok(Sequencer {
            latest_at: AtomicU64::new(latest_at),
            issuing: Mutex::default(),
            shards,
            idempotency,
            log,
            epoch,
            n_durable: AtomicU64::new(0),
        })
    }

    pub fn epoch(&self) -> FencingEpoch {
        self.epoch
    }

    /// Appends a signed checkpoint over the log's head, after every batch
    /// queued before this call, unless the log already ends with one (or
    /// the log is unsealed): the seq it vouches for.
    pub fn seal(&self) -> Result<Option<Seq>, StoreError> {
        self.log.seal_wait()
    }

    /// What the shards know of each of `coins`, in order (a read; reserves
    /// nothing). `None` for a lookup over the protocol's limit.
    pub fn lookup(&self, coins: &[CoinId]) -> Option<Vec<CoinState>> {
        if coins.len() > INPUTS_PER_COMMIT_MAX {
            return None;
        }
        Some(
            coins
                .iter()
                .map(|coin| match self.shards.presence(coin) {
                    CoinPresence::Reserved => CoinState::Held,
                    _ => match self.shards.get(coin) {
                        Some(body) => CoinState::Unspent(body),
                        None => CoinState::NotUnspent,
                    },
                })
                .collect(),
        )
    }

    /// Whether the log writer failed: the sequencer must stop serving.
    pub fn is_poisoned(&self) -> bool {
        self.log.is_poisoned()
    }

    /// Batches made durable since start.
    pub fn n_durable(&self) -> u64 {
        self.n_durable.load(Ordering::Relaxed)
    }

    pub fn n_unspent(&self) -> usize {
        self.shards.n_unspent()
    }

    /// Whether a batch dated `at` keeps the log's time as the auditor
    /// requires. Checked against commits already durable: two commits in
    /// flight together may each pass against an older latest time, a gap
    /// bounded by one group commit.
    fn check_time(&self, at: Timestamp) -> Result<(), Refusal> {
        let latest = self.latest_at.load(Ordering::Relaxed);
        if at.0.saturating_add(BATCH_BEHIND_LOG_SECS_MAX) < latest {
            return Err(Refusal::Malformed(format!(
                "dated {} s before the log's latest time",
                latest - at.0
            )));
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        if at.0 > now.saturating_add(BATCH_AHEAD_OF_CLOCK_SECS_MAX) {
            return Err(Refusal::Malformed(format!(
                "dated {} s after the sequencer's clock",
                at.0 - now
            )));
        }
        Ok(())
    }

    /// Claims the ids of `issued` for one commit: none may be known to the
    /// shards (after the rebuild from the whole log, every coin ever
    /// issued is unspent, reserved or gone there) or claimed by another
    /// commit in flight.
    fn claim_issued(&self, issued: &[CoinBody]) -> Result<(), Refusal> {
        let mut issuing = lock(&self.issuing);
        let seen = issued.iter().any(|c| {
            issuing.contains(&c.id) || self.shards.presence(&c.id) != CoinPresence::Unseen
        });
        if seen {
            return Err(Refusal::Malformed("issues a coin id already issued".into()));
        }
        issuing.extend(issued.iter().map(|c| c.id));
        Ok(())
    }

    fn release_issued(&self, issued: &[CoinBody]) {
        let mut issuing = lock(&self.issuing);
        for coin in issued {
            issuing.remove(&coin.id);
        }
    }

    /// Releases whatever `tx` holds (a validator gave up on it).
    pub fn abort(&self, tx: TxId) {
        self.shards.abort(tx);
    }

    /// Decides `request` and, if it may commit, appends it; `answer` is
    /// called exactly once, on this thread for a refusal or a retry of a
    /// committed transaction, on the log writer's thread once durable.
    pub fn commit(
        self: &Arc<Self>,
        request: CommitRequest,
        answer: impl FnOnce(FromSequencer) + Send + 'static,
    ) {
        let (id, tx) = (request.request, request.tx);
        let refuse = |refusal: Refusal| FromSequencer::Refused {
            request: id,
            tx,
            refusal,
        };
        if self.is_poisoned() {
            return answer(refuse(Refusal::Storage));
        }
        let checked = match check_request(&request) {
            Ok(c) => c,
            Err(refusal) => return answer(refuse(refusal)),
        };
        match self.idempotency.begin(tx) {
            Ok(Begin::Started) => {}
            Ok(Begin::InFlight) => return answer(refuse(Refusal::InFlight)),
            Ok(Begin::Committed(at)) => {
                return answer(FromSequencer::Durable {
                    request: id,
                    tx,
                    first_seq: at.first_seq,
                    earlier: true,
                });
            }
            Err(_) => return answer(refuse(Refusal::Storage)),
        }
        if let Err(refusal) = self.check_time(request.at) {
            self.idempotency.abandon(tx);
            return answer(refuse(refusal));
        }
        let inputs: Vec<CoinId> = checked.spent.keys().copied().collect();
        let reserved = match self.shards.reserve(tx, &inputs) {
            Ok(bodies) => bodies,
            Err(e) => {
                self.idempotency.abandon(tx);
                return answer(refuse(match e {
                    ReserveError::Busy { coins } => Refusal::Busy { coins },
                    ReserveError::NotUnspent { coins } => Refusal::NotUnspent { coins },
                    other => Refusal::Malformed(other.to_string()),
                }));
            }
        };
        // A validator names the bodies it spends; they must be the bodies
        // the issuer logged when it issued them (value, epoch, expiry).
        if reserved.iter().any(|b| checked.spent.get(&b.id) != Some(b)) {
            self.shards.abort(tx);
            self.idempotency.abandon(tx);
            return answer(refuse(Refusal::Malformed(
                "a spent coin's body differs from the logged one".into(),
            )));
        }
        // A coin the log has seen, or another commit in flight issues, is
        // never issued again: the shards would refuse it after the batch
        // is durable, with the log holding the coin twice.
        if let Err(refusal) = self.claim_issued(&checked.issued) {
            self.shards.abort(tx);
            self.idempotency.abandon(tx);
            return answer(refuse(refusal));
        }
        let n_records = u16::try_from(checked.events.len()).unwrap_or(u16::MAX);
        let batch = Batch {
            tx,
            at: request.at,
            events: checked.events,
        };
        let me = Arc::clone(self);
        let issued = checked.issued;
        let at = request.at;
        self.log.submit(batch, move |appended| {
            let reply = match appended {
                Ok(first_seq) => {
                    let left = me.shards.commit_touched(tx, &inputs, &issued);
                    me.release_issued(&issued);
                    assert_eq!(left.len(), inputs.len(), "shards spent other coins");
                    me.idempotency.commit(
                        tx,
                        CommitRef {
                            first_seq,
                            n_records,
                        },
                    );
                    me.n_durable.fetch_add(1, Ordering::Relaxed);
                    me.latest_at.fetch_max(at.0, Ordering::Relaxed);
                    FromSequencer::Durable {
                        request: id,
                        tx,
                        first_seq,
                        earlier: false,
                    }
                }
                Err(e) => {
                    tracing::error!(%tx, error = %e, "log append failed");
                    me.release_issued(&issued);
                    me.shards.abort(tx);
                    me.idempotency.abandon(tx);
                    FromSequencer::Refused {
                        request: id,
                        tx,
                        refusal: Refusal::Storage,
                    }
                }
            };
            answer(reply);
        });
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::testkit::{issue, pay};
    use crate::wire::RequestId;
    use ledger::MemoryStore;
    use std::sync::mpsc;

    fn run<S: EventStore + 'static>(
        seq: &Arc<Sequencer<S>>,
        request: CommitRequest,
    ) -> FromSequencer {
        let (send, receive) = mpsc::channel();
        seq.commit(request, move |a| send.send(a).expect("receiver alive"));
        receive.recv().expect("an answer")
    }

    /// Runs both transactions of a purchase; the settlement's answer.
    fn buy<S: EventStore + 'static>(
        seq: &Arc<Sequencer<S>>,
        purchase: [CommitRequest; 2],
    ) -> FromSequencer {
        let [request, settle] = purchase;
        assert!(matches!(run(seq, request), FromSequencer::Durable { .. }));
        run(seq, settle)
    }

    fn fresh() -> Arc<Sequencer<MemoryStore>> {
        Arc::new(
            Sequencer::rebuild(Arc::new(MemoryStore::new()), 4, FencingEpoch(1), None).unwrap(),
        )
    }

    /// A lookup reads the shards as they are: unspent bodies, coins held
    /// by a transaction in flight, spent and unknown coins; over the limit
    /// it is refused; it reserves nothing.
    #[test]
    fn a_lookup_reads_unspent_held_and_spent_coins_and_reserves_nothing() {
        let seq = fresh();
        let (purchase, coins) = issue(RequestId(1), 3);
        assert!(matches!(buy(&seq, purchase), FromSequencer::Durable { .. }));
        let (payment, _) = pay(RequestId(2), &coins[..1]);
        assert!(matches!(run(&seq, payment), FromSequencer::Durable { .. }));
        let held = TxId::random();
        seq.shards.reserve(held, &[coins[2].id]).expect("free");
        let unknown = CoinId::random();
        assert_eq!(
            seq.lookup(&[coins[0].id, coins[1].id, coins[2].id, unknown]),
            Some(vec![
                CoinState::NotUnspent,
                CoinState::Unspent(coins[1]),
                CoinState::Held,
                CoinState::NotUnspent,
            ])
        );
        assert_eq!(seq.shards.n_reserved(), 1, "a lookup reserves nothing");
        let too_many = vec![unknown; INPUTS_PER_COMMIT_MAX + 1];
        assert_eq!(seq.lookup(&too_many), None);
    }

    #[test]
    fn a_payment_commits_once_and_its_retry_gets_the_logged_outcome() {
        let seq = fresh();
        let (purchase, coins) = issue(RequestId(1), 3);
        assert!(matches!(
            buy(&seq, purchase),
            FromSequencer::Durable { earlier: false, .. }
        ));
        let (payment, _) = pay(RequestId(2), &coins);
        let FromSequencer::Durable {
            first_seq,
            earlier: false,
            ..
        } = run(&seq, payment.clone())
        else {
            panic!("the payment should commit")
        };
        let mut retry = payment;
        retry.request = RequestId(3);
        let retry_tx = retry.tx;
        assert_eq!(
            run(&seq, retry),
            FromSequencer::Durable {
                request: RequestId(3),
                tx: retry_tx,
                first_seq,
                earlier: true
            }
        );
    }

    #[test]
    fn a_double_spend_under_another_transaction_is_refused() {
        let seq = fresh();
        let (purchase, coins) = issue(RequestId(1), 2);
        buy(&seq, purchase);
        let (payment, _) = pay(RequestId(2), &coins);
        run(&seq, payment.clone());
        let mut again = payment;
        again.tx = TxId::from_bytes([9; 16]);
        assert!(matches!(
            run(&seq, again),
            FromSequencer::Refused {
                refusal: Refusal::NotUnspent { .. },
                ..
            }
        ));
    }

    #[test]
    fn inputs_that_differ_from_the_spent_coins_are_refused() {
        let seq = fresh();
        let (purchase, coins) = issue(RequestId(1), 2);
        buy(&seq, purchase);
        let (mut payment, _) = pay(RequestId(2), &coins);
        payment.inputs.pop();
        assert!(matches!(
            run(&seq, payment),
            FromSequencer::Refused {
                refusal: Refusal::Malformed(_),
                ..
            }
        ));
    }

    #[test]
    fn a_forged_body_of_a_real_coin_is_refused() {
        let seq = fresh();
        let (purchase, coins) = issue(RequestId(1), 1);
        buy(&seq, purchase);
        let mut forged = coins.clone();
        forged[0].expiry = ledger::Timestamp(forged[0].expiry.0 + 1);
        let (payment, _) = pay(RequestId(2), &forged);
        assert!(matches!(
            run(&seq, payment),
            FromSequencer::Refused {
                refusal: Refusal::Malformed(_),
                ..
            }
        ));
        // Released: the genuine payment still goes through.
        let (payment, _) = pay(RequestId(3), &coins);
        assert!(matches!(run(&seq, payment), FromSequencer::Durable { .. }));
    }

    #[test]
    fn an_unbalanced_or_garbage_batch_is_refused() {
        let seq = fresh();
        let (mut purchase, _) = issue(RequestId(1), 2);
        purchase[1].events.remove(0);
        assert!(matches!(
            buy(&seq, purchase),
            FromSequencer::Refused {
                refusal: Refusal::Malformed(_),
                ..
            }
        ));
        let (mut purchase, _) = issue(RequestId(1), 2);
        purchase[1].events[0] = vec![0xff, 1, 2];
        purchase[1].tx = TxId::random();
        assert!(matches!(
            run(&seq, purchase[1].clone()),
            FromSequencer::Refused {
                refusal: Refusal::Malformed(_),
                ..
            }
        ));
    }

    #[test]
    fn a_batch_dated_behind_the_log_or_ahead_of_the_clock_is_refused() {
        let seq = fresh();
        let (purchase, coins) = issue(RequestId(1), 2);
        buy(&seq, purchase);
        let (mut late, _) = pay(RequestId(2), &coins[..1]);
        late.at = ledger::Timestamp(crate::testkit::TEST_TIME.0 - BATCH_BEHIND_LOG_SECS_MAX - 1);
        assert!(matches!(
            run(&seq, late.clone()),
            FromSequencer::Refused {
                refusal: Refusal::Malformed(_),
                ..
            }
        ));
        let (mut early, _) = pay(RequestId(3), &coins[..1]);
        early.at = ledger::Timestamp(u64::MAX / 2);
        assert!(matches!(
            run(&seq, early),
            FromSequencer::Refused {
                refusal: Refusal::Malformed(_),
                ..
            }
        ));
        // Within the tolerance: committed, and nothing stayed reserved.
        late.at = ledger::Timestamp(crate::testkit::TEST_TIME.0 - BATCH_BEHIND_LOG_SECS_MAX);
        assert!(matches!(run(&seq, late), FromSequencer::Durable { .. }));
    }

    #[test]
    fn a_coin_id_is_never_issued_twice() {
        let seq = fresh();
        let (purchase, coins) = issue(RequestId(1), 2);
        buy(&seq, purchase);
        // A payment whose fresh coin reuses a spent or unspent id.
        for reused in [coins[0], coins[1]] {
            let (mut payment, _) = pay(RequestId(2), &coins[..1]);
            let events = [
                Event::CoinsSpent {
                    coins: coins[..1].to_vec(),
                    cause: ledger::SpendCause::Change,
                },
                Event::CoinsIssued {
                    coins: vec![reused],
                    holder: None,
                    cause: ledger::IssueCause::Change,
                },
            ];
            payment.events = events.iter().map(Event::encode).collect();
            assert!(matches!(
                run(&seq, payment),
                FromSequencer::Refused {
                    refusal: Refusal::Malformed(_),
                    ..
                }
            ));
        }
        // Released: the honest payment of the same coin commits.
        let (payment, _) = pay(RequestId(3), &coins[..1]);
        assert!(matches!(run(&seq, payment), FromSequencer::Durable { .. }));
        // A coin issued by an earlier purchase cannot be issued again.
        let ([request, mut settle], _) = issue(RequestId(4), 1);
        run(&seq, request);
        let events: Vec<Event> = settle
            .events
            .iter()
            .map(|e| match Event::decode(e).unwrap() {
                Event::CoinsIssued { holder, cause, .. } => Event::CoinsIssued {
                    coins: vec![coins[1]],
                    holder,
                    cause,
                },
                other => other,
            })
            .collect();
        settle.events = events.iter().map(Event::encode).collect();
        assert!(matches!(
            run(&seq, settle),
            FromSequencer::Refused {
                refusal: Refusal::Malformed(_),
                ..
            }
        ));
    }

    #[test]
    fn a_rebuilt_sequencer_knows_what_was_spent_and_committed() {
        let store = Arc::new(MemoryStore::new());
        let seq =
            Arc::new(Sequencer::rebuild(Arc::clone(&store), 4, FencingEpoch(1), None).unwrap());
        let (purchase, coins) = issue(RequestId(1), 2);
        buy(&seq, purchase);
        let (payment, fresh_coins) = pay(RequestId(2), &coins);
        run(&seq, payment.clone());
        drop(seq);
        let again = Arc::new(Sequencer::rebuild(store, 8, FencingEpoch(2), None).unwrap());
        assert_eq!(again.n_unspent(), fresh_coins.len());
        assert!(matches!(
            run(&again, payment),
            FromSequencer::Durable { earlier: true, .. }
        ));
    }
}
