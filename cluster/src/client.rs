//! [`SequencerClient`]: a validator's side of the connection. One
//! persistent connection to the active sequencer, found among the
//! configured addresses; commits are numbered and may be answered in any
//! order; a heartbeat keeps an idle connection known to be alive.
//!
//! Cut off from the sequencer (no address answers, the connection breaks,
//! or an answer takes longer than `COMMIT_WAIT_MS_MAX`), a commit returns
//! [`CommitError::Unavailable`]: the validator answers 503 with
//! Retry-After and never guesses. A commit whose answer was lost may still
//! have landed; the client's retry of the same transaction gets the logged
//! outcome (`Durable { earlier: true }`).

use std::collections::HashMap;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ledger::sync::lock;
use ledger::{CoinId, Event, Seq, Timestamp, TxId};

use crate::channel::{
    FrameOpener, FrameSealer, NodeKey, NodeName, ValidatorHandshake, fresh_nonce,
};
use crate::constants::{
    COMMIT_WAIT_MS_MAX, HANDSHAKE_BYTES_MAX, HANDSHAKE_MS_MAX, HEARTBEAT_EVERY_MS,
    INPUTS_PER_COMMIT_MAX, PEER_SILENT_MS_MAX, RETRY_AFTER_SECS,
};
use crate::io::{read_frame, read_frame_before, write_frame};
use crate::wire::{
    CoinState, CommitRequest, FencingEpoch, FromSequencer, PaymentAnswer, PaymentCall, Refusal,
    RequestId, ToSequencer,
};

/// How long a connection attempt to one sequencer address may take.
const CONNECT_TIMEOUT_MS: u64 = 500;

/// Who a validator is and where the sequencers are (active and standbys,
/// in any order).
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub node: NodeName,
    pub key: NodeKey,
    pub sequencers: Vec<SocketAddr>,
}

/// A transaction the sequencer made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    pub first_seq: Seq,
    /// An earlier request committed it (this one is a retry).
    pub earlier: bool,
}

/// Why a commit did not happen (or is not known to have happened).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommitError {
    #[error("the sequencer refused: {0}")]
    Refused(Refusal),
    /// No answer from any sequencer: answer 503 with this Retry-After.
    #[error("no sequencer answered: retry after {retry_after_secs} s")]
    Unavailable { retry_after_secs: u64 },
}

fn unavailable() -> CommitError {
    CommitError::Unavailable {
        retry_after_secs: RETRY_AFTER_SECS,
    }
}

type Pending = Arc<Mutex<HashMap<RequestId, mpsc::Sender<FromSequencer>>>>;

struct Connection {
    writer: Mutex<(TcpStream, FrameSealer)>,
    pending: Pending,
    alive: Arc<AtomicBool>,
}

impl Connection {
    fn send(&self, message: &ToSequencer) -> bool {
        let mut guard = lock(&self.writer);
        let (stream, sealer) = &mut *guard;
        let frame = sealer.seal(message);
        if write_frame(stream, &frame).is_err() {
            self.kill(stream);
            return false;
        }
        true
    }

    fn kill(&self, stream: &TcpStream) {
        self.alive.store(false, Ordering::SeqCst);
        let _ = stream.shutdown(Shutdown::Both);
    }
}

struct Inner {
    config: ClientConfig,
    seen_epoch: Mutex<FencingEpoch>,
    connection: Mutex<Option<Arc<Connection>>>,
    next_request: AtomicU64,
    stopped: AtomicBool,
}

/// A validator's connection to the sequencer. Cheap to clone.
#[derive(Clone)]
pub struct SequencerClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SequencerClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SequencerClient")
            .field("node", &self.inner.config.node)
            .field("sequencers", &self.inner.config.sequencers)
            .finish_non_exhaustive()
    }
}

impl SequencerClient {
    /// A client that connects on first use and keeps a heartbeat going.
    pub fn start(config: ClientConfig) -> SequencerClient {
        let client = SequencerClient {
            inner: Arc::new(Inner {
                config,
                seen_epoch: Mutex::new(FencingEpoch(0)),
                connection: Mutex::new(None),
                next_request: AtomicU64::new(1),
                stopped: AtomicBool::new(false),
            }),
        };
        let beat = client.clone();
        let spawned = std::thread::Builder::new()
            .name("sequencer-heartbeat".into())
            .spawn(move || {
                let mut nonce = 0u64;
                while !beat.inner.stopped.load(Ordering::SeqCst) {
                    nonce += 1;
                    if let Some(conn) = beat.connection() {
                        conn.send(&ToSequencer::Heartbeat { nonce });
                    }
                    std::thread::sleep(Duration::from_millis(HEARTBEAT_EVERY_MS));
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "no heartbeat thread: idle connections are found dead only on use");
        }
        client
    }

    /// Stops the heartbeat and closes the connection.
    pub fn stop(&self) {
        self.inner.stopped.store(true, Ordering::SeqCst);
        if let Some(conn) = lock(&self.inner.connection).take() {
            conn.kill(&lock(&conn.writer).0);
        }
    }

    /// The highest fencing epoch seen.
    pub fn seen_epoch(&self) -> FencingEpoch {
        *lock(&self.inner.seen_epoch)
    }

    /// Whether a live connection to a sequencer is open (for health checks).
    pub fn is_connected(&self) -> bool {
        lock(&self.inner.connection)
            .as_ref()
            .is_some_and(|c| c.alive.load(Ordering::SeqCst))
    }

    /// Asks the sequencer to reserve `inputs` and append `events` as `tx`;
    /// returns once durable, refused, or unavailable.
    pub fn commit(
        &self,
        tx: TxId,
        at: Timestamp,
        inputs: Vec<CoinId>,
        events: &[Event],
    ) -> Result<Committed, CommitError> {
        // send_commit numbers it.
        self.send_commit(CommitRequest::new(RequestId(0), tx, at, inputs, events))
    }

    /// Sends a prepared request (its id is replaced by this client's next).
    pub fn send_commit(&self, mut request: CommitRequest) -> Result<Committed, CommitError> {
        request.request = RequestId(self.inner.next_request.fetch_add(1, Ordering::Relaxed));
        let (id, tx) = (request.request, request.tx);
        let conn = self.connection().ok_or_else(unavailable)?;
        let (send, receive) = mpsc::channel();
        lock(&conn.pending).insert(id, send);
        // A reader that found the connection dead cleared `pending` before
        // this insert: do not wait for an answer that cannot come.
        if !conn.alive.load(Ordering::SeqCst) || !conn.send(&ToSequencer::Commit(request)) {
            lock(&conn.pending).remove(&id);
            return Err(unavailable());
        }
        let answer = receive.recv_timeout(Duration::from_millis(COMMIT_WAIT_MS_MAX));
        lock(&conn.pending).remove(&id);
        match answer {
            Ok(FromSequencer::Durable {
                tx: answered,
                first_seq,
                earlier,
                ..
            }) if answered == tx => Ok(Committed { first_seq, earlier }),
            Ok(FromSequencer::Refused {
                tx: answered,
                refusal,
                ..
            }) if answered == tx => Err(CommitError::Refused(refusal)),
            Ok(_) => {
                // An answer about another transaction: believe nothing of it.
                tracing::error!("the sequencer answered for another transaction");
                conn.kill(&lock(&conn.writer).0);
                Err(unavailable())
            }
            Err(_) => Err(unavailable()),
        }
    }

    /// What the sequencer's shards know of `coins`, in their order: a
    /// validator's read of a payment's bodies before it decides. The
    /// answer is believed only if it names each coin asked, in order.
    pub fn lookup(&self, coins: Vec<CoinId>) -> Result<Vec<CoinState>, CommitError> {
        if coins.len() > INPUTS_PER_COMMIT_MAX {
            return Err(CommitError::Refused(Refusal::Malformed(
                "a lookup of more coins than a commit may spend".into(),
            )));
        }
        let id = RequestId(self.inner.next_request.fetch_add(1, Ordering::Relaxed));
        let conn = self.connection().ok_or_else(unavailable)?;
        let (send, receive) = mpsc::channel();
        lock(&conn.pending).insert(id, send);
        let asked = coins.clone();
        let message = ToSequencer::Lookup { request: id, coins };
        if !conn.alive.load(Ordering::SeqCst) || !conn.send(&message) {
            lock(&conn.pending).remove(&id);
            return Err(unavailable());
        }
        let answer = receive.recv_timeout(Duration::from_millis(COMMIT_WAIT_MS_MAX));
        lock(&conn.pending).remove(&id);
        match answer {
            Ok(FromSequencer::Coins { coins: states, .. })
                if states.len() == asked.len()
                    && states.iter().zip(&asked).all(|(state, coin)| match state {
                        CoinState::Unspent(body) => body.id == *coin,
                        CoinState::Held | CoinState::NotUnspent => true,
                    }) =>
            {
                Ok(states)
            }
            Ok(_) => {
                // An answer about other coins: believe nothing of it.
                tracing::error!("the sequencer answered a lookup with other coins");
                conn.kill(&lock(&conn.writer).0);
                Err(unavailable())
            }
            Err(_) => Err(unavailable()),
        }
    }

    /// Whether a sequencer connection is open or can be opened now (a
    /// handshake with one of the addresses).
    pub fn reachable(&self) -> bool {
        self.connection().is_some()
    }

    /// A payment's call to the issuer behind the sequencer; its answer, or
    /// `Unavailable` (no sequencer, a broken connection, no answer in
    /// `COMMIT_WAIT_MS_MAX`: a validation may still land, and the client's
    /// retry gets its logged outcome).
    pub fn payment(&self, call: PaymentCall) -> Result<PaymentAnswer, CommitError> {
        let id = RequestId(self.inner.next_request.fetch_add(1, Ordering::Relaxed));
        let conn = self.connection().ok_or_else(unavailable)?;
        let (send, receive) = mpsc::channel();
        lock(&conn.pending).insert(id, send);
        let message = ToSequencer::Payment { request: id, call };
        if !conn.alive.load(Ordering::SeqCst) || !conn.send(&message) {
            lock(&conn.pending).remove(&id);
            return Err(unavailable());
        }
        let answer = receive.recv_timeout(Duration::from_millis(COMMIT_WAIT_MS_MAX));
        lock(&conn.pending).remove(&id);
        match answer {
            Ok(FromSequencer::Payment { answer, .. }) => Ok(answer),
            Ok(_) => {
                // Another kind of answer to this request: believe nothing.
                tracing::error!("the sequencer answered a payment call with something else");
                conn.kill(&lock(&conn.writer).0);
                Err(unavailable())
            }
            Err(_) => Err(unavailable()),
        }
    }

    /// Tells the sequencer to release what `tx` holds (best effort).
    pub fn abort(&self, tx: TxId) {
        if let Some(conn) = self.connection() {
            conn.send(&ToSequencer::Abort { tx });
        }
    }

    /// The live connection, or a new one to the first sequencer that
    /// completes a handshake.
    fn connection(&self) -> Option<Arc<Connection>> {
        let mut slot = lock(&self.inner.connection);
        if let Some(conn) = slot.as_ref()
            && conn.alive.load(Ordering::SeqCst)
        {
            return Some(Arc::clone(conn));
        }
        *slot = None;
        if self.inner.stopped.load(Ordering::SeqCst) {
            return None;
        }
        for addr in &self.inner.config.sequencers {
            match self.connect(*addr) {
                Ok(conn) => {
                    *slot = Some(Arc::clone(&conn));
                    return Some(conn);
                }
                Err(e) => tracing::debug!(%addr, error = %e, "sequencer not reachable"),
            }
        }
        None
    }

    fn connect(&self, addr: SocketAddr) -> Result<Arc<Connection>, ConnectError> {
        let mut stream =
            TcpStream::connect_timeout(&addr, Duration::from_millis(CONNECT_TIMEOUT_MS))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_millis(PEER_SILENT_MS_MAX)))?;
        stream.set_write_timeout(Some(Duration::from_millis(PEER_SILENT_MS_MAX)))?;
        let nonce = fresh_nonce().map_err(|_| ConnectError::Random)?;
        let config = &self.inner.config;
        let (handshake, hello) =
            ValidatorHandshake::start(config.node.clone(), config.key.clone(), nonce);
        write_frame(&mut stream, &hello)?;
        // The whole Welcome within the handshake's deadline: the
        // connection's lock is held meanwhile, so a peer trickling it
        // would stall every payment of this node.
        let deadline = std::time::Instant::now() + Duration::from_millis(HANDSHAKE_MS_MAX);
        let welcome = read_frame_before(&stream, HANDSHAKE_BYTES_MAX, deadline)?;
        stream.set_read_timeout(Some(Duration::from_millis(PEER_SILENT_MS_MAX)))?;
        let (channel, epoch) = {
            let mut seen = lock(&self.inner.seen_epoch);
            let (channel, epoch) = handshake.finish(&welcome, *seen)?;
            *seen = epoch;
            (channel, epoch)
        };
        tracing::info!(%addr, epoch = epoch.0, "connected to the sequencer");
        let (sealer, opener) = channel.split();
        let conn = Arc::new(Connection {
            writer: Mutex::new((stream.try_clone()?, sealer)),
            pending: Arc::default(),
            alive: Arc::new(AtomicBool::new(true)),
        });
        let reader = Arc::clone(&conn);
        std::thread::Builder::new()
            .name("sequencer-reader".into())
            .spawn(move || read_answers(stream, opener, &reader))?;
        Ok(conn)
    }
}

/// Why one connection attempt failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
enum ConnectError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Read(#[from] crate::io::ReadFrameError),
    #[error("{0}")]
    Handshake(#[from] crate::channel::HandshakeError),
    #[error("no randomness for the handshake")]
    Random,
}

fn read_answers(mut stream: TcpStream, mut opener: FrameOpener, conn: &Connection) {
    loop {
        let answer = read_frame(&mut stream)
            .map_err(|e| e.to_string())
            .and_then(|frame| {
                opener
                    .open::<FromSequencer>(&frame)
                    .map_err(|e| e.to_string())
            });
        let request = match answer {
            Ok(FromSequencer::HeartbeatAck { .. }) => continue,
            Ok(
                ref a @ (FromSequencer::Durable { request, .. }
                | FromSequencer::Refused { request, .. }
                | FromSequencer::Coins { request, .. }
                | FromSequencer::Payment { request, .. }),
            ) => {
                if let Some(waiting) = lock(&conn.pending).remove(&request) {
                    let _ = waiting.send(a.clone());
                }
                continue;
            }
            Err(e) => e,
        };
        tracing::info!(error = %request, "sequencer connection lost");
        conn.alive.store(false, Ordering::SeqCst);
        let _ = stream.shutdown(Shutdown::Both);
        // Everyone waiting learns now: their senders are dropped.
        lock(&conn.pending).clear();
        return;
    }
}
