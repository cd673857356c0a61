//! `varietycash cluster`: the issuer's sequencer role and its validators'
//! keys. `issuer serve --role sequencer` runs [`serve_sequencer`];
//! `cluster node-key` makes a validator node's MAC key; `cluster drive`
//! sends a validator's stream of commits to the sequencer (the fault
//! tests and the CPU measurement use it).

use std::fs::OpenOptions;
use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, Subcommand};
use cluster::constants::STANDBY_POLL_MS;
use cluster::testkit::{issue_as, pay_as};
use cluster::{
    ClientConfig, CommitError, CommitRequest, FencingEpoch, Lease, NodeKey, NodeKeys, NodeName,
    Refusal, RequestId, Sequencer, SequencerClient,
};
use ledger::{RedbStore, Timestamp, TxId};

use super::common::wait_for_stop_signal;

/// The file in the issuer's directory listing every validator's key.
pub const CLUSTER_KEYS_FILE: &str = "cluster-nodes.keys";
// The sequencer refuses what the auditor would find out of time order.
const _: () = assert!(
    cluster::constants::BATCH_BEHIND_LOG_SECS_MAX == replay::constants::LOG_TIME_SKEW_MAX_SECS
);
const _: () = assert!(
    cluster::constants::BATCH_AHEAD_OF_CLOCK_SECS_MAX
        <= replay::constants::LOG_TIME_FUTURE_SKEW_MAX_SECS
);

/// Most coins `drive` buys in one purchase (an event's coin list is bounded).
const COINS_PER_PURCHASE_MAX: usize = 256;
/// Where a sequencer listens for validators unless told otherwise.
pub const DEFAULT_SEQUENCER_LISTEN: &str = "127.0.0.1:7070";

#[derive(Debug, Args)]
pub struct ClusterArgs {
    #[command(subcommand)]
    pub command: ClusterCommand,
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Make a validator node's MAC key: adds `NAME HEXKEY` to
    /// DIR/cluster-nodes.keys (the sequencer reads it at start) and writes
    /// the key alone to --out (0600) for the validator.
    NodeKey(NodeKeyArgs),
    /// A validator's commit stream: buy --coins coins, then pay each of
    /// them (a payment with refresh), each commit retried on
    /// "unavailable" until durable. Writes every request to --intents
    /// before it is sent and every acknowledged one to --acked.
    Drive(DriveArgs),
}

#[derive(Debug, Args)]
pub struct NodeKeyArgs {
    /// The issuer's directory.
    #[arg(long)]
    pub dir: PathBuf,
    /// The node's name (letters, digits, '-', '_', '.').
    #[arg(long)]
    pub node: String,
    /// Where to write the node's key (hex, 0600).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct DriveArgs {
    /// This validator node's name.
    #[arg(long)]
    pub node: String,
    /// Its key file (as `cluster node-key` wrote it).
    #[arg(long)]
    pub node_key: PathBuf,
    /// A sequencer's address (repeat: active and standbys, any order).
    #[arg(long = "sequencer", required = true)]
    pub sequencers: Vec<SocketAddr>,
    /// Coins to buy (in purchases of at most 256), then pay one by one.
    #[arg(long, default_value_t = 100)]
    pub coins: usize,
    /// Instead of buying and paying: send again every request in this
    /// intents file (another validator's), as a client retries elsewhere.
    #[arg(long)]
    pub resend: Option<PathBuf>,
    /// Appends each request, hex, before it is sent.
    #[arg(long)]
    pub intents: Option<PathBuf>,
    /// Appends `TXID FIRST_SEQ` for each acknowledged commit.
    #[arg(long)]
    pub acked: Option<PathBuf>,
    /// Give up on one commit after this many seconds of "unavailable".
    #[arg(long, default_value_t = 60)]
    pub give_up_secs: u64,
}

pub fn run(args: ClusterArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        ClusterCommand::NodeKey(a) => node_key(a),
        ClusterCommand::Drive(a) => drive(a),
    }
}

fn node_key(args: NodeKeyArgs) -> anyhow::Result<ExitCode> {
    let name = NodeName::parse(&args.node)?;
    let keys_path = args.dir.join(CLUSTER_KEYS_FILE);
    let mut text = match std::fs::read_to_string(&keys_path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", keys_path.display())),
    };
    let keys =
        NodeKeys::parse(&text).with_context(|| format!("reading {}", keys_path.display()))?;
    anyhow::ensure!(
        keys.get(&name).is_none(),
        "{} already lists node {name}",
        keys_path.display()
    );
    let key = NodeKey::random().context("no randomness for the key")?;
    text.push_str(&format!("{name} {}\n", key.to_hex()));
    ledger::private_file::write_private(&args.out, format!("{}\n", key.to_hex()).as_bytes())
        .with_context(|| format!("writing {}", args.out.display()))?;
    ledger::private_file::write_private(&keys_path, text.as_bytes())
        .with_context(|| format!("writing {}", keys_path.display()))?;
    println!(
        "node {name}: key written to {}, listed in {}",
        args.out.display(),
        keys_path.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `issuer serve --role sequencer`: waits for the lease on `dir` (a
/// standby waits here), rebuilds from the log, serves validators on
/// `listen` until Ctrl-C or SIGTERM. A failed log append exits the
/// process (fail-stop) for its supervisor to restart it from the log.
///
/// With the log on PostgreSQL (`log_store`), the database excludes: the
/// standby waits for the writer's lock, then raises the log's fencing
/// epoch ([`pg_store::fence`]), which every append checks in its own
/// transaction, so a predecessor that comes back is refused even on
/// another host. The file lease still orders the sequencers of one host.
pub fn serve_sequencer(
    dir: &Path,
    n_shards: u16,
    listen: SocketAddr,
    keys_path: &Path,
    log_store: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let keys = NodeKeys::parse(
        &std::fs::read_to_string(keys_path)
            .with_context(|| format!("reading {}", keys_path.display()))?,
    )
    .with_context(|| format!("reading {}", keys_path.display()))?;
    anyhow::ensure!(
        !keys.is_empty(),
        "{} lists no validator node: make one with `varietycash cluster node-key`",
        keys_path.display()
    );
    let lease = match Lease::try_acquire(dir)? {
        Some(lease) => lease,
        None => {
            println!(
                "standing by: another sequencer holds the lease on {}",
                dir.display()
            );
            Lease::acquire(dir, Duration::from_millis(STANDBY_POLL_MS))?
        }
    };
    // The sequencer signs the log's checkpoints with the issuer's key, as
    // the whole issuer does: an audit needs no unsigned tail.
    let key_path = dir.join("issuer.key");
    let sk_i = protocol::crypto::SecretKey::read_pkcs8(&key_path)
        .with_context(|| format!("reading {}", key_path.display()))?;
    let sealing = actors::log_sealing(sk_i, Arc::new(ledger::SystemClock), dir.to_path_buf());
    let setup = SequencerSetup {
        n_shards,
        listen,
        keys,
        sealing,
    };
    let outcome = match log_store {
        None => {
            let store =
                RedbStore::open(dir.join("log.redb")).context("opening the log for appending")?;
            run_sequencer(Arc::new(store), lease.epoch(), setup)
        }
        Some(url) => {
            let (store, epoch) = open_fenced_writer(url, true)?;
            run_sequencer(Arc::new(store), epoch, setup)
        }
    };
    drop(lease);
    outcome
}

/// `issuer serve --cluster-listen`: the whole issuer also serves validator
/// nodes on `listen` (those `keys_path` lists), from its one state.
pub fn serve_issuer_cluster(
    issuer: actors::Issuer,
    epoch: FencingEpoch,
    listen: SocketAddr,
    keys_path: &Path,
) -> anyhow::Result<IssuerCluster> {
    let keys = NodeKeys::parse(
        &std::fs::read_to_string(keys_path)
            .with_context(|| format!("reading {}", keys_path.display()))?,
    )
    .with_context(|| format!("reading {}", keys_path.display()))?;
    anyhow::ensure!(
        !keys.is_empty(),
        "{} lists no validator node: make one with `varietycash cluster node-key`",
        keys_path.display()
    );
    let service = Arc::new(cluster::IssuerService::new(issuer, epoch)?);
    let listener = TcpListener::bind(listen).with_context(|| format!("listening on {listen}"))?;
    let server = cluster::serve_service(listener, service.clone(), Arc::new(keys))?;
    println!(
        "sequencer (fencing epoch {}) serving validators at {}",
        epoch.0,
        server.addr()
    );
    Ok(IssuerCluster { server, service })
}

/// The issuer's sequencer of validator nodes, running.
pub struct IssuerCluster {
    server: cluster::SequencerServer,
    service: Arc<cluster::IssuerService>,
}

impl IssuerCluster {
    /// Stops accepting nodes and lets go of the issuer: nodes still
    /// connected are told to retry.
    pub fn stop(self) {
        self.server.stop();
        self.service.close();
    }
}

/// What a sequencer serves with, whatever its store.
struct SequencerSetup {
    n_shards: u16,
    listen: SocketAddr,
    keys: NodeKeys,
    sealing: ledger::Sealing,
}

/// Opens the PostgreSQL log as its one writer and fences it: takes the
/// writer's lock (with `stand_by`, waiting while another writer, a
/// sequencer or a whole issuer on any host, holds it; else refused), then
/// raises the log's fencing epoch ([`pg_store::fence`]) so that every
/// append of a predecessor that comes back is refused in its own
/// transaction. The bare sequencer and the whole issuer both open their
/// log here. Returns the store and its epoch.
pub(super) fn open_fenced_writer(
    url: &str,
    stand_by: bool,
) -> anyhow::Result<(pg_store::PostgresStore, FencingEpoch)> {
    let shown = pg_store::url::redacted(url);
    let mut said = false;
    let store = loop {
        match pg_store::PostgresStore::open(url) {
            Ok(store) => break store,
            Err(e) if stand_by && e.to_string().contains("another writer") => {
                if !said {
                    println!("standing by: another writer has the log in {shown} open");
                    said = true;
                }
                std::thread::sleep(Duration::from_millis(STANDBY_POLL_MS));
            }
            Err(e) => return Err(e).with_context(|| format!("opening the log in {shown}")),
        }
    };
    let epoch =
        pg_store::fence::fence(&store).with_context(|| format!("fencing the log in {shown}"))?;
    Ok((store, FencingEpoch(epoch.0)))
}

fn run_sequencer<S: ledger::EventStore + 'static>(
    store: Arc<S>,
    epoch: FencingEpoch,
    setup: SequencerSetup,
) -> anyhow::Result<ExitCode> {
    let sequencer = Arc::new(Sequencer::rebuild(
        store,
        setup.n_shards,
        epoch,
        Some(setup.sealing),
    )?);
    // The first seal covers whatever a dead predecessor left unsigned.
    sequencer.seal().context("signing the log's head")?;
    let listener = TcpListener::bind(setup.listen)
        .with_context(|| format!("listening on {}", setup.listen))?;
    let server = cluster::serve(listener, Arc::clone(&sequencer), Arc::new(setup.keys))?;
    println!(
        "sequencer (fencing epoch {}) serving validators at {} (Ctrl-C to stop)",
        epoch.0,
        server.addr()
    );
    let watched = Arc::clone(&sequencer);
    std::thread::Builder::new()
        .name("sequencer-fail-stop".into())
        .spawn(move || {
            loop {
                if watched.is_poisoned() {
                    // A fenced append lands here too: a successor holds the log.
                    tracing::error!("the log writer failed: the sequencer stops");
                    std::process::exit(actors::FAIL_STOP_EXIT_CODE);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })?;
    let sealed = Arc::clone(&sequencer);
    std::thread::Builder::new()
        .name("sequencer-seal".into())
        .spawn(move || {
            // The newest records wait at most this long for a signature.
            loop {
                std::thread::sleep(Duration::from_millis(actors::LOG_CHECKPOINT_EVERY_MS));
                if let Err(e) = sealed.seal() {
                    tracing::error!(error = %e, "signing the log's head failed");
                }
            }
        })?;
    wait_for_stop_signal()?;
    server.stop();
    // A clean stop signs the last records too.
    sequencer.seal().context("signing the log's head")?;
    println!("sequencer stopped after {} commits", sequencer.n_durable());
    Ok(ExitCode::SUCCESS)
}

struct Journal {
    intents: Option<std::fs::File>,
    acked: Option<std::fs::File>,
}

fn append_to(path: &Option<PathBuf>) -> anyhow::Result<Option<std::fs::File>> {
    let Some(path) = path else { return Ok(None) };
    ledger::private_file::ensure_private_file(path)?;
    Ok(Some(
        OpenOptions::new()
            .append(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?,
    ))
}

fn line(file: &mut Option<std::fs::File>, text: String) -> anyhow::Result<()> {
    if let Some(f) = file {
        f.write_all(format!("{text}\n").as_bytes())?;
    }
    Ok(())
}

/// Sends `request` until it is durable (or refused for good, or the
/// deadline passes); records it as the driver's client would.
fn commit_until_durable(
    client: &SequencerClient,
    journal: &mut Journal,
    request: CommitRequest,
    give_up: Duration,
) -> anyhow::Result<bool> {
    let bytes = postcard::to_allocvec(&request).context("encoding a request")?;
    line(&mut journal.intents, hex::encode(bytes))?;
    let started = Instant::now();
    loop {
        match client.send_commit(request.clone()) {
            Ok(done) => {
                line(
                    &mut journal.acked,
                    format!("{} {}", request.tx, done.first_seq.0),
                )?;
                return Ok(true);
            }
            Err(CommitError::Unavailable { retry_after_secs }) => {
                anyhow::ensure!(
                    started.elapsed() < give_up,
                    "no sequencer for {} s",
                    give_up.as_secs()
                );
                std::thread::sleep(Duration::from_millis(100.max(retry_after_secs * 100)));
            }
            Err(CommitError::Refused(Refusal::InFlight | Refusal::Busy { .. })) => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(other) => {
                eprintln!("refused {}: {other}", request.tx);
                return Ok(false);
            }
        }
    }
}

fn now() -> Timestamp {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    Timestamp(secs)
}

fn drive(args: DriveArgs) -> anyhow::Result<ExitCode> {
    let node = NodeName::parse(&args.node)?;
    let key = NodeKey::from_hex(
        &std::fs::read_to_string(&args.node_key)
            .with_context(|| format!("reading {}", args.node_key.display()))?,
    )?;
    let client = SequencerClient::start(ClientConfig {
        node,
        key,
        sequencers: args.sequencers.clone(),
    });
    let mut journal = Journal {
        intents: append_to(&args.intents)?,
        acked: append_to(&args.acked)?,
    };
    let give_up = Duration::from_secs(args.give_up_secs);
    let (mut durable, mut refused) = (0usize, 0usize);
    let mut count = |ok: bool| {
        if ok {
            durable += 1;
        } else {
            refused += 1;
        }
    };
    let started = Instant::now();
    if let Some(resend) = &args.resend {
        let text = std::fs::read_to_string(resend)
            .with_context(|| format!("reading {}", resend.display()))?;
        for hex_line in text.lines().filter(|l| !l.trim().is_empty()) {
            // A line cut short by a kill is a request never sent.
            let Ok(bytes) = hex::decode(hex_line.trim()) else {
                continue;
            };
            let Ok(request) = postcard::from_bytes::<CommitRequest>(&bytes) else {
                continue;
            };
            count(commit_until_durable(
                &client,
                &mut journal,
                request,
                give_up,
            )?);
        }
    } else {
        let mut coins = Vec::with_capacity(args.coins);
        let mut left = args.coins;
        while left > 0 {
            let n = left.min(COINS_PER_PURCHASE_MAX);
            let (purchase, bought) = issue_as(RequestId(0), TxId::random(), now(), n);
            for step in purchase {
                let done = commit_until_durable(&client, &mut journal, step, give_up)?;
                anyhow::ensure!(done, "the sequencer refused a purchase");
                count(done);
            }
            coins.extend(bought);
            left -= n;
        }
        for coin in coins {
            let (payment, _) = pay_as(RequestId(0), TxId::random(), now(), &[coin]);
            count(commit_until_durable(
                &client,
                &mut journal,
                payment,
                give_up,
            )?);
        }
    }
    client.stop();
    println!(
        "{durable} durable, {refused} refused in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    Ok(if refused == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
