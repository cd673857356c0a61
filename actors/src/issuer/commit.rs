//! [`CommitPath`]: the one way a state change of the issuer reaches its
//! log, and the only owner of the coin shards. Every flow (payments,
//! purchases, refunds, card operations, registration and enrollment, key
//! epochs, cash-out) commits through [`CommitPath::commit`] or
//! [`CommitPath::commit_wait`], which run the same sequence:
//!
//! ```text
//! reserve inputs in their shards (never waiting)   busy / spent: refused
//!   -> Commit::new: events, assert balanced         unbalanced: refused, a bug
//!   -> group commit: durable (fsync)                failure: reservations released
//!   -> on the log writer's thread, in log order:
//!        commit the shards (inputs leave, issued enter, a forfeited
//!        epoch's unspent coins go)
//!        mark the transaction committed (idempotency)
//!        apply the batch to the log state (epochs, purchases, aggregates, totals)
//!   -> the caller is told, and only then answers
//! ```
//!
//! The shards are private here: reads go through [`CommitPath::get`] and
//! [`CommitPath::presence`] (or the coin-status projection for coins gone
//! before the last catch-up); reservations through [`CommitPath::reserve`]
//! and [`CommitPath::abort`]. Each shard has its own lock, held for the few
//! map operations of one call, so a payment touching one shard never waits
//! for a transaction on another (tested below).
//!
//! A failed append stops the issuer (its fail-stop): the batch may or may
//! not be in the log, so nothing in memory is trusted until a restart has
//! read the log again.
//!
//! What happens after the batch is durable runs on the log writer's thread:
//! it is short (a few map operations per batch), it needs no thread hop per
//! payment, and it applies commits to the live state in log order. A panic
//! there (a broken invariant: a shard that cannot take a durable batch)
//! trips the issuer's fail-stop rather than poisoning the writer alone.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use ledger::sync::lock;
use ledger::{
    Batch, CoinBody, CoinId, Event, Flows, GroupCommit, Seq, StoreError, Timestamp, TxId,
};

use crate::fail_stop::FailStop;
use crate::idempotency::{CommitRef, IdempotencyTable};
use crate::issuer::core::{IssuerError, LogState};
use crate::issuer::log_stats::CountedLog;
use crate::shard::{CoinPresence, ReserveError, ShardSet};

/// A balanced batch ready for the log, with the coins it moves in the
/// shards: `inputs` (reserved for its transaction) leave, `issued` enter.
/// The only way to build one checks that it balances: the pair of the
/// auditor's check on replay. A batch that does not balance is a bug in
/// this crate, never the client's, and never reaches the log.
#[derive(Debug, Clone)]
pub(crate) struct Commit {
    batch: Batch,
    inputs: Vec<CoinId>,
    issued: Vec<CoinBody>,
}

impl Commit {
    /// The commit of `tx` at `at` (the clock reading the transaction was
    /// decided with: the auditor judges expiry at that time).
    pub(crate) fn new(
        tx: TxId,
        at: Timestamp,
        events: Vec<Event>,
        inputs: &[CoinBody],
        issued: Vec<CoinBody>,
    ) -> Result<Commit, IssuerError> {
        if let Err(e) = Flows::of(&events).check_balanced() {
            tracing::error!(%tx, error = %e, "refusing an unbalanced batch");
            return Err(e.into());
        }
        Ok(Commit {
            batch: Batch { tx, at, events },
            inputs: inputs.iter().map(|c| c.id).collect(),
            issued,
        })
    }

    pub(crate) fn tx(&self) -> TxId {
        self.batch.tx
    }

    /// The coins this commit issues (they enter their shards at commit).
    pub(crate) fn issued(&self) -> &[CoinBody] {
        &self.issued
    }
}

/// The key epochs being revoked or erased. The commit path refuses a
/// batch that issues coins of one, holding the read side from that check
/// until the batch is queued; an epoch's end takes the write side to mark
/// it, then waits for the log (`seal_wait`): from then on no coin of it
/// can enter the shards but those already applied, so what the end plans
/// from the shards and the coin status stays true when its batch commits.
#[derive(Debug, Clone, Default)]
pub(crate) struct ClosingEpochs(
    Arc<std::sync::RwLock<std::collections::BTreeSet<ledger::KeyEpoch>>>,
);

impl ClosingEpochs {
    pub(crate) fn read(
        &self,
    ) -> std::sync::RwLockReadGuard<'_, std::collections::BTreeSet<ledger::KeyEpoch>> {
        self.0.read().expect(ledger::sync::POISONED_LOCK)
    }

    pub(crate) fn insert(&self, epoch: ledger::KeyEpoch) {
        self.0
            .write()
            .expect(ledger::sync::POISONED_LOCK)
            .insert(epoch);
    }

    /// Never panics (it runs in a drop, maybe while unwinding): the set
    /// stays whole even if a holder of the lock panicked.
    pub(crate) fn remove(&self, epoch: ledger::KeyEpoch) {
        self.0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&epoch);
    }

    pub(crate) fn contains(&self, epoch: ledger::KeyEpoch) -> bool {
        self.read().contains(&epoch)
    }

    /// The closing epoch `issued` would mint coins of, if any.
    fn refuses(
        set: &std::collections::BTreeSet<ledger::KeyEpoch>,
        issued: &[CoinBody],
    ) -> Option<ledger::KeyEpoch> {
        if set.is_empty() {
            return None;
        }
        issued.iter().map(|c| c.epoch).find(|e| set.contains(e))
    }
}

/// The commit sequence over the group commit, the shards, the idempotency
/// table and the log state. See the module docs.
pub(crate) struct CommitPath {
    log: Arc<GroupCommit<CountedLog>>,
    shards: ShardSet,
    idempotency: Arc<IdempotencyTable>,
    state: Arc<Mutex<LogState>>,
    fail_stop: FailStop,
    closing: ClosingEpochs,
}

/// What the log writer's thread does once a batch is durable (or failed).
struct AfterAppend {
    commit: Commit,
    shards: ShardSet,
    idempotency: Arc<IdempotencyTable>,
    state: Arc<Mutex<LogState>>,
    fail_stop: FailStop,
}

/// What the commit path tells a batch it refused, after a wait for room
/// in the queue, because it issues coins of a closing epoch: never
/// appended, so nothing is in doubt (no fail-stop).
const ISSUED_UNDER_CLOSING_EPOCH: &str = "issues coins of an epoch being revoked or erased";

impl AfterAppend {
    fn run(self, appended: Result<Seq, StoreError>) -> Result<CommitRef, IssuerError> {
        let tx = self.commit.tx();
        let first_seq = match appended {
            Ok(seq) => seq,
            Err(StoreError::InvalidBatch(ISSUED_UNDER_CLOSING_EPOCH)) => {
                self.shards.abort(tx);
                let epoch = self
                    .commit
                    .issued
                    .first()
                    .map_or(ledger::KeyEpoch(0), |c| c.epoch);
                return Err(IssuerError::IssuedUnderClosingEpoch(epoch));
            }
            Err(e) => {
                self.shards.abort(tx);
                tracing::error!(%tx, error = %e, "log append failed");
                // The batch's outcome is unknown (a commit whose answer
                // was lost may be in the log: a database's primary gone
                // mid-COMMIT) and the writer is poisoned: the issuer stops
                // rather than serve on state it cannot trust, and its
                // restart reads what the log holds (`issuer serve` exits,
                // so a supervisor restarts it on the promoted standby).
                self.fail_stop
                    .trip("the log did not take a batch: restart from the log");
                return Err(e.into());
            }
        };
        let fail_stop = self.fail_stop.clone();
        // A panic here is a broken invariant over a durable batch: the
        // shards or the state no longer match the log.
        match std::panic::catch_unwind(AssertUnwindSafe(|| self.apply(first_seq))) {
            Ok(at) => Ok(at),
            Err(_panic) => {
                fail_stop.trip("the shards or the log state could not take a durable batch");
                Err(IssuerError::FailStopped(
                    "a durable batch could not be applied".into(),
                ))
            }
        }
    }

    fn apply(self, first_seq: Seq) -> CommitRef {
        let Commit {
            batch,
            inputs,
            issued,
        } = self.commit;
        let left = self.shards.commit_touched(batch.tx, &inputs, &issued);
        assert_eq!(
            left.len(),
            inputs.len(),
            "the shards spent other coins than the batch records"
        );
        for event in &batch.events {
            if let Event::FloatForfeited {
                epoch,
                n_coins,
                value,
                ..
            } = event
            {
                let gone = self.shards.forfeit_epoch(*epoch);
                assert_eq!(
                    (gone.n_unspent, gone.value_unspent_minor),
                    (*n_coins, u128::from(value.minor_units())),
                    "the shards forfeited other coins of {epoch} than the batch records"
                );
            }
        }
        let at = CommitRef {
            first_seq,
            n_records: batch.events.len() as u16,
        };
        self.idempotency.commit(batch.tx, at);
        lock(&self.state)
            .apply_batch(&batch.events)
            .expect("a balanced batch keeps the running totals conserved");
        at
    }
}

impl CommitPath {
    pub(crate) fn new(
        log: GroupCommit<CountedLog>,
        shards: ShardSet,
        idempotency: Arc<IdempotencyTable>,
        state: Arc<Mutex<LogState>>,
        fail_stop: FailStop,
    ) -> CommitPath {
        CommitPath {
            log: Arc::new(log),
            shards,
            idempotency,
            state,
            fail_stop,
            closing: ClosingEpochs::default(),
        }
    }

    /// Shares `closing` with the issuer, whose epoch ends mark it.
    pub(crate) fn refusing_issuance_under(mut self, closing: ClosingEpochs) -> CommitPath {
        self.closing = closing;
        self
    }

    /// The group commit (reads of the store, stats, sealing).
    pub(crate) fn log(&self) -> &GroupCommit<CountedLog> {
        &self.log
    }

    /// Reserves `coins` for `tx` in every shard concerned, in shard order,
    /// never waiting; all or nothing. The bodies come back in the order of
    /// `coins`.
    pub(crate) fn reserve(
        &self,
        tx: TxId,
        coins: &[CoinId],
    ) -> Result<Vec<CoinBody>, ReserveError> {
        self.shards.reserve(tx, coins)
    }

    /// Releases every reservation of `tx`.
    pub(crate) fn abort(&self, tx: TxId) {
        self.shards.abort(tx);
    }

    /// The unspent body of `coin`, if any (a read; reserves nothing).
    pub(crate) fn get(&self, coin: &CoinId) -> Option<CoinBody> {
        self.shards.get(coin)
    }

    /// What the shards know of `coin`.
    pub(crate) fn presence(&self, coin: &CoinId) -> CoinPresence {
        self.shards.presence(coin)
    }

    pub(crate) fn n_shards(&self) -> u16 {
        self.shards.n_shards()
    }

    pub(crate) fn n_unspent(&self) -> usize {
        self.shards.n_unspent()
    }

    pub(crate) fn n_reserved(&self) -> usize {
        self.shards.n_reserved()
    }

    pub(crate) fn n_gone(&self) -> usize {
        self.shards.n_gone()
    }

    /// What the shards hold of `epoch` ([`ShardSet::epoch_holdings`]).
    pub(crate) fn epoch_holdings(&self, epoch: ledger::KeyEpoch) -> crate::shard::EpochHoldings {
        self.shards.epoch_holdings(epoch)
    }

    /// Every unspent coin the shards hold.
    pub(crate) fn unspent(&self) -> Vec<CoinBody> {
        (0..self.shards.n_shards())
            .flat_map(|i| self.shards.shard(ledger::ShardIdx(i)).unspent())
            .collect()
    }

    pub(crate) fn unspent_ids(&self) -> std::collections::BTreeSet<CoinId> {
        self.shards.unspent_ids()
    }

    /// [`ShardSet::retire_gone`]: before the coin-status projection catches up.
    pub(crate) fn retire_gone(&self) {
        self.shards.retire_gone();
    }

    /// [`ShardSet::forget_retired`]: after it caught up.
    pub(crate) fn forget_retired(&self) -> usize {
        self.shards.forget_retired()
    }

    /// Hands `commit` to the group commit; `done` is told, once, on the log
    /// writer's thread (or on this one, if it is refused at once), with
    /// where the batch lies once it is durable and applied, or why it is
    /// not. Never waits for the log; waits for room in the group-commit
    /// queue only outside an async runtime (a full queue's wait goes to the
    /// runtime's blocking pool inside one).
    fn submit(
        &self,
        commit: Commit,
        done: impl FnOnce(Result<CommitRef, IssuerError>) + Send + 'static,
    ) {
        let tx = commit.tx();
        if let Some(reason) = self.fail_stop.stopped_because() {
            // A stopped issuer appends nothing more: its memory is not trusted.
            self.shards.abort(tx);
            return done(Err(IssuerError::FailStopped(reason.to_owned())));
        }
        // Held until the batch is queued (see `ClosingEpochs`).
        let closing = self.closing.read();
        if let Some(epoch) = ClosingEpochs::refuses(&closing, commit.issued()) {
            drop(closing);
            self.shards.abort(tx);
            return done(Err(IssuerError::IssuedUnderClosingEpoch(epoch)));
        }
        let batch = commit.batch.clone();
        let issued = commit.issued.clone();
        let after = AfterAppend {
            commit,
            shards: self.shards.clone(),
            idempotency: self.idempotency.clone(),
            state: self.state.clone(),
            fail_stop: self.fail_stop.clone(),
        };
        let ack = move |appended| done(after.run(appended));
        let queued = self.log.try_submit(batch, ack);
        drop(closing);
        if let Err(full) = queued {
            // Backpressure: the queue is full. An async caller's thread
            // must not block on it. The closing epochs are checked again
            // under their lock when the batch is finally queued.
            let log = self.log.clone();
            let closing = self.closing.clone();
            let wait = move || {
                let closing = closing.read();
                match ClosingEpochs::refuses(&closing, &issued) {
                    None => log.submit(full.batch, full.ack),
                    Some(_) => {
                        drop(closing);
                        (full.ack)(Err(StoreError::InvalidBatch(ISSUED_UNDER_CLOSING_EPOCH)))
                    }
                }
            };
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => drop(runtime.spawn_blocking(wait)),
                Err(_) => wait(),
            }
        }
    }

    /// [`CommitPath::submit`], resolving when the batch is durable and
    /// applied. Holds no thread while the log syncs.
    pub(crate) async fn commit(&self, commit: Commit) -> Result<CommitRef, IssuerError> {
        let (done, durable) = tokio::sync::oneshot::channel();
        self.submit(commit, move |outcome| {
            // The requester may have gone; the batch is in the log regardless.
            let _ = done.send(outcome);
        });
        durable
            .await
            .unwrap_or(Err(IssuerError::Log(StoreError::Poisoned)))
    }

    /// [`CommitPath::commit`] for a synchronous caller: waits on this thread.
    pub(crate) fn commit_wait(&self, commit: Commit) -> Result<CommitRef, IssuerError> {
        block_on(self.commit(commit))
    }
}

/// The commit path over a redb log alone: no keys, registry, sessions or
/// projections, a fresh idempotency table and log state. What
/// `varietycash bench --core` drives, so that the ledger core's ceiling is
/// measured on the code that serves payments, not on a copy of it.
pub struct BareCommitPath {
    path: CommitPath,
}

impl BareCommitPath {
    /// Opens (or creates) the log `log_file` with `n_shards` empty shards
    /// and a group commit sized by `config`.
    pub fn open(
        log_file: &std::path::Path,
        n_shards: u16,
        config: ledger::GroupCommitConfig,
    ) -> Result<BareCommitPath, IssuerError> {
        let store = crate::issuer::core::LogBackend::Redb(ledger::RedbStore::open(log_file)?);
        BareCommitPath::on_log(store, n_shards, config)
    }

    /// [`BareCommitPath::open`] over a log in another store (PostgreSQL:
    /// `varietycash bench --core --store postgres://…`), which must be empty.
    pub fn open_on(
        store: Arc<dyn ledger::EventStore>,
        n_shards: u16,
        config: ledger::GroupCommitConfig,
    ) -> Result<BareCommitPath, IssuerError> {
        BareCommitPath::on_log(
            crate::issuer::core::LogBackend::External(store),
            n_shards,
            config,
        )
    }

    fn on_log(
        store: crate::issuer::core::LogBackend,
        n_shards: u16,
        config: ledger::GroupCommitConfig,
    ) -> Result<BareCommitPath, IssuerError> {
        let store = Arc::new(store);
        let timings = Arc::new(crate::timing::StageTimings::default());
        let log = GroupCommit::start(Arc::new(CountedLog::new(store, timings)), config)?;
        Ok(BareCommitPath {
            path: CommitPath::new(
                log,
                ShardSet::new(n_shards),
                Arc::new(IdempotencyTable::new()),
                Arc::new(Mutex::new(LogState::default())),
                FailStop::new(crate::fail_stop::FailStopPolicy::StopIssuer),
            ),
        })
    }

    /// [`CommitPath::reserve`].
    pub fn reserve(&self, tx: TxId, coins: &[CoinId]) -> Result<Vec<CoinBody>, ReserveError> {
        self.path.reserve(tx, coins)
    }

    /// Commits `events` as `tx`: `inputs` (reserved for `tx`) leave the
    /// shards, `issued` enter; `done` is told on the log writer's thread
    /// once the batch is durable and applied. An unbalanced batch is
    /// refused at once (its reservations released).
    pub fn submit(
        &self,
        tx: TxId,
        events: Vec<Event>,
        (inputs, issued): (&[CoinBody], Vec<CoinBody>),
        done: impl FnOnce(Result<CommitRef, IssuerError>) + Send + 'static,
    ) {
        match Commit::new(tx, Timestamp::now(), events, inputs, issued) {
            Ok(commit) => self.path.submit(commit, done),
            Err(e) => {
                self.path.abort(tx);
                done(Err(e));
            }
        }
    }

    /// [`BareCommitPath::submit`], waiting on this thread.
    pub fn commit_wait(
        &self,
        tx: TxId,
        events: Vec<Event>,
        moves: (&[CoinBody], Vec<CoinBody>),
    ) -> Result<CommitRef, IssuerError> {
        let (done, outcome) = std::sync::mpsc::channel();
        self.submit(tx, events, moves, move |result| {
            // The waiter below never leaves before receiving.
            let _ = done.send(result);
        });
        outcome
            .recv()
            .unwrap_or(Err(IssuerError::Log(StoreError::Poisoned)))
    }

    /// The log writer's group commits so far.
    pub fn log_commit_stats(&self) -> crate::issuer::log_stats::LogCommitStats {
        self.path.log().store().stats()
    }
}

/// Runs `future` to completion on this thread (parking it while pending):
/// the synchronous callers' way into the async commit sequence. Only for
/// futures woken by another thread (the log writer, the session writer),
/// never by a runtime this thread would have to drive.
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(output) => return output,
            Poll::Pending => std::thread::park(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use ledger::{
        Amount, GroupCommitConfig, IssueCause, KeyEpoch, MemoryStore, ShardIdx, SpendCause,
    };

    use super::*;
    use crate::issuer::core::LogBackend;
    use crate::timing::StageTimings;

    const N_SHARDS: u16 = 4;

    fn body_in(shard: u16) -> CoinBody {
        loop {
            let id = CoinId::random();
            if id.shard(N_SHARDS) == ShardIdx(shard) {
                return CoinBody {
                    id,
                    value: Amount::from_minor(100),
                    expiry: Timestamp(u64::MAX),
                    epoch: KeyEpoch(1),
                };
            }
        }
    }

    fn path() -> CommitPath {
        let store = Arc::new(LogBackend::Memory(Arc::new(MemoryStore::new())));
        let log = GroupCommit::start(
            Arc::new(CountedLog::new(store, Arc::new(StageTimings::default()))),
            GroupCommitConfig::default(),
        )
        .expect("writer starts");
        CommitPath::new(
            log,
            ShardSet::new(N_SHARDS),
            Arc::new(IdempotencyTable::new()),
            Arc::new(Mutex::new(LogState::default())),
            FailStop::new(crate::fail_stop::FailStopPolicy::StopIssuer),
        )
    }

    /// Issues `coins` through the path, as a settled purchase would.
    fn issue(path: &CommitPath, coins: Vec<CoinBody>) {
        let purchase = ledger::PurchaseId::random();
        let amount = Amount::checked_sum(coins.iter().map(|c| c.value)).expect("small");
        let events = vec![
            Event::PurchaseSettled { purchase, amount },
            Event::CoinsIssued {
                coins: coins.clone(),
                holder: None,
                cause: IssueCause::Purchase(purchase),
            },
        ];
        let commit =
            Commit::new(TxId::random(), Timestamp(1), events, &[], coins).expect("balanced");
        path.commit_wait(commit).expect("durable");
    }

    /// A refresh of `input` into `output`, reserved and committed.
    fn refresh(
        path: &CommitPath,
        input: CoinBody,
        output: CoinBody,
    ) -> Result<CommitRef, IssuerError> {
        let tx = TxId::random();
        let inputs = path.reserve(tx, &[input.id]).expect("unspent and free");
        let events = vec![
            Event::CoinsSpent {
                coins: inputs.clone(),
                cause: SpendCause::Refresh,
            },
            Event::CoinsIssued {
                coins: vec![output],
                holder: None,
                cause: IssueCause::Refresh,
            },
        ];
        path.commit_wait(Commit::new(
            tx,
            Timestamp(1),
            events,
            &inputs,
            vec![output],
        )?)
    }

    /// A shard held busy (its lock taken by another thread for as long as
    /// the test likes) does not delay a payment whose coins all lie in
    /// another shard: reserving, the durable commit and the shards'
    /// commit all finish while shard 0 stays locked.
    #[test]
    fn a_payment_on_one_shard_does_not_wait_for_a_busy_other_shard() {
        let path = path();
        let (input, output) = (body_in(1), body_in(1));
        issue(&path, vec![input, body_in(0)]);
        let (held_tx, held_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        std::thread::scope(|s| {
            let shards = path.shards.clone();
            s.spawn(move || {
                shards.shard(ShardIdx(0)).hold_busy_while(|| {
                    held_tx.send(()).expect("test alive");
                    // Until the payment on shard 1 is done, or a minute.
                    let _ = release_rx.recv_timeout(Duration::from_secs(60));
                });
            });
            held_rx.recv().expect("shard 0 is held");
            let started = Instant::now();
            let at = refresh(&path, input, output).expect("committed while shard 0 is busy");
            let took = started.elapsed();
            release_tx.send(()).expect("holder alive");
            assert!(at.first_seq > Seq(0));
            assert!(
                took < Duration::from_secs(30),
                "the payment waited for the busy shard: {took:?}"
            );
        });
        assert_eq!(path.presence(&input.id), CoinPresence::Gone);
        assert_eq!(path.presence(&output.id), CoinPresence::Unspent);
        assert_eq!(path.n_reserved(), 0);
    }

    /// While epoch 1 closes, a refresh whose fresh coin is of epoch 1 (its
    /// body made before the epoch stopped being current) is refused before
    /// the log: nothing appended, the input still unspent and free, the
    /// issuer serving; a refresh into epoch 2 commits, and once the mark
    /// is gone epoch 1's coin may be issued again.
    #[test]
    fn a_batch_issuing_coins_of_a_closing_epoch_is_refused_before_the_log() {
        let closing = ClosingEpochs::default();
        let path = path().refusing_issuance_under(closing.clone());
        let (input, output) = (body_in(1), body_in(2));
        issue(&path, vec![input]);
        let head = ledger::EventStore::head(path.log().store().as_ref()).expect("head");
        closing.insert(KeyEpoch(1));
        assert!(matches!(
            refresh(&path, input, output),
            Err(IssuerError::IssuedUnderClosingEpoch(KeyEpoch(1)))
        ));
        assert_eq!(
            ledger::EventStore::head(path.log().store().as_ref()).expect("head"),
            head
        );
        assert_eq!(path.presence(&input.id), CoinPresence::Unspent);
        assert_eq!(path.n_reserved(), 0);
        let later = CoinBody {
            epoch: KeyEpoch(2),
            ..output
        };
        refresh(&path, input, later).expect("coins of a live epoch");
        closing.remove(KeyEpoch(1));
        issue(&path, vec![body_in(3)]);
    }

    /// A failed append releases the reservations, and the shards are left
    /// as they were (the coin can be spent once the issuer restarts); the
    /// issuer stops, and a later commit is refused without reaching the log.
    #[test]
    fn a_failed_append_releases_the_reservations_and_stops_the_issuer() {
        let fail_stop = FailStop::new(crate::fail_stop::FailStopPolicy::StopIssuer);
        let memory = Arc::new(MemoryStore::new());
        let store = Arc::new(LogBackend::Memory(memory.clone()));
        let log = GroupCommit::start(
            Arc::new(CountedLog::new(store, Arc::new(StageTimings::default()))),
            GroupCommitConfig::default(),
        )
        .expect("writer starts");
        let path = CommitPath::new(
            log,
            ShardSet::new(N_SHARDS),
            Arc::new(IdempotencyTable::new()),
            Arc::new(Mutex::new(LogState::default())),
            fail_stop.clone(),
        );
        let input = body_in(2);
        issue(&path, vec![input]);
        memory.fail_after_appends(0);
        assert!(matches!(
            refresh(&path, input, body_in(3)),
            Err(IssuerError::Log(_))
        ));
        assert_eq!(path.n_reserved(), 0);
        assert_eq!(path.presence(&input.id), CoinPresence::Unspent);
        assert!(
            fail_stop.is_stopped(),
            "the issuer goes on after a failed append"
        );
        memory.fail_after_appends(u64::MAX);
        assert!(matches!(
            refresh(&path, input, body_in(3)),
            Err(IssuerError::FailStopped(_))
        ));
    }

    /// An unbalanced batch is refused before anything reaches the log.
    #[test]
    fn an_unbalanced_commit_cannot_be_built() {
        let coin = body_in(0);
        let events = vec![Event::CoinsIssued {
            coins: vec![coin],
            holder: None,
            cause: IssueCause::Refresh,
        }];
        assert!(matches!(
            Commit::new(TxId::random(), Timestamp(1), events, &[], vec![coin]),
            Err(IssuerError::Unbalanced(_))
        ));
    }
}
