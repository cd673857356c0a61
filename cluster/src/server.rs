//! The sequencer's listener: per validator connection, one thread reads
//! frames and hands commits to the [`Sequencer`], another writes the
//! answers back in the order they become durable (the log writer only
//! queues them, never waiting on a socket).
//!
//! Backpressure is the group commit's bounded queue: a submit beyond it
//! waits, so a connection's reader stops reading and TCP pushes back on
//! the validator.

use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ledger::{CoinId, EventStore, TxId};

use crate::channel::{FrameSealer, NodeKeys, fresh_nonce, sequencer_handshake};
use crate::constants::{
    CONNECTIONS_MAX, HANDSHAKE_BYTES_MAX, HANDSHAKE_MS_MAX, PEER_SILENT_MS_MAX,
};
use crate::io::{read_frame, read_frame_before, write_frame};
use crate::sequencer::Sequencer;
use crate::wire::{
    CoinState, CommitRequest, FencingEpoch, FromSequencer, PaymentAnswer, PaymentCall,
    PaymentRefusal, ToSequencer,
};

/// Where an answer goes once it is known (on whatever thread knows it).
pub type Reply<T> = Box<dyn FnOnce(T) + Send + 'static>;

/// What the listener serves its validators: the bare commit [`Sequencer`]
/// (commits and lookups), or the issuer's one state
/// (`crate::issuer_service::IssuerService`: payments, and lookups of its
/// shards).
pub trait Service: Send + Sync + 'static {
    /// The fencing epoch the handshake announces.
    fn epoch(&self) -> FencingEpoch;
    /// Decides and appends a commit; `reply` is called exactly once.
    fn commit(&self, request: CommitRequest, reply: Reply<FromSequencer>);
    /// Releases what `tx` holds.
    fn abort(&self, tx: TxId);
    /// What the shards know of `coins`; `None` over the protocol's limit.
    fn lookup(&self, coins: &[CoinId]) -> Option<Vec<CoinState>>;
    /// A payment's call to the issuer; `reply` is called exactly once.
    fn payment(&self, call: PaymentCall, reply: Reply<PaymentAnswer>);
}

impl<S: EventStore + 'static> Service for Arc<Sequencer<S>> {
    fn epoch(&self) -> FencingEpoch {
        Sequencer::epoch(self)
    }

    fn commit(&self, request: CommitRequest, reply: Reply<FromSequencer>) {
        Sequencer::commit(self, request, reply);
    }

    fn abort(&self, tx: TxId) {
        Sequencer::abort(self, tx);
    }

    fn lookup(&self, coins: &[CoinId]) -> Option<Vec<CoinState>> {
        Sequencer::lookup(self, coins)
    }

    fn payment(&self, _call: PaymentCall, reply: Reply<PaymentAnswer>) {
        // A bare sequencer holds coins, not the registry or sessions.
        reply(PaymentAnswer::Refused(PaymentRefusal::NotServed));
    }
}

/// A running listener. Dropping it does not stop it; [`SequencerServer::stop`] does.
#[derive(Debug)]
pub struct SequencerServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl SequencerServer {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting (connections already open end with their peers).
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
        if let Some(handle) = self.accept.take() {
            let _ = handle.join();
        }
    }
}

/// Serves `sequencer` to the validators `keys` lists, on `listener`.
pub fn serve<S: EventStore + 'static>(
    listener: TcpListener,
    sequencer: Arc<Sequencer<S>>,
    keys: Arc<NodeKeys>,
) -> io::Result<SequencerServer> {
    serve_service(listener, Arc::new(sequencer), keys)
}

/// Serves `service` to the validators `keys` lists, on `listener`.
pub fn serve_service(
    listener: TcpListener,
    sequencer: Arc<dyn Service>,
    keys: Arc<NodeKeys>,
) -> io::Result<SequencerServer> {
    let addr = listener.local_addr()?;
    let stop = Arc::new(AtomicBool::new(false));
    let stopping = Arc::clone(&stop);
    let open = Arc::new(AtomicUsize::new(0));
    let accept = std::thread::Builder::new()
        .name("sequencer-accept".into())
        .spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                if open.fetch_add(1, Ordering::SeqCst) >= CONNECTIONS_MAX {
                    open.fetch_sub(1, Ordering::SeqCst);
                    tracing::warn!("too many connections: one refused");
                    continue;
                }
                let (sequencer, keys) = (Arc::clone(&sequencer), Arc::clone(&keys));
                let closing = Arc::clone(&open);
                let spawned = std::thread::Builder::new()
                    .name("sequencer-conn".into())
                    .spawn(move || {
                        if let Err(e) = connection(stream, &sequencer, &keys) {
                            tracing::info!(error = %e, "validator connection closed");
                        }
                        closing.fetch_sub(1, Ordering::SeqCst);
                    });
                if let Err(e) = spawned {
                    tracing::warn!(error = %e, "no thread for a validator connection");
                }
            }
        })?;
    Ok(SequencerServer {
        addr,
        stop,
        accept: Some(accept),
    })
}

/// Why a connection ended.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectionError {
    #[error("reading: {0}")]
    Read(#[from] crate::io::ReadFrameError),
    #[error("writing: {0}")]
    Write(#[from] io::Error),
    #[error("handshake: {0}")]
    Handshake(#[from] crate::channel::HandshakeError),
    #[error("frame: {0}")]
    Frame(#[from] crate::channel::FrameError),
    #[error("no randomness for the handshake")]
    Random,
    #[error("a lookup of more coins than a commit may spend")]
    LookupTooLarge,
}

/// Seals and writes the answers of one connection, in the order they
/// come. Its own thread, so that the log writer, which hands over each
/// answer once durable, never waits on a validator's socket.
fn write_answers(
    mut stream: TcpStream,
    mut sealer: FrameSealer,
    outbox: mpsc::Receiver<FromSequencer>,
) {
    for answer in outbox {
        let frame = sealer.seal(&answer);
        if write_frame(&mut stream, &frame).is_err() {
            // The validator is gone or stuck; its retry gets the logged outcome.
            let _ = stream.shutdown(Shutdown::Both);
            return;
        }
    }
}

fn connection(
    mut stream: TcpStream,
    sequencer: &Arc<dyn Service>,
    keys: &NodeKeys,
) -> Result<(), ConnectionError> {
    stream.set_nodelay(true)?;
    // The whole Hello within its deadline: anyone can connect, and each
    // connection holds one of CONNECTIONS_MAX slots, which validators need.
    let deadline = Instant::now() + Duration::from_millis(HANDSHAKE_MS_MAX);
    let hello = read_frame_before(&stream, HANDSHAKE_BYTES_MAX, deadline)?;
    stream.set_read_timeout(Some(Duration::from_millis(PEER_SILENT_MS_MAX)))?;
    let nonce = fresh_nonce().map_err(|_| ConnectionError::Random)?;
    let (channel, node, welcome) = sequencer_handshake(&hello, keys, nonce, sequencer.epoch())?;
    write_frame(&mut stream, &welcome)?;
    tracing::info!(%node, epoch = sequencer.epoch().0, "validator connected");
    let (sealer, mut opener) = channel.split();
    let write_stream = stream.try_clone()?;
    write_stream.set_write_timeout(Some(Duration::from_millis(PEER_SILENT_MS_MAX)))?;
    let (outbox, answers) = mpsc::channel();
    std::thread::Builder::new()
        .name("sequencer-answers".into())
        .spawn(move || write_answers(write_stream, sealer, answers))?;
    loop {
        let frame = read_frame(&mut stream)?;
        match opener.open::<ToSequencer>(&frame)? {
            ToSequencer::Commit(request) => {
                let outbox = outbox.clone();
                sequencer.commit(
                    request,
                    Box::new(move |answer| {
                        // A closed outbox: the connection is gone (see write_answers).
                        let _ = outbox.send(answer);
                    }),
                );
            }
            ToSequencer::Abort { tx } => sequencer.abort(tx),
            ToSequencer::Heartbeat { nonce } => {
                let _ = outbox.send(FromSequencer::HeartbeatAck { nonce });
            }
            ToSequencer::Lookup { request, coins } => {
                // Over the limit: a validator that breaks the protocol
                // loses its connection.
                let coins = sequencer
                    .lookup(&coins)
                    .ok_or(ConnectionError::LookupTooLarge)?;
                let _ = outbox.send(FromSequencer::Coins { request, coins });
            }
            ToSequencer::Payment { request, call } => {
                let outbox = outbox.clone();
                sequencer.payment(
                    call,
                    Box::new(move |answer| {
                        let _ = outbox.send(FromSequencer::Payment { request, answer });
                    }),
                );
            }
        }
    }
}
