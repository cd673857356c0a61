//! Group commit: many threads submit batches; one writer thread takes every
//! batch waiting (up to [`GroupCommitConfig::commit_batches_max`]) and
//! appends them in ONE durable [`EventStore::append`], then acknowledges each
//! batch with the seq of its first record.
//!
//! Promises: an acknowledgement `Ok(seq)` is sent only after the append that
//! holds the batch returned (so the batch is durable); batches are appended in
//! the order the writer took them off the queue, which is one total order; a
//! failed append fails every batch in it and poisons the writer: the store's
//! state is then unknown to it, so every later batch gets
//! [`StoreError::Poisoned`] and the issuer must restart from the files (it
//! never guesses). A batch the store would refuse ([`encode_batch`]) is
//! refused at submission, alone, so it cannot poison a commit it would share.
//!
//! The queue is bounded ([`GroupCommitConfig::queue_batches_max`]): a submit
//! waits while it is full (backpressure). Acknowledgements run on the writer
//! thread: they must be short (send on a channel, complete a future).
//!
//! Sealing: started with a [`Sealing`], the writer also appends the
//! issuer's signed checkpoint over its head, itself, between two appends,
//! so the checkpoint always vouches for the record just before it (an
//! auditor accepts no other). It seals once `every_records` records were
//! appended since the last checkpoint, and when asked
//! ([`GroupCommit::seal_wait`]: a timer, an operator action, shutdown),
//! never twice in a row.
//!
//! The core is plain Rust over [`crate::sync`], generic over the store, so
//! loom checks it against [`crate::MemoryStore`] (see the loom tests below).

use tracing::error;

use crate::event::Event;
use crate::store::{Batch, EventStore, Head, Seq, StoreError, encode_batch};
use crate::sync::mpsc::{Receiver, Sender, channel};
use crate::sync::{Arc, Condvar, Mutex, lock, thread};

/// Sizes of the group-commit queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupCommitConfig {
    /// Most batches waiting for the writer; a submit beyond waits.
    pub queue_batches_max: usize,
    /// Most batches appended in one durable transaction.
    pub commit_batches_max: usize,
}

impl Default for GroupCommitConfig {
    fn default() -> Self {
        GroupCommitConfig {
            queue_batches_max: 4096,
            commit_batches_max: 1024,
        }
    }
}

/// What a submitter is told once its batch is durable, or why it is not.
pub type Ack = Box<dyn FnOnce(Result<Seq, StoreError>) + Send + 'static>;

/// What [`GroupCommit::seal_wait`] is told: the seq the new checkpoint
/// vouches for, `None` when the log needed none (it ends with one, is
/// empty, or the writer seals nothing).
pub type SealAck = Box<dyn FnOnce(Result<Option<Seq>, StoreError>) + Send + 'static>;

/// Builds the batch that seals the log at `head` (the issuer's signed
/// checkpoint of it). Runs on the writer thread, between two appends;
/// `None` if it cannot (it reports why itself).
pub type Sealer = Box<dyn FnMut(Head) -> Option<Batch> + Send + 'static>;

/// How the writer seals the log: with what, and how often at least.
pub struct Sealing {
    pub sealer: Sealer,
    /// Seal once this many records were appended since the last seal;
    /// `0`: only when asked.
    pub every_records: u64,
}

impl std::fmt::Debug for Sealing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealing")
            .field("every_records", &self.every_records)
            .finish_non_exhaustive()
    }
}

/// A batch [`GroupCommit::try_submit`] could not queue, handed back.
pub struct QueueFull<F> {
    pub batch: Batch,
    pub ack: F,
}

impl<F> std::fmt::Debug for QueueFull<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "QueueFull({} events)", self.batch.events.len())
    }
}

enum Message {
    Submit { batch: Batch, ack: Ack },
    Seal { ack: SealAck },
    Stop,
}

struct QueueState {
    queued_batches: usize,
    poisoned: bool,
}

struct Shared {
    state: Mutex<QueueState>,
    space: Condvar,
}

/// A log writer doing group commit over a store `S`. Dropping it stops the
/// writer after it has appended (and acknowledged) everything submitted.
pub struct GroupCommit<S: EventStore + 'static> {
    sender: Sender<Message>,
    shared: Arc<Shared>,
    store: Arc<S>,
    config: GroupCommitConfig,
    writer: Option<thread::JoinHandle<()>>,
}

impl<S: EventStore + 'static> GroupCommit<S> {
    /// Starts the writer thread over `store`.
    pub fn start(store: Arc<S>, config: GroupCommitConfig) -> Result<GroupCommit<S>, StoreError> {
        GroupCommit::start_inner(store, config, None)
    }

    /// Starts the writer thread over `store`, sealing the log as `sealing`
    /// says (see the module docs).
    pub fn start_sealed(
        store: Arc<S>,
        config: GroupCommitConfig,
        sealing: Sealing,
    ) -> Result<GroupCommit<S>, StoreError> {
        GroupCommit::start_inner(store, config, Some(sealing))
    }

    fn start_inner(
        store: Arc<S>,
        config: GroupCommitConfig,
        sealing: Option<Sealing>,
    ) -> Result<GroupCommit<S>, StoreError> {
        let config = GroupCommitConfig {
            queue_batches_max: config.queue_batches_max.max(1),
            commit_batches_max: config.commit_batches_max.max(1),
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(QueueState {
                queued_batches: 0,
                poisoned: false,
            }),
            space: Condvar::new(),
        });
        let (sender, receiver) = channel();
        let writer = {
            let shared = Arc::clone(&shared);
            let store = Arc::clone(&store);
            thread::Builder::new()
                .name("vc-log-writer".to_string())
                .spawn(move || run_writer(&*store, &shared, &receiver, config, sealing))?
        };
        Ok(GroupCommit {
            sender,
            shared,
            store,
            config,
            writer: Some(writer),
        })
    }

    /// The store this writer appends to (for reads).
    pub fn store(&self) -> &Arc<S> {
        &self.store
    }

    /// Whether a failed append stopped the writer.
    pub fn is_poisoned(&self) -> bool {
        lock(&self.shared.state).poisoned
    }

    /// Queues `batch`; `ack` is called once, on the writer thread, with the
    /// seq of the batch's first record after it is durable, or with why it
    /// is not. Waits only while the queue is full. A refused batch or a
    /// poisoned writer is answered at once, on this thread.
    pub fn submit(&self, batch: Batch, ack: impl FnOnce(Result<Seq, StoreError>) + Send + 'static) {
        if let Err(e) = encode_batch(&batch) {
            ack(Err(e));
            return;
        }
        {
            let mut state = lock(&self.shared.state);
            while state.queued_batches >= self.config.queue_batches_max && !state.poisoned {
                state = match self.shared.space.wait(state) {
                    Ok(g) => g,
                    Err(_poisoned) => panic!("{}", crate::sync::POISONED_LOCK),
                };
            }
            if state.poisoned {
                drop(state);
                ack(Err(StoreError::Poisoned));
                return;
            }
            state.queued_batches += 1;
        }
        let message = Message::Submit {
            batch,
            ack: Box::new(ack),
        };
        if let Err(returned) = self.sender.send(message) {
            // The writer is gone (it only stops on drop, or by panicking).
            lock(&self.shared.state).queued_batches -= 1;
            if let Message::Submit { ack, .. } = returned.0 {
                ack(Err(StoreError::Poisoned));
            }
        }
    }

    /// Like [`GroupCommit::submit`], but never waits: if the queue is full,
    /// hands the batch and its `ack` back, for a caller that must not block
    /// (an async task can retry later or report overload).
    pub fn try_submit<F>(&self, batch: Batch, ack: F) -> Result<(), QueueFull<F>>
    where
        F: FnOnce(Result<Seq, StoreError>) + Send + 'static,
    {
        {
            let state = lock(&self.shared.state);
            if state.queued_batches >= self.config.queue_batches_max && !state.poisoned {
                return Err(QueueFull { batch, ack });
            }
        }
        // Room now; a racing submitter may take it first, and then this waits
        // for the writer's next take, which is already under way.
        self.submit(batch, ack);
        Ok(())
    }

    /// Asks the writer to seal the log now, after the batches queued before
    /// this call, and waits: the seq the new checkpoint vouches for.
    pub fn seal_wait(&self) -> Result<Option<Seq>, StoreError> {
        if self.is_poisoned() {
            return Err(StoreError::Poisoned);
        }
        let (done, outcome) = channel();
        let ack: SealAck = Box::new(move |result| {
            // The waiter below never leaves before receiving.
            let _ = done.send(result);
        });
        if let Err(returned) = self.sender.send(Message::Seal { ack })
            && let Message::Seal { ack } = returned.0
        {
            ack(Err(StoreError::Poisoned));
        }
        outcome.recv().unwrap_or(Err(StoreError::Poisoned))
    }

    /// Queues `batch` and waits until it is durable: the seq of its first record.
    pub fn submit_wait(&self, batch: Batch) -> Result<Seq, StoreError> {
        let (done, outcome) = channel();
        self.submit(batch, move |result| {
            // The waiter below never leaves before receiving.
            let _ = done.send(result);
        });
        outcome.recv().unwrap_or(Err(StoreError::Poisoned))
    }
}

impl<S: EventStore + 'static> Drop for GroupCommit<S> {
    fn drop(&mut self) {
        // An explicit stop, not a hang-up: loom's channels do not report one.
        let _ = self.sender.send(Message::Stop);
        if let Some(writer) = self.writer.take()
            && writer.join().is_err()
        {
            error!("event log writer thread panicked");
        }
    }
}

/// Poisons the queue if the writer thread unwinds (a panicking ack, a
/// panicking store), so submitters waiting for room are woken and refused
/// instead of waiting forever.
struct PoisonOnUnwind<'a>(&'a Shared);

impl Drop for PoisonOnUnwind<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // Not `lock`: a second panic while unwinding would abort. A
            // state lock poisoned by this very panic needs no flag: every
            // later `lock` of it panics, and the owner's fail-stop acts.
            if let Ok(mut state) = self.0.state.lock() {
                state.poisoned = true;
            }
            self.0.space.notify_all();
        }
    }
}

/// The writer's memory of its sealing: the sealer, and where the log
/// stands since the last checkpoint.
struct SealState {
    sealing: Sealing,
    /// The seq of the log's last record when it was a checkpoint: nothing
    /// new to seal while the head is still there.
    sealed_at: Seq,
    records_since_seal: u64,
}

impl SealState {
    fn new<S: EventStore>(store: &S, sealing: Sealing) -> SealState {
        // A log that ends with a checkpoint (or is empty) needs none yet.
        let sealed_at = match store.head() {
            Ok(head) if head.last_seq == Seq(0) => Seq(0),
            Ok(head) => match store.read(head.last_seq, 1) {
                Ok(records)
                    if matches!(
                        records.first().map(|r| &r.record.event),
                        Some(Event::Checkpoint(_))
                    ) =>
                {
                    head.last_seq
                }
                _ => Seq(u64::MAX),
            },
            Err(_) => Seq(u64::MAX),
        };
        SealState {
            sealing,
            sealed_at,
            records_since_seal: 0,
        }
    }

    fn due(&self) -> bool {
        self.sealing.every_records > 0 && self.records_since_seal >= self.sealing.every_records
    }

    /// Appends the sealer's checkpoint over the head, unless the head is
    /// one already. A failed append is the caller's to handle (poison).
    fn seal<S: EventStore>(&mut self, store: &S) -> Result<Option<Seq>, StoreError> {
        let head = store.head()?;
        if head.last_seq == self.sealed_at {
            self.records_since_seal = 0;
            return Ok(None);
        }
        let Some(batch) = (self.sealing.sealer)(head) else {
            return Ok(None);
        };
        let firsts = store.append(std::slice::from_ref(&batch))?;
        let Some(&first) = firsts.first() else {
            return Err(StoreError::Backend(
                "store acknowledged no checkpoint".to_string(),
            ));
        };
        self.sealed_at = first;
        self.records_since_seal = 0;
        Ok(Some(head.last_seq))
    }
}

fn run_writer<S: EventStore>(
    store: &S,
    shared: &Shared,
    receiver: &Receiver<Message>,
    config: GroupCommitConfig,
    sealing: Option<Sealing>,
) {
    let _poison_on_unwind = PoisonOnUnwind(shared);
    let mut seal_state = sealing.map(|sealing| SealState::new(store, sealing));
    let mut stopping = false;
    while !stopping {
        let mut batches = Vec::new();
        let mut acks: Vec<Ack> = Vec::new();
        let mut seal_acks: Vec<SealAck> = Vec::new();
        match receiver.recv() {
            Ok(Message::Submit { batch, ack }) => {
                batches.push(batch);
                acks.push(ack);
            }
            Ok(Message::Seal { ack }) => seal_acks.push(ack),
            Ok(Message::Stop) | Err(_) => return,
        }
        // A seal request ends the group: the checkpoint follows the batches
        // queued before it, and none queued after.
        while batches.len() < config.commit_batches_max && seal_acks.is_empty() {
            match receiver.try_recv() {
                Ok(Message::Submit { batch, ack }) => {
                    batches.push(batch);
                    acks.push(ack);
                }
                Ok(Message::Seal { ack }) => seal_acks.push(ack),
                Ok(Message::Stop) => {
                    stopping = true;
                    break;
                }
                Err(_) => break,
            }
        }
        if batches.is_empty() {
            let outcome = seal_now(store, shared, seal_state.as_mut());
            for ack in seal_acks {
                ack(outcome.as_ref().copied().map_err(StoreError::duplicate));
            }
            continue;
        }
        let n_records: u64 = batches.iter().map(|b| b.events.len() as u64).sum();
        let poisoned = {
            let mut state = lock(&shared.state);
            state.queued_batches -= batches.len();
            state.poisoned
        };
        shared.space.notify_all();
        if poisoned {
            for ack in acks {
                ack(Err(StoreError::Poisoned));
            }
            for ack in seal_acks {
                ack(Err(StoreError::Poisoned));
            }
            continue;
        }
        let outcome = match store.append(&batches) {
            Ok(firsts) if firsts.len() == acks.len() => Ok(firsts),
            Ok(firsts) => Err(StoreError::Backend(format!(
                "store acknowledged {} of {} batches",
                firsts.len(),
                acks.len()
            ))),
            Err(e) => Err(e),
        };
        match outcome {
            Ok(firsts) => {
                for (ack, first) in acks.into_iter().zip(firsts) {
                    ack(Ok(first));
                }
                if let Some(state) = seal_state.as_mut() {
                    state.records_since_seal = state.records_since_seal.saturating_add(n_records);
                }
                let due = seal_state.as_ref().is_some_and(SealState::due);
                if due || !seal_acks.is_empty() {
                    let outcome = seal_now(store, shared, seal_state.as_mut());
                    for ack in seal_acks {
                        ack(outcome.as_ref().copied().map_err(StoreError::duplicate));
                    }
                }
            }
            Err(e) => {
                error!(error = %e, n_batches = acks.len(), "event log append failed; writer poisoned");
                lock(&shared.state).poisoned = true;
                shared.space.notify_all();
                for ack in acks {
                    ack(Err(e.duplicate()));
                }
                for ack in seal_acks {
                    ack(Err(e.duplicate()));
                }
            }
        }
    }
}

/// Seals the log now if the writer has a sealer and is not poisoned; a
/// failed append of the checkpoint poisons it like any other.
fn seal_now<S: EventStore>(
    store: &S,
    shared: &Shared,
    seal_state: Option<&mut SealState>,
) -> Result<Option<Seq>, StoreError> {
    if lock(&shared.state).poisoned {
        return Err(StoreError::Poisoned);
    }
    let Some(state) = seal_state else {
        return Ok(None);
    };
    state.seal(store).inspect_err(|e| {
        error!(error = %e, "appending a checkpoint failed; writer poisoned");
        lock(&shared.state).poisoned = true;
        shared.space.notify_all();
    })
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::MemoryStore;
    use crate::testkit::sample_batch;

    #[test]
    fn submit_wait_returns_consecutive_first_seqs() {
        let store = Arc::new(MemoryStore::new());
        let writer =
            GroupCommit::start(Arc::clone(&store), GroupCommitConfig::default()).expect("start");
        assert_eq!(writer.submit_wait(sample_batch(1, 2)).expect("ack"), Seq(1));
        assert_eq!(writer.submit_wait(sample_batch(2, 3)).expect("ack"), Seq(3));
        assert_eq!(writer.submit_wait(sample_batch(3, 1)).expect("ack"), Seq(6));
    }

    #[test]
    fn an_invalid_batch_is_refused_alone_without_poisoning() {
        let store = Arc::new(MemoryStore::new());
        let writer = GroupCommit::start(store, GroupCommitConfig::default()).expect("start");
        let err = writer
            .submit_wait(sample_batch(1, 0))
            .expect_err("empty batch refused");
        assert!(matches!(err, StoreError::InvalidBatch(_)));
        assert!(!writer.is_poisoned());
        assert_eq!(writer.submit_wait(sample_batch(2, 1)).expect("ack"), Seq(1));
    }

    /// A sealer that "signs" with an empty signature: the ledger holds no
    /// key; what matters here is where the checkpoint lands.
    fn test_sealing(every_records: u64) -> Sealing {
        Sealing {
            sealer: Box::new(|head: Head| {
                Some(Batch {
                    tx: crate::TxId::derive(
                        "vc/test/checkpoint",
                        &[&head.last_seq.0.to_le_bytes()],
                    ),
                    at: crate::Timestamp(0),
                    events: vec![Event::Checkpoint(crate::Checkpoint {
                        seq: head.last_seq,
                        hash: head.last_hash,
                        signature: crate::SignatureBytes(Vec::new()),
                    })],
                })
            }),
            every_records,
        }
    }

    fn checkpoints_of(store: &MemoryStore) -> Vec<(Seq, Seq)> {
        store
            .read(Seq(1), usize::MAX)
            .expect("read")
            .into_iter()
            .filter_map(|r| match r.record.event {
                Event::Checkpoint(c) => Some((r.record.seq, c.seq)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_sealed_writer_checkpoints_every_k_records_just_after_the_record_it_vouches_for() {
        let store = Arc::new(MemoryStore::new());
        let writer = GroupCommit::start_sealed(
            Arc::clone(&store),
            GroupCommitConfig::default(),
            test_sealing(3),
        )
        .expect("start");
        for no in 1..=4 {
            writer.submit_wait(sample_batch(no, 2)).expect("ack");
        }
        drop(writer);
        // 2 + 2 records: seal after the 4th; 2 + 2 more: seal again.
        assert_eq!(
            checkpoints_of(&store),
            vec![(Seq(5), Seq(4)), (Seq(10), Seq(9))]
        );
    }

    #[test]
    fn a_seal_asked_for_follows_the_batches_before_it_and_never_repeats() {
        let store = Arc::new(MemoryStore::new());
        let writer = GroupCommit::start_sealed(
            Arc::clone(&store),
            GroupCommitConfig::default(),
            test_sealing(0),
        )
        .expect("start");
        assert_eq!(
            writer.seal_wait().expect("seal"),
            None,
            "an empty log needs none"
        );
        writer.submit_wait(sample_batch(1, 3)).expect("ack");
        assert_eq!(writer.seal_wait().expect("seal"), Some(Seq(3)));
        assert_eq!(
            writer.seal_wait().expect("seal"),
            None,
            "the head is a checkpoint"
        );
        drop(writer);
        // A writer started on a log ending with a checkpoint seals nothing new.
        let writer = GroupCommit::start_sealed(
            Arc::clone(&store),
            GroupCommitConfig::default(),
            test_sealing(0),
        )
        .expect("start");
        assert_eq!(writer.seal_wait().expect("seal"), None);
        drop(writer);
        assert_eq!(checkpoints_of(&store), vec![(Seq(4), Seq(3))]);
    }

    #[test]
    fn an_unsealed_writer_answers_a_seal_with_none() {
        let store = Arc::new(MemoryStore::new());
        let writer =
            GroupCommit::start(Arc::clone(&store), GroupCommitConfig::default()).expect("start");
        writer.submit_wait(sample_batch(1, 1)).expect("ack");
        assert_eq!(writer.seal_wait().expect("seal"), None);
    }

    #[test]
    fn a_failed_append_fails_its_batches_and_every_later_one() {
        let store = Arc::new(MemoryStore::new());
        let writer =
            GroupCommit::start(Arc::clone(&store), GroupCommitConfig::default()).expect("start");
        writer.submit_wait(sample_batch(1, 1)).expect("ack");
        store.fail_after_appends(0);
        let err = writer.submit_wait(sample_batch(2, 1)).expect_err("fails");
        assert!(matches!(err, StoreError::Io(_)), "{err}");
        assert!(writer.is_poisoned());
        let err = writer
            .submit_wait(sample_batch(3, 1))
            .expect_err("poisoned");
        assert!(matches!(err, StoreError::Poisoned), "{err}");
        assert_eq!(store.head().expect("head").last_seq, Seq(1));
    }

    /// A store whose appends wait for the test to open a gate.
    struct GatedStore {
        inner: MemoryStore,
        entered: Mutex<std::sync::mpsc::Sender<()>>,
        gate: Mutex<std::sync::mpsc::Receiver<()>>,
    }

    impl EventStore for GatedStore {
        fn append(&self, batches: &[Batch]) -> Result<Vec<Seq>, StoreError> {
            let _ = lock(&self.entered).send(());
            let _ = lock(&self.gate).recv();
            self.inner.append(batches)
        }
        fn head(&self) -> Result<crate::Head, StoreError> {
            self.inner.head()
        }
        fn read(&self, from: Seq, max: usize) -> Result<Vec<crate::StoredRecord>, StoreError> {
            self.inner.read(from, max)
        }
    }

    #[test]
    fn a_full_queue_holds_submitters_back_until_the_writer_takes_more() {
        let (entered_tx, entered) = std::sync::mpsc::channel();
        let (open_gate, gate) = std::sync::mpsc::channel();
        let store = Arc::new(GatedStore {
            inner: MemoryStore::new(),
            entered: Mutex::new(entered_tx),
            gate: Mutex::new(gate),
        });
        let writer = Arc::new(
            GroupCommit::start(
                Arc::clone(&store),
                GroupCommitConfig {
                    queue_batches_max: 2,
                    commit_batches_max: 1,
                },
            )
            .expect("start"),
        );
        let (acks_tx, acks) = std::sync::mpsc::channel();
        let ack = |tx: &std::sync::mpsc::Sender<u64>| {
            let tx = tx.clone();
            move |r: Result<Seq, StoreError>| {
                tx.send(r.expect("acknowledged").0).expect("receiver alive");
            }
        };
        writer.submit(sample_batch(0, 1), ack(&acks_tx));
        entered.recv().expect("writer is appending batch 0");
        writer.submit(sample_batch(1, 1), ack(&acks_tx));
        writer.submit(sample_batch(2, 1), ack(&acks_tx));
        // The queue holds 2: a third waiting batch is refused without blocking ...
        let full = writer
            .try_submit(sample_batch(3, 1), ack(&acks_tx))
            .expect_err("queue is full");
        assert_eq!(full.batch, sample_batch(3, 1));
        // ... and a blocking submit waits until the writer takes one.
        let submitted = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let blocked = {
            let writer = Arc::clone(&writer);
            let submitted = Arc::clone(&submitted);
            let ack = ack(&acks_tx);
            std::thread::spawn(move || {
                writer.submit(sample_batch(4, 1), ack);
                submitted.store(true, std::sync::atomic::Ordering::SeqCst);
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert!(!submitted.load(std::sync::atomic::Ordering::SeqCst));
        for _ in 0..4 {
            open_gate.send(()).expect("writer alive");
        }
        blocked.join().expect("submitter");
        let mut seqs: Vec<u64> = (0..4).map(|_| acks.recv().expect("ack")).collect();
        seqs.sort_unstable();
        assert_eq!(seqs, vec![1, 2, 3, 4]);
        drop(open_gate);
    }

    #[test]
    fn a_panicking_ack_poisons_the_writer_instead_of_hanging_submitters() {
        let store = Arc::new(MemoryStore::new());
        let writer = GroupCommit::start(
            Arc::clone(&store),
            GroupCommitConfig {
                queue_batches_max: 1,
                commit_batches_max: 1,
            },
        )
        .expect("start");
        writer.submit(sample_batch(1, 1), |_| panic!("a buggy acknowledgement"));
        // Either refused at once (poisoned, or the writer gone) or, if queued
        // before the panic, failed when the writer is found dead.
        let err = writer.submit_wait(sample_batch(2, 1)).expect_err("refused");
        assert!(matches!(err, StoreError::Poisoned), "{err}");
        assert!(writer.is_poisoned());
    }

    #[test]
    fn drop_appends_and_acknowledges_everything_submitted() {
        let store = Arc::new(MemoryStore::new());
        let (tx, rx) = std::sync::mpsc::channel();
        {
            let writer = GroupCommit::start(
                Arc::clone(&store),
                GroupCommitConfig {
                    queue_batches_max: 4,
                    commit_batches_max: 3,
                },
            )
            .expect("start");
            for i in 0..20 {
                let tx = tx.clone();
                writer.submit(sample_batch(i, 1), move |r| {
                    tx.send(r.map(|s| s.0)).expect("test receiver alive");
                });
            }
        }
        drop(tx);
        let mut seqs: Vec<u64> = rx.iter().map(|r| r.expect("acknowledged")).collect();
        seqs.sort_unstable();
        assert_eq!(seqs, (1..=20).collect::<Vec<_>>());
        assert_eq!(store.head().expect("head").last_seq, Seq(20));
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    //! Loom explores the interleavings of submitters and the writer over a
    //! MemoryStore: every batch is acknowledged exactly once, after it is in
    //! the store, with seqs forming one total order; a failed append fails
    //! every batch in it and all later ones.

    use super::*;
    use crate::MemoryStore;
    use crate::testkit::sample_batch;

    fn model(f: impl Fn() + Sync + Send + 'static) {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(2);
        builder.check(f);
    }

    #[test]
    fn three_submitters_all_acknowledged_in_one_total_order_after_append() {
        model(|| {
            let store = Arc::new(MemoryStore::new());
            let writer = Arc::new(
                GroupCommit::start(
                    Arc::clone(&store),
                    GroupCommitConfig {
                        queue_batches_max: 2,
                        commit_batches_max: 2,
                    },
                )
                .expect("start"),
            );
            let handles: Vec<_> = (0..3u64)
                .map(|i| {
                    let writer = Arc::clone(&writer);
                    let store = Arc::clone(&store);
                    thread::spawn(move || {
                        let n_events = i as usize + 1;
                        let first = writer
                            .submit_wait(sample_batch(i, n_events))
                            .expect("acknowledged");
                        // Durable before acknowledged: the batch is in the store.
                        let records = store.read(first, n_events).expect("read");
                        assert_eq!(records.len(), n_events);
                        assert!(records.iter().all(|r| r.record.tx == sample_batch(i, 1).tx));
                        (first.0, n_events as u64)
                    })
                })
                .collect();
            let mut spans: Vec<(u64, u64)> = handles
                .into_iter()
                .map(|h| h.join().expect("submitter"))
                .collect();
            spans.sort_unstable();
            // One total order: the batches tile seqs 1..=6 with no gap or overlap.
            let mut next = 1;
            for (first, len) in spans {
                assert_eq!(first, next);
                next += len;
            }
            assert_eq!(store.head().expect("head").last_seq, Seq(6));
            drop(writer);
        });
    }

    #[test]
    fn a_failed_append_fails_every_batch_in_it_and_after_it() {
        model(|| {
            let store = Arc::new(MemoryStore::new());
            store.fail_after_appends(0);
            let writer = Arc::new(
                GroupCommit::start(Arc::clone(&store), GroupCommitConfig::default())
                    .expect("start"),
            );
            let handles: Vec<_> = (0..2u64)
                .map(|i| {
                    let writer = Arc::clone(&writer);
                    thread::spawn(move || writer.submit_wait(sample_batch(i, 1)))
                })
                .collect();
            for h in handles {
                assert!(h.join().expect("submitter").is_err());
            }
            assert!(matches!(
                writer.submit_wait(sample_batch(9, 1)),
                Err(StoreError::Poisoned)
            ));
            assert_eq!(store.head().expect("head").last_seq, Seq(0));
            drop(writer);
        });
    }
}
