//! `varietycash issuer`: create an issuer's directory, serve its gateway
//! (with the simulated bank inside the process), approve enrollments out of
//! band through the gateway's signed operator route, and open a new mint
//! key epoch.
//!
//! The directory holds `issuer.toml` (what `init` chose, the operator keys
//! the gateway accepts, the `/metrics` scrape token), the issuer's files
//! (keys 0600, mint, `log.redb`, registry, sessions), `bank.redb` (the
//! simulated bank), `issuer.pub` (the key the auditor verifies with),
//! `operator.key` (the first operator key, 0600) and `operator-nonces` (the
//! operator requests of the last minutes, refused if replayed; with the
//! log on PostgreSQL they are in the database instead).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use actors::SimulatedBank;
use actors::{FailStopPolicy, IssuerConfig};
use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use client::{
    ClientConfig, ClientTls, IssuerClient, NonceStore, OperatorAuth, OperatorKey, ScrapeToken,
    ServerConfig, SourceLimits, TlsAuthority, TlsIdentity,
};
use gateway::{IssuerRuntime, serve_issuer_with_bank};
use ledger::{ParticipantId, Role, Standing};
use protocol::crypto::{PublicKey, SuiteId};
use serde::{Deserialize, Serialize};

use super::common::{
    TransportArgs, parse_participant, read_toml, stop_issuer, wait_for_stop_signal,
};

/// The issuer's configuration file, inside its directory.
pub const CONFIG_FILE: &str = "issuer.toml";
/// The issuer's public key for auditors and purses, inside its directory.
pub const PUBLIC_KEY_FILE: &str = "issuer.pub";
/// The first operator key `init` creates (PKCS#8, 0600), inside the
/// issuer's directory; its public key is listed in `issuer.toml`.
pub const OPERATOR_KEY_FILE: &str = "operator.key";
/// The nonces of recent operator requests, so a replay is refused across
/// restarts.
pub const OPERATOR_NONCES_FILE: &str = "operator-nonces";
/// The issuer's TLS authority: the certificate purses and merchants pin
/// (public), and its key (0600), which signs the servers' certificates.
pub const TLS_CA_CERT_FILE: &str = "tls-ca.pem";
pub const TLS_CA_KEY_FILE: &str = "tls-ca.key";
/// The gateway's own TLS certificate and key (0600), issued by the authority.
pub const TLS_CERT_FILE: &str = "tls.pem";
pub const TLS_KEY_FILE: &str = "tls.key";

/// Run an issuer: create its files, serve its gateway, approve enrollments.
#[derive(Debug, Args)]
pub struct IssuerArgs {
    #[command(subcommand)]
    pub command: IssuerCommand,
}

#[derive(Debug, Subcommand)]
pub enum IssuerCommand {
    /// Create the issuer's directory: keys (0600), mint, log, configuration.
    Init(InitArgs),
    /// Serve the issuer's gateway over HTTP until Ctrl-C or SIGTERM.
    ///
    /// The simulated bank lives inside the issuer's process (its file is
    /// DIR/bank.redb): the issuer is its only client, and the operator
    /// opens accounts and reads balances through the gateway's signed
    /// operator routes (`varietycash bank open-account|balance`).
    Serve(ServeArgs),
    /// Out-of-band steps of enrollment.
    #[command(subcommand)]
    Enroll(EnrollCommand),
    /// Mint key epochs.
    #[command(subcommand)]
    Epoch(EpochCommand),
    /// A participant's standing: suspend, revoke, reinstate.
    #[command(subcommand)]
    Participant(ParticipantCommand),
    /// Issue a TLS certificate signed by the issuer's authority, for a
    /// merchant server or the user index (clients trust exactly what the
    /// authority signed).
    TlsCert(TlsCertArgs),
    /// Print a link that opens the serving issuer's dashboard in a
    /// browser: a grant signed with the operator key, good once and for
    /// two minutes, exchanged for a 15-minute dashboard session.
    DashboardLink(DashboardLinkArgs),
    /// Operator keys: a disclosure needs two different ones.
    #[command(subcommand)]
    Operator(OperatorCommand),
}

#[derive(Debug, Args)]
pub struct DashboardLinkArgs {
    /// The issuer's directory (for the address it serves on).
    #[arg(long)]
    pub dir: PathBuf,
    /// The gateway's URL, if not the configured listen address.
    #[arg(long)]
    pub issuer: Option<String>,
    /// The operator key that signs the grant (default DIR/operator.key).
    #[arg(long)]
    pub operator_key: Option<PathBuf>,
    /// The gateway serves plain HTTP (`issuer serve --insecure-http`).
    #[arg(long)]
    pub insecure_http: bool,
}

#[derive(Debug, Subcommand)]
pub enum OperatorCommand {
    /// Make a new operator key (PKCS#8, 0600) and list its public key in
    /// issuer.toml; a serving issuer accepts it after a restart.
    Add(OperatorAddArgs),
}

#[derive(Debug, Args)]
pub struct OperatorAddArgs {
    /// The issuer's directory, as `init` made it.
    #[arg(long)]
    pub dir: PathBuf,
    /// Who holds the key (shown in the gateway's log).
    #[arg(long)]
    pub name: String,
    /// Where to write the new key (0600); it must not exist.
    #[arg(long)]
    pub key: PathBuf,
}

#[derive(Debug, Args)]
pub struct TlsCertArgs {
    /// The issuer's directory, as `init` made it.
    #[arg(long)]
    pub dir: PathBuf,
    /// A DNS name or IP address the server is reached at (repeat for more).
    #[arg(long = "name", required = true)]
    pub names: Vec<String>,
    /// Where to write the certificate (PEM).
    #[arg(long)]
    pub cert: PathBuf,
    /// Where to write its private key (PEM, 0600).
    #[arg(long)]
    pub key: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum EpochCommand {
    /// Open a new mint key epoch now, through the issuer's epoch path (the
    /// mint keeps the new key, then the log records EpochOpened and the old
    /// epoch's EpochClosed): new coins are minted under it and expire a
    /// coin lifetime from now; coins of the old epoch stay good until their
    /// own expiry, then may be refreshed during the grace period.
    ///
    /// If the issuer serves (at `--issuer`, or at the configured listen
    /// address with this directory's key), this goes to its operator route,
    /// signed with the operator key, and the issuer keeps serving; otherwise the issuer
    /// runs in this process for the step.
    Open(EpochOpenArgs),
    /// Revoke key epoch N (its mint key is suspected compromised): logged
    /// before the answer, and from then on coins of the epoch are accepted
    /// only by recoups (`purse recoup`), which pay out at most what the
    /// epoch's honestly issued, unspent coins were worth. Revoking the
    /// current epoch opens the next one first. Served or in-process, as
    /// `epoch open`.
    Revoke(EpochStepArgs),
    /// Erase key epoch N, past its grace period: its spent coins leave the
    /// coin state (named through a log sequence number the auditor
    /// checks) and its mint key is destroyed. The serving issuer does this
    /// on its own once the grace is over. Served or in-process, as `epoch
    /// open`.
    Erase(EpochStepArgs),
}

#[derive(Debug, Args)]
pub struct EpochStepArgs {
    /// The key epoch.
    pub epoch: u32,
    #[command(flatten)]
    pub at: EpochOpenArgs,
}

#[derive(Debug, Args)]
pub struct EpochOpenArgs {
    /// The issuer's directory, as `init` made it.
    #[arg(long)]
    pub dir: PathBuf,
    /// The serving issuer's URL, if not the configured listen address.
    #[arg(long)]
    pub issuer: Option<String>,
    /// The operator key that signs the request (default DIR/operator.key).
    #[arg(long)]
    pub operator_key: Option<PathBuf>,
    #[command(flatten)]
    pub transport: TransportArgs,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The issuer's directory (created).
    #[arg(long)]
    pub dir: PathBuf,
    /// Cipher suite: dhaes (HPKE + Ed25519, the default), aes256 (RSA,
    /// AES-256) or tdes (RSA, Triple-DES: the paper's).
    #[arg(long, default_value = "dhaes")]
    pub suite: SuiteId,
    /// Size of the issuer's RSA keys (suites aes256 and tdes).
    #[arg(long, value_parser = super::common::parse_rsa_bits)]
    pub rsa_bits: Option<usize>,
    /// Coin shards (one lock each; more shards, less contention).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub shards: u16,
    /// Address `serve` listens on unless told otherwise.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// How long the simulated bank takes to settle a debit, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub bank_settle_delay_ms: u64,
    /// Another name the gateway's TLS certificate holds, besides
    /// `localhost` and the listen address (repeat for more).
    #[arg(long = "tls-name")]
    pub tls_names: Vec<String>,
    /// The user index's public key (its `index.pub`, from `varietycash
    /// index init`): identities and bank accounts are sealed to it. Without
    /// it they are sealed to a key nobody holds.
    #[arg(long)]
    pub user_index_key: Option<PathBuf>,
    /// The user index's URL: `serve` delivers the log to it.
    #[arg(long)]
    pub user_index: Option<String>,
    /// Keep the event log in this PostgreSQL database
    /// (`postgres://user:password@host:port/db`, several hosts with
    /// `target_session_attrs=read-write` to follow a fail-over) instead of
    /// DIR/log.redb. The database must hold no log yet.
    #[arg(long, value_name = "postgres://…")]
    pub store: Option<String>,
    /// The bank: `simulated` (the default: DIR/bank.redb, inside the
    /// issuer's process) or `files:DIR` (ISO 20022 files: pain.008 and
    /// pain.001 written to DIR/outbox, camt.053 statements read from
    /// DIR/inbox; needs --bank-iban, --bank-bic, --creditor-id).
    #[arg(long, default_value = "simulated", value_parser = super::bank::parse_bank_choice)]
    pub bank: super::bank::BankChoice,
    #[command(flatten)]
    pub bank_account: super::bank::IssuerAccountArgs,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The issuer's directory, as `init` made it.
    #[arg(long)]
    pub dir: PathBuf,
    /// Listen here instead of the configured address.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Serve plain HTTP, without TLS: for loopback tests and demos only.
    #[arg(long)]
    pub insecure_http: bool,
    /// Which part of the issuer this process runs: `all` (the whole
    /// issuer: its gateway and its one state; with --cluster-listen also
    /// the sequencer of validator nodes, and a second one on the same
    /// directory stands by; with the log on PostgreSQL a second one on
    /// any host stands by for the database's writer lock), `validator` (a node that opens payments with
    /// the issuer's key and has the sequencer decide them: no coin state),
    /// or `sequencer` (the bare commit sequencer: coin shards, idempotency
    /// table and log for raw commit streams, with a standby likewise).
    #[arg(long, value_enum, default_value = "all")]
    pub role: ServeRole,
    /// `--role all`: also serve validator nodes here (the payment
    /// cluster's sequencer). `--role sequencer`: where validators connect
    /// (default 127.0.0.1:7070).
    #[arg(long)]
    pub cluster_listen: Option<SocketAddr>,
    /// The validators' keys (default DIR/cluster-nodes.keys, as
    /// `varietycash cluster node-key` writes it).
    #[arg(long)]
    pub cluster_keys: Option<PathBuf>,
    /// `--role validator`: a sequencer's cluster address (repeat: active
    /// and standby, any order).
    #[arg(long = "sequencer")]
    pub sequencers: Vec<SocketAddr>,
    /// `--role validator`: this node's name, as `cluster node-key` made it.
    #[arg(long)]
    pub node: Option<String>,
    /// `--role validator`: this node's key file.
    #[arg(long)]
    pub node_key: Option<PathBuf>,
}

/// The roles `issuer serve` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ServeRole {
    All,
    Validator,
    Sequencer,
}

#[derive(Debug, Subcommand)]
pub enum EnrollCommand {
    /// Approve a participant's enrollment request for a role.
    ///
    /// Sent to the running issuer's operator route, signed with the
    /// operator key: the issuer's files are held by the running process.
    Approve(ApproveArgs),
    /// Refuse a participant's pending enrollment request for a role (for
    /// good: a later request for the role is refused). Logged.
    Refuse(ApproveArgs),
}

#[derive(Debug, Subcommand)]
pub enum ParticipantCommand {
    /// Refuse the participant's requests until it is reinstated. Logged.
    Suspend(ParticipantArgs),
    /// Refuse the participant's requests for good. Logged.
    Revoke(ParticipantArgs),
    /// Serve a suspended participant again (a revoked one stays revoked).
    /// Logged.
    Reinstate(ParticipantArgs),
}

#[derive(Debug, Args)]
pub struct ParticipantArgs {
    /// The participant's id.
    #[arg(value_parser = parse_participant)]
    pub id: ParticipantId,
    /// The issuer's directory (for the address it serves on).
    #[arg(long)]
    pub dir: PathBuf,
    /// The gateway's URL, if not the configured listen address.
    #[arg(long)]
    pub issuer: Option<String>,
    /// The operator key that signs the request (default DIR/operator.key).
    #[arg(long)]
    pub operator_key: Option<PathBuf>,
    #[command(flatten)]
    pub transport: TransportArgs,
}

#[derive(Debug, Args)]
pub struct ApproveArgs {
    /// The participant's id.
    #[arg(value_parser = parse_participant)]
    pub id: ParticipantId,
    /// purchaser, redeemer or merchant.
    pub role: Role,
    /// The issuer's directory (for the address it serves on).
    #[arg(long)]
    pub dir: PathBuf,
    /// The gateway's URL, if not the configured listen address.
    #[arg(long)]
    pub issuer: Option<String>,
    /// The operator key that signs the request (default DIR/operator.key).
    #[arg(long)]
    pub operator_key: Option<PathBuf>,
    #[command(flatten)]
    pub transport: TransportArgs,
}

/// An operator key the gateway accepts, as `issuer.toml` lists it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorEntry {
    /// Who holds it (shown in the gateway's log with its fingerprint).
    pub name: String,
    /// The key's SPKI DER, in hex.
    pub public_key: String,
}

/// What `init` chose, kept in DIR/issuer.toml.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerFile {
    pub suite: String,
    pub rsa_bits: usize,
    pub shards: u16,
    pub listen: SocketAddr,
    #[serde(default)]
    pub bank_settle_delay_ms: u64,
    /// The bearer token `GET /metrics` requires (none: `/metrics` answers
    /// nobody).
    #[serde(default)]
    pub metrics_token: Option<String>,
    /// The keys whose signed requests the operator routes accept.
    #[serde(default)]
    pub operators: Vec<OperatorEntry>,
    /// The gateway's TLS certificate and key, relative to the directory.
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// What one source address may hold and ask (the defaults of
    /// `client::constants` where a field is absent): raise them for
    /// merchants many of whose payments come from one address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_source: Option<PerSourceFile>,
    /// The user index `serve` delivers the log to (none: records wait in
    /// the log, the outbox does not move).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_index_url: Option<String>,
    /// The PostgreSQL database holding the log (`init --store`); absent:
    /// DIR/log.redb. The URL holds the role's password: this file is 0600.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_store: Option<String>,
    /// The file-exchange bank (`init --bank files:DIR`); absent: the
    /// simulated bank in DIR/bank.redb.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bank_files: Option<super::bank::BankFilesConfig>,
    /// The key epochs' dates (the defaults of `IssuerConfig` where absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epochs: Option<EpochsFile>,
}

/// `[epochs]` in issuer.toml; every field optional, in seconds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EpochsFile {
    /// How long after its epoch opens a coin expires.
    pub coin_lifetime_secs: Option<u64>,
    /// How long after expiry a coin may still be refreshed; then the
    /// epoch's spent coins are erased and its key destroyed.
    pub grace_secs: Option<u64>,
    /// How often a new epoch opens.
    pub epoch_period_secs: Option<u64>,
}

/// `[per_source]` in issuer.toml; every field optional.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerSourceFile {
    pub connections_max: Option<usize>,
    pub bodies_receiving_max: Option<usize>,
    pub requests_in_flight_max: Option<usize>,
    pub requests_per_sec: Option<u32>,
    pub requests_burst: Option<u32>,
}

impl PerSourceFile {
    fn limits(&self) -> anyhow::Result<SourceLimits> {
        let mut limits = SourceLimits::default();
        if let Some(n) = self.connections_max {
            limits.connections_max = n;
        }
        if let Some(n) = self.bodies_receiving_max {
            limits.bodies_receiving_max = n;
        }
        if let Some(n) = self.requests_in_flight_max {
            limits.requests_in_flight_max = n;
        }
        if let Some(n) = self.requests_per_sec {
            limits.requests_per_sec = f64::from(n);
        }
        if let Some(n) = self.requests_burst {
            limits.requests_burst = f64::from(n);
        }
        if limits.connections_max == 0
            || limits.bodies_receiving_max == 0
            || limits.requests_in_flight_max == 0
            || limits.requests_per_sec <= 0.0
            || limits.requests_burst < 1.0
        {
            bail!("[per_source] in issuer.toml: every limit must be positive");
        }
        Ok(limits)
    }
}

impl IssuerFile {
    pub fn read(dir: &Path) -> anyhow::Result<IssuerFile> {
        read_toml(&dir.join(CONFIG_FILE)).with_context(|| {
            format!(
                "{} is not an issuer's directory (run `varietycash issuer init --dir {}`)",
                dir.display(),
                dir.display()
            )
        })
    }

    /// The issuer's configuration for a step run in this process: a log
    /// on PostgreSQL is opened as its one writer and fenced, refused while
    /// another writer holds it.
    pub(super) fn issuer_config(&self, dir: &Path) -> anyhow::Result<IssuerConfig> {
        Ok(self.writer_config(dir, false)?.0)
    }

    /// The issuer's configuration as its log's writer. A log on PostgreSQL
    /// is opened as the bare sequencer opens it
    /// ([`super::cluster::open_fenced_writer`]: the database's writer lock,
    /// waited for with `stand_by`, then the next fencing epoch, returned),
    /// and the issuer's tables beside it, carrying the same epoch.
    fn writer_config(
        &self,
        dir: &Path,
        stand_by: bool,
    ) -> anyhow::Result<(IssuerConfig, Option<cluster::FencingEpoch>)> {
        let mut config = self.config_without_log_store(dir)?;
        let mut epoch = None;
        if let Some(url) = &self.log_store {
            let (store, fenced) = super::cluster::open_fenced_writer(url, stand_by)?;
            config.log_store = Some(Arc::new(store));
            // The tables' session carries the epoch too: a predecessor's
            // table writes are refused as its appends are.
            let tables = open_side_tables(url)?;
            pg_store::fence::carry_to_tables(&tables, pg_store::fence::FenceEpoch(fenced.0))
                .context("fencing the issuer's tables")?;
            config.side_tables = Some(Arc::new(tables));
            epoch = Some(fenced);
        }
        Ok((config, epoch))
    }

    /// The issuer's configuration before its log store is opened.
    fn config_without_log_store(&self, dir: &Path) -> anyhow::Result<IssuerConfig> {
        let mut config = IssuerConfig::new(dir);
        config.suite = self.suite.parse().context("the configured suite")?;
        config.rsa_bits = self.rsa_bits;
        config.n_shards = self.shards;
        if let Some(epochs) = &self.epochs {
            let EpochsFile {
                coin_lifetime_secs,
                grace_secs,
                epoch_period_secs,
            } = epochs;
            config.coin_lifetime_secs = coin_lifetime_secs.unwrap_or(config.coin_lifetime_secs);
            config.grace_secs = grace_secs.unwrap_or(config.grace_secs);
            config.epoch_period_secs = epoch_period_secs.unwrap_or(config.epoch_period_secs);
        }
        Ok(config)
    }

    /// The gateway's operator keys, remembering nonces in the issuer's
    /// tables if it keeps them in a database (`tables`: a replacement
    /// issuer then refuses a replay too), else in DIR.
    fn operator_auth(
        &self,
        dir: &Path,
        tables: Option<Arc<dyn ledger::KvStore>>,
    ) -> anyhow::Result<OperatorAuth> {
        let mut keys = Vec::new();
        for entry in &self.operators {
            let der = hex::decode(entry.public_key.trim())
                .with_context(|| format!("operator {:?}: the public key is not hex", entry.name))?;
            let key = PublicKey::from_spki_der(&der)
                .with_context(|| format!("operator {:?}: not an RSA SPKI key", entry.name))?;
            keys.push((entry.name.clone(), key));
        }
        if keys.is_empty() {
            tracing::warn!("issuer.toml lists no operator key: every operator request is refused");
        }
        if let Some(tables) = tables {
            return OperatorAuth::new(keys, NonceStore::Tables(tables))
                .context("reading the operator nonces in the issuer's tables");
        }
        let nonces = dir.join(OPERATOR_NONCES_FILE);
        OperatorAuth::new(keys, NonceStore::File(nonces.clone()))
            .with_context(|| format!("reading {}", nonces.display()))
    }

    /// The gateway's TLS identity from the configured files.
    fn tls_identity(&self, dir: &Path) -> anyhow::Result<TlsIdentity> {
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
            bail!(
                "issuer.toml names no tls_cert and tls_key: serve with --insecure-http, or \
                 re-create the issuer with `issuer init`"
            );
        };
        let (cert, key) = (dir.join(cert), dir.join(key));
        TlsIdentity::read_pem(&cert, &key).with_context(|| format!("reading {}", cert.display()))
    }

    fn scrape_token(&self) -> anyhow::Result<Option<ScrapeToken>> {
        self.metrics_token
            .as_deref()
            .map(ScrapeToken::new)
            .transpose()
            .map_err(|e| anyhow::anyhow!("metrics_token in issuer.toml: {e}"))
    }

    pub(super) fn bank(&self, dir: &Path) -> anyhow::Result<super::bank::IssuerBank> {
        if let Some(files) = &self.bank_files {
            return files.open(dir);
        }
        let path = dir.join("bank.redb");
        Ok(super::bank::IssuerBank::Simulated(Arc::new(
            SimulatedBank::open(&path, Duration::from_millis(self.bank_settle_delay_ms))
                .with_context(|| format!("opening the simulated bank {}", path.display()))?,
        )))
    }
}

pub fn run(args: IssuerArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        IssuerCommand::Init(a) => init(a),
        IssuerCommand::Serve(a) => serve(a),
        IssuerCommand::Enroll(EnrollCommand::Approve(a)) => approve(a),
        IssuerCommand::Enroll(EnrollCommand::Refuse(a)) => refuse(a),
        IssuerCommand::Participant(ParticipantCommand::Suspend(a)) => {
            set_standing(a, Standing::Suspended)
        }
        IssuerCommand::Participant(ParticipantCommand::Revoke(a)) => {
            set_standing(a, Standing::Revoked)
        }
        IssuerCommand::Participant(ParticipantCommand::Reinstate(a)) => {
            set_standing(a, Standing::Active)
        }
        IssuerCommand::Epoch(EpochCommand::Open(a)) => open_epoch(a),
        IssuerCommand::Epoch(EpochCommand::Revoke(a)) => end_epoch(a, EpochStep::Revoke),
        IssuerCommand::Epoch(EpochCommand::Erase(a)) => end_epoch(a, EpochStep::Erase),
        IssuerCommand::TlsCert(a) => tls_cert(a),
        IssuerCommand::DashboardLink(a) => dashboard_link(a),
        IssuerCommand::Operator(OperatorCommand::Add(a)) => add_operator(a),
    }
}

fn add_operator(args: OperatorAddArgs) -> anyhow::Result<ExitCode> {
    let mut file = IssuerFile::read(&args.dir)?;
    if file.operators.iter().any(|o| o.name == args.name) {
        bail!(
            "issuer.toml lists an operator named {:?} already",
            args.name
        );
    }
    if args.key.exists() {
        bail!("{} exists: name a new file for the key", args.key.display());
    }
    let key = OperatorKey::generate().context("generating the operator key")?;
    key.write(&args.key)
        .with_context(|| format!("writing {}", args.key.display()))?;
    file.operators.push(OperatorEntry {
        name: args.name.clone(),
        public_key: hex::encode(key.public().to_spki_der()),
    });
    let text = format!(
        "# VarietyCash issuer, written by `varietycash issuer init`.\n{}",
        toml::to_string(&file).context("writing the configuration")?
    );
    let config_path = args.dir.join(CONFIG_FILE);
    ledger::private_file::write_private(&config_path, text.as_bytes())
        .with_context(|| format!("writing {}", config_path.display()))?;
    println!(
        "operator {:?}: key {} (0600), fingerprint {}, listed in {} (restart `issuer serve` to accept it)",
        args.name,
        args.key.display(),
        key.fingerprint().short(),
        config_path.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn open_epoch(args: EpochOpenArgs) -> anyhow::Result<ExitCode> {
    let file = IssuerFile::read(&args.dir)?;
    let client_config = operator_client_config(&args.dir, &args.transport)?;
    if let Some(url) = serving_issuer(&args.dir, &file, args.issuer, &client_config)? {
        let key = read_operator_key(args.operator_key.as_deref(), Some(&args.dir))?;
        let client = IssuerClient::new(&url, client_config)?.with_operator(key);
        let opened = client
            .open_epoch()
            .with_context(|| format!("opening a key epoch at {url}"))?;
        println!(
            "key epoch {} opened by the issuer serving at {url}: its coins expire at {} (unix), \
             refreshable until {}",
            opened.epoch.0, opened.coins_expire_at.0, opened.grace_ends_at.0
        );
        return Ok(ExitCode::SUCCESS);
    }
    let runtime = start(&file, &args.dir).context(
        "no issuer answered at the configured address, so this ran the issuer in-process: if \
         `varietycash issuer serve` runs on this directory elsewhere, pass its --issuer URL",
    )?;
    let opened = runtime.issuer().core().open_epoch_now();
    let current = runtime.issuer().core().current_epoch();
    stop_issuer(runtime)?;
    let epoch = opened.context("opening a key epoch")?;
    match current {
        Some((e, info)) if e == epoch => println!(
            "key epoch {} opened: its coins expire at {} (unix), refreshable until {}",
            epoch.0, info.coins_expire_at.0, info.grace_ends_at.0
        ),
        _ => println!("key epoch {} opened", epoch.0),
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Clone, Copy)]
enum EpochStep {
    Revoke,
    Erase,
}

fn end_epoch(args: EpochStepArgs, step: EpochStep) -> anyhow::Result<ExitCode> {
    let epoch = ledger::KeyEpoch(args.epoch);
    let args = args.at;
    let file = IssuerFile::read(&args.dir)?;
    let client_config = operator_client_config(&args.dir, &args.transport)?;
    let revoked = |epoch: ledger::KeyEpoch, owed: ledger::Amount, still: ledger::Amount| {
        println!(
            "key epoch {} revoked: its coins are accepted only by recoup, which may pay out {still} \
             (of {owed} unspent when revoked)",
            epoch.0
        )
    };
    let erased = |epoch: ledger::KeyEpoch,
                  through: ledger::Seq,
                  (n, value): (u64, ledger::Amount),
                  (n_forfeited, forfeited): (u64, ledger::Amount)| {
        println!(
            "key epoch {} erased: {n} spent coin(s) worth {value}, logged through record {}, \
             and its mint key destroyed; {n_forfeited} unspent coin(s) worth {forfeited} \
             forfeited (out of the outstanding e-money)",
            epoch.0, through.0
        )
    };
    if let Some(url) = serving_issuer(&args.dir, &file, args.issuer, &client_config)? {
        let key = read_operator_key(args.operator_key.as_deref(), Some(&args.dir))?;
        let client = IssuerClient::new(&url, client_config)?.with_operator(key);
        match step {
            EpochStep::Revoke => {
                let a = client
                    .revoke_epoch(epoch)
                    .with_context(|| format!("revoking {epoch} at {url}"))?;
                revoked(a.epoch, a.owed, a.still_owed);
            }
            EpochStep::Erase => {
                let a = client
                    .erase_epoch(epoch)
                    .with_context(|| format!("erasing {epoch} at {url}"))?;
                erased(
                    a.epoch,
                    a.through,
                    (a.n_coins, a.value),
                    (a.forfeited_n_coins, a.forfeited),
                );
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let runtime = start(&file, &args.dir).context(
        "no issuer answered at the configured address, so this ran the issuer in-process: if \
         `varietycash issuer serve` runs on this directory elsewhere, pass its --issuer URL",
    )?;
    let core = runtime.issuer().core();
    let result = match step {
        EpochStep::Revoke => core
            .revoke_epoch(epoch)
            .map(|r| revoked(r.epoch, r.owed, r.still_owed)),
        EpochStep::Erase => core
            .erase_epoch(
                epoch,
                std::time::Duration::from_millis(actors::EPOCH_DRAIN_WAIT_MS),
            )
            .map(|e| {
                erased(
                    e.epoch,
                    e.through,
                    (e.n_coins, e.value),
                    (e.forfeited_n_coins, e.forfeited),
                )
            }),
    };
    stop_issuer(runtime)?;
    result.with_context(|| format!("ending {epoch}"))?;
    Ok(ExitCode::SUCCESS)
}

/// How long `epoch open` waits to learn whether the issuer serves.
const PROBE_TIMEOUT_MS: u64 = 2_000;

/// The URL of the issuer serving this directory: `--issuer` as given, else
/// the configured listen address if an issuer answers there with this
/// directory's public key. `None`: nothing listens there (run in-process).
pub(super) fn serving_issuer(
    dir: &Path,
    file: &IssuerFile,
    issuer: Option<String>,
    client: &ClientConfig,
) -> anyhow::Result<Option<String>> {
    if issuer.is_some() {
        return Ok(issuer);
    }
    let scheme = match client.tls {
        ClientTls::InsecurePlainHttp => "http",
        _ => "https",
    };
    let url = format!("{scheme}://{}", file.listen);
    let probe = IssuerClient::new(
        &url,
        ClientConfig {
            request_timeout_ms: PROBE_TIMEOUT_MS,
            connect_timeout_ms: PROBE_TIMEOUT_MS,
            attempts_max: 1,
            ..client.clone()
        },
    )?;
    let descriptor = match probe.descriptor() {
        Ok(descriptor) => descriptor,
        Err(client::ClientError::Transport { .. }) => return Ok(None),
        Err(e) => bail!("{url} answers, but not as an issuer: {e}"),
    };
    let key_path = dir.join(PUBLIC_KEY_FILE);
    let key = PublicKey::read_spki(&key_path)
        .with_context(|| format!("reading {}", key_path.display()))?;
    if descriptor.public_key != key.to_ledger() {
        bail!(
            "the issuer serving at {url} is not the one in {}: pass --issuer",
            dir.display()
        );
    }
    Ok(Some(url))
}

/// The issuer's tables (registry, card agency, operator nonces) beside a
/// log in PostgreSQL (opened after the log: its writer's lock keeps a
/// second issuer out).
fn open_side_tables(url: &str) -> anyhow::Result<pg_store::PostgresKv> {
    pg_store::PostgresKv::open(url).with_context(|| {
        format!(
            "opening the issuer's tables in {}",
            pg_store::url::redacted(url)
        )
    })
}

/// Starts the issuer's actors from its directory (rebuilding its state from
/// the log), with a spinner on a terminal.
fn start(file: &IssuerFile, dir: &Path) -> anyhow::Result<IssuerRuntime> {
    let bar = super::common::spinner("starting the issuer: rebuilding its state from the log");
    let runtime = IssuerRuntime::start(file.issuer_config(dir)?, file.bank(dir)?.as_dyn());
    super::common::finish(bar);
    runtime.context("starting the issuer")
}

fn init(args: InitArgs) -> anyhow::Result<ExitCode> {
    let config_path = args.dir.join(CONFIG_FILE);
    if config_path.exists() {
        bail!("{} exists: this issuer is set up", config_path.display());
    }
    // Opened first, so a used database is refused before any file is made.
    let log_store = args.store.as_deref().map(open_empty_log).transpose()?;
    ledger::private_file::create_private_dir(&args.dir)
        .with_context(|| format!("creating {}", args.dir.display()))?;
    let authority = TlsAuthority::generate().context("generating the TLS authority")?;
    authority
        .write(
            &args.dir.join(TLS_CA_CERT_FILE),
            &args.dir.join(TLS_CA_KEY_FILE),
        )
        .context("writing the TLS authority")?;
    let mut tls_names = vec!["localhost".to_owned()];
    if !args.listen.ip().is_unspecified() {
        tls_names.push(args.listen.ip().to_string());
    }
    tls_names.extend(args.tls_names.iter().cloned());
    authority
        .issue(&tls_names)
        .and_then(|issued| {
            issued.write(&args.dir.join(TLS_CERT_FILE), &args.dir.join(TLS_KEY_FILE))
        })
        .context("writing the gateway's TLS certificate")?;
    let operator_key_path = args.dir.join(OPERATOR_KEY_FILE);
    let operator = OperatorKey::generate_for(args.suite).context("generating the operator key")?;
    operator
        .write(&operator_key_path)
        .with_context(|| format!("writing {}", operator_key_path.display()))?;
    let file = IssuerFile {
        suite: args.suite.to_string(),
        rsa_bits: super::common::rsa_bits_for(args.suite, args.rsa_bits)?,
        shards: args.shards,
        listen: args.listen,
        bank_settle_delay_ms: args.bank_settle_delay_ms,
        metrics_token: Some(ScrapeToken::generate().as_str().to_owned()),
        operators: vec![OperatorEntry {
            name: "operator".into(),
            public_key: hex::encode(operator.public().to_spki_der()),
        }],
        tls_cert: Some(TLS_CERT_FILE.into()),
        tls_key: Some(TLS_KEY_FILE.into()),
        per_source: None,
        user_index_url: args.user_index.clone(),
        log_store: args.store.clone(),
        bank_files: super::bank::BankFilesConfig::from_init(&args.bank, &args.bank_account)?,
        epochs: None,
    };
    if let Some(path) = &args.user_index_key {
        let key = PublicKey::read_spki(path)
            .with_context(|| format!("reading the user index's key {}", path.display()))?;
        actors::install_user_index_key(&args.dir, &key).with_context(|| {
            format!(
                "writing {}",
                args.dir.join(actors::USER_INDEX_PUBLIC_KEY_FILE).display()
            )
        })?;
    }
    // The first start creates the keys, the mint, the log and the first
    // key epoch; then the issuer stops until `serve`.
    let mut config = file.config_without_log_store(&args.dir)?;
    config.log_store = log_store;
    if let Some(url) = &args.store {
        config.side_tables = Some(Arc::new(open_side_tables(url)?));
    }
    let runtime = IssuerRuntime::start(config, file.bank(&args.dir)?.as_dyn())
        .context("creating the issuer's files")?;
    let key_path = args.dir.join(PUBLIC_KEY_FILE);
    runtime
        .issuer()
        .public_key()
        .write_spki(&key_path)
        .with_context(|| format!("writing {}", key_path.display()))?;
    stop_issuer(runtime)?;
    let text = format!(
        "# VarietyCash issuer, written by `varietycash issuer init`.\n{}",
        toml::to_string(&file).context("writing the configuration")?
    );
    // 0600 whatever the umask: it holds the /metrics scrape token.
    ledger::private_file::write_private(&config_path, text.as_bytes())
        .with_context(|| format!("writing {}", config_path.display()))?;
    let keys = match args.suite.key_kind() {
        protocol::crypto::KeyKind::Rsa => format!("RSA-{}", file.rsa_bits),
        protocol::crypto::KeyKind::Ed25519X25519 => "Ed25519/X25519".to_owned(),
    };
    println!(
        "issuer created in {}: {keys}, suite {}, {} shards; public key {}",
        args.dir.display(),
        file.suite,
        file.shards,
        key_path.display()
    );
    println!(
        "operator key {} (0600), fingerprint {}, listed in {}",
        operator_key_path.display(),
        operator.fingerprint().short(),
        config_path.display()
    );
    println!(
        "TLS: authority {} (purses and merchants pin it: --issuer-cert), gateway certificate {} for {}",
        args.dir.join(TLS_CA_CERT_FILE).display(),
        args.dir.join(TLS_CERT_FILE).display(),
        tls_names.join(", ")
    );
    println!(
        "next: varietycash issuer serve --dir {}",
        args.dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `init --store URL`: the URL must name PostgreSQL, and its database must
/// hold no log: a new issuer's keys cannot sign on after another's records
/// (a replacement issuer starts from its old directory's keys instead,
/// `pg-store/README.md`).
fn open_empty_log(url: &str) -> anyhow::Result<Arc<dyn ledger::EventStore>> {
    if !pg_store::url::is_postgres_url(url) {
        bail!("--store takes a postgres:// URL (the default log is DIR/log.redb)");
    }
    let shown = pg_store::url::redacted(url);
    let store = pg_store::PostgresStore::open(url)
        .with_context(|| format!("opening the log in {shown}"))?;
    let n_records = store
        .len()
        .with_context(|| format!("reading the log in {shown}"))?;
    if n_records > 0 {
        bail!(
            "{shown} already holds a log of {n_records} records: `init` makes a new issuer; \
             an issuer's existing directory serves this log"
        );
    }
    Ok(Arc::new(store))
}

fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let file = IssuerFile::read(&args.dir)?;
    let keys_path = args
        .cluster_keys
        .clone()
        .unwrap_or_else(|| args.dir.join(super::cluster::CLUSTER_KEYS_FILE));
    match args.role {
        ServeRole::Sequencer => {
            let listen = match args.cluster_listen {
                Some(listen) => listen,
                None => super::cluster::DEFAULT_SEQUENCER_LISTEN.parse()?,
            };
            return super::cluster::serve_sequencer(
                &args.dir,
                file.shards,
                listen,
                &keys_path,
                file.log_store.as_deref(),
            );
        }
        ServeRole::Validator => return serve_validator(&args, &file),
        ServeRole::All => {}
    }
    // The whole issuer appends to the log: it holds the sequencer's lease,
    // so no sequencer of the same directory appends beside it. As a
    // cluster's sequencer it stands by while another holds the lease.
    // With the log on PostgreSQL the database excludes across hosts too
    // (`writer_config`).
    let lease = match (cluster::Lease::try_acquire(&args.dir)?, args.cluster_listen) {
        (Some(lease), _) => lease,
        (None, Some(_)) => {
            println!(
                "standing by: another issuer holds the lease on {}",
                args.dir.display()
            );
            cluster::Lease::acquire(
                &args.dir,
                std::time::Duration::from_millis(cluster::constants::STANDBY_POLL_MS),
            )?
        }
        (None, None) => anyhow::bail!(
            "a sequencer holds the lease on {}: stop it first",
            args.dir.display()
        ),
    };
    // On PostgreSQL: the database's writer lock (a second issuer on
    // another host stands by here until the first one's session ends),
    // then the next fencing epoch, which every append of this process
    // carries; a predecessor that wakes is refused and stops.
    let (mut issuer_config, pg_epoch) = file.writer_config(&args.dir, true)?;
    let tables = issuer_config.side_tables.clone();
    let listen = args.listen.unwrap_or(file.listen);
    let bank = file.bank(&args.dir)?;
    let bar = super::common::spinner("starting the issuer: rebuilding its state from the log");
    // This process is the issuer: a broken invariant anywhere in it (any
    // thread, a poisoned lock) exits it non-zero, for its supervisor to
    // restart it from the log.
    issuer_config.fail_stop = FailStopPolicy::ExitProcess;
    let runtime = IssuerRuntime::start(issuer_config, bank.as_dyn());
    super::common::finish(bar);
    let runtime = runtime.context("starting the issuer")?;
    runtime.issuer().core().fail_stop().guard_whole_process();
    let mut config = ServerConfig::new(listen);
    // A failure of the nonces' tables (a fenced predecessor's write among
    // them) stops the issuer as its own tables' failures do.
    let tables = tables
        .map(|tables| actors::stop_on_failure(tables, runtime.issuer().core().fail_stop().clone()));
    config.operators = Arc::new(file.operator_auth(&args.dir, tables)?);
    config.metrics_token = file.scrape_token()?;
    if let Some(per_source) = &file.per_source {
        config.per_source = per_source.limits()?;
    }
    if !args.insecure_http {
        config.tls = Some(file.tls_identity(&args.dir)?);
    }
    let gateway = match &bank {
        super::bank::IssuerBank::Simulated(simulated) => {
            serve_issuer_with_bank(&config, runtime.issuer().clone(), simulated.clone())
        }
        super::bank::IssuerBank::Files { .. } => {
            gateway::serve_issuer(&config, runtime.issuer().clone())
        }
    }
    .with_context(|| format!("serving on {listen}"))?;
    let cluster_server = match args.cluster_listen {
        Some(cluster_listen) => Some(super::cluster::serve_issuer_cluster(
            runtime.issuer().clone(),
            pg_epoch.unwrap_or(lease.epoch()),
            cluster_listen,
            &keys_path,
        )?),
        None => None,
    };
    let exchange = bank.start_exchange(runtime.issuer().core().clone())?;
    let forwarder = match &file.user_index_url {
        Some(url) => {
            let client_config = if args.insecure_http {
                ClientConfig::default()
            } else {
                operator_client_config(&args.dir, &TransportArgs::default())?
            };
            let client = gateway::index::IndexClient::new(url, client_config)
                .with_context(|| format!("the user index's URL {url}"))?;
            Some(
                gateway::index::IndexForwarder::start(
                    runtime.issuer().core().clone(),
                    client,
                    &args.dir.join(gateway::index::OUTBOX_FILE),
                )
                .context("starting the delivery to the user index")?,
            )
        }
        None => None,
    };
    println!("issuer serving at {} (Ctrl-C to stop)", gateway.url());
    wait_for_stop_signal()?;
    println!("stopping: finishing requests in flight");
    if let Some(server) = cluster_server {
        server.stop();
    }
    if let Some(forwarder) = forwarder {
        forwarder.stop();
    }
    if let Some(exchange) = exchange {
        exchange.stop();
    }
    gateway.stop().context("stopping the gateway")?;
    stop_issuer(runtime)?;
    println!("issuer stopped");
    Ok(ExitCode::SUCCESS)
}

/// `issuer serve --role validator`: a node that opens payments with the
/// issuer's key (DIR/issuer.key) and has the sequencers decide them; its
/// gateway serves the payment routes on --listen with DIR's TLS identity.
fn serve_validator(args: &ServeArgs, file: &IssuerFile) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        !args.sequencers.is_empty(),
        "--role validator needs --sequencer ADDR (the issuer's --cluster-listen)"
    );
    let node = cluster::NodeName::parse(
        args.node
            .as_deref()
            .context("--role validator needs --node NAME")?,
    )?;
    let key_path = args
        .node_key
        .as_ref()
        .context("--role validator needs --node-key FILE")?;
    let key = cluster::NodeKey::from_hex(
        &std::fs::read_to_string(key_path)
            .with_context(|| format!("reading {}", key_path.display()))?,
    )?;
    let key_file = args.dir.join("issuer.key");
    let sk_i = protocol::crypto::SecretKey::read_pkcs8(&key_file)
        .with_context(|| format!("reading {}", key_file.display()))?;
    let suite: SuiteId = file.suite.parse().context("the configured suite")?;
    let client = cluster::SequencerClient::start(cluster::ClientConfig {
        node,
        key,
        sequencers: args.sequencers.clone(),
    });
    let validator = cluster::Validator::new(sk_i, suite, client.clone());
    let listen = args.listen.unwrap_or(file.listen);
    let mut config = ServerConfig::new(listen);
    if let Some(per_source) = &file.per_source {
        config.per_source = per_source.limits()?;
    }
    if !args.insecure_http {
        config.tls = Some(file.tls_identity(&args.dir)?);
    }
    let gateway = gateway::validator::serve_validator(&config, validator)
        .with_context(|| format!("serving on {listen}"))?;
    println!("validator serving at {} (Ctrl-C to stop)", gateway.url());
    wait_for_stop_signal()?;
    gateway.stop().context("stopping the gateway")?;
    client.stop();
    println!("validator stopped");
    Ok(ExitCode::SUCCESS)
}

/// The running issuer's URL: `--issuer`, else the configured address
/// (`https://`, or `http://` with `--insecure-http`).
pub fn issuer_url(
    dir: &Path,
    issuer: Option<String>,
    insecure_http: bool,
) -> anyhow::Result<String> {
    match issuer {
        Some(url) => Ok(url),
        None => Ok(format!(
            "{}://{}",
            if insecure_http { "http" } else { "https" },
            IssuerFile::read(dir)?.listen
        )),
    }
}

/// The client of an operator command run in the issuer's directory: its
/// TLS authority pinned unless `--issuer-cert` or `--insecure-http` say
/// otherwise.
pub(super) fn operator_client_config(
    dir: &Path,
    transport: &TransportArgs,
) -> anyhow::Result<ClientConfig> {
    transport.client_config(Some(&dir.join(TLS_CA_CERT_FILE)))
}

fn tls_cert(args: TlsCertArgs) -> anyhow::Result<ExitCode> {
    let authority = TlsAuthority::read(
        &args.dir.join(TLS_CA_CERT_FILE),
        &args.dir.join(TLS_CA_KEY_FILE),
    )
    .with_context(|| format!("reading the TLS authority in {}", args.dir.display()))?;
    authority
        .issue(&args.names)
        .and_then(|issued| issued.write(&args.cert, &args.key))
        .context("issuing the certificate")?;
    println!(
        "certificate {} (key {}, 0600) for {}, signed by the issuer's TLS authority",
        args.cert.display(),
        args.key.display(),
        args.names.join(", ")
    );
    Ok(ExitCode::SUCCESS)
}

fn dashboard_link(args: DashboardLinkArgs) -> anyhow::Result<ExitCode> {
    let url = issuer_url(&args.dir, args.issuer, args.insecure_http)?;
    let key = read_operator_key(args.operator_key.as_deref(), Some(&args.dir))?;
    // The grant names this issuer: another server listing the same
    // operator key refuses it.
    let issuer_key_path = args.dir.join(PUBLIC_KEY_FILE);
    let issuer_key = PublicKey::read_spki(&issuer_key_path)
        .with_context(|| format!("reading {}", issuer_key_path.display()))?;
    let grant = key
        .sign(
            Some(client::KeyFingerprint::of(&issuer_key)),
            gateway::dashboard::DASHBOARD_LOGIN_ROUTE,
            protocol::wire::encode(&gateway::dashboard::DashboardGrant {}),
        )
        .context("signing the dashboard grant")?;
    println!(
        "{}{}?grant={}",
        url.trim_end_matches('/'),
        gateway::dashboard::DASHBOARD_LOGIN_ROUTE,
        hex::encode(protocol::wire::encode(&grant))
    );
    Ok(ExitCode::SUCCESS)
}

/// The operator key at `path`, else the one `init` made in `dir`.
pub fn read_operator_key(path: Option<&Path>, dir: Option<&Path>) -> anyhow::Result<OperatorKey> {
    let path = match (path, dir) {
        (Some(path), _) => path.to_path_buf(),
        (None, Some(dir)) => dir.join(OPERATOR_KEY_FILE),
        (None, None) => bail!("pass --operator-key FILE (or --dir of the issuer that made it)"),
    };
    OperatorKey::read(&path).with_context(|| format!("reading the operator key {}", path.display()))
}

fn approve(args: ApproveArgs) -> anyhow::Result<ExitCode> {
    let url = issuer_url(&args.dir, args.issuer, args.transport.insecure_http)?;
    let key = read_operator_key(args.operator_key.as_deref(), Some(&args.dir))?;
    let client = IssuerClient::new(&url, operator_client_config(&args.dir, &args.transport)?)?
        .with_operator(key);
    client
        .approve_enrollment(&args.id, args.role)
        .with_context(|| format!("approving {} as {} at {url}", args.id.as_str(), args.role))?;
    println!("approved: {} as {}", args.id.as_str(), args.role);
    Ok(ExitCode::SUCCESS)
}

fn refuse(args: ApproveArgs) -> anyhow::Result<ExitCode> {
    let url = issuer_url(&args.dir, args.issuer, args.transport.insecure_http)?;
    let key = read_operator_key(args.operator_key.as_deref(), Some(&args.dir))?;
    let client = IssuerClient::new(&url, operator_client_config(&args.dir, &args.transport)?)?
        .with_operator(key);
    client
        .refuse_enrollment(&args.id, args.role)
        .with_context(|| format!("refusing {} as {} at {url}", args.id.as_str(), args.role))?;
    println!("refused: {} as {}", args.id.as_str(), args.role);
    Ok(ExitCode::SUCCESS)
}

fn set_standing(args: ParticipantArgs, standing: Standing) -> anyhow::Result<ExitCode> {
    let url = issuer_url(&args.dir, args.issuer, args.transport.insecure_http)?;
    let key = read_operator_key(args.operator_key.as_deref(), Some(&args.dir))?;
    let client = IssuerClient::new(&url, operator_client_config(&args.dir, &args.transport)?)?
        .with_operator(key);
    client
        .set_standing(&args.id, standing)
        .with_context(|| format!("making {} {standing} at {url}", args.id.as_str()))?;
    println!("{}: {standing}", args.id.as_str());
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_source_limits_come_from_issuer_toml_and_zero_is_refused() {
        let text = "suite = \"aes256\"\nrsa_bits = 2048\nshards = 2\nlisten = \"127.0.0.1:8080\"\n\
                    [per_source]\nrequests_per_sec = 2000\nconnections_max = 64\n";
        let file: IssuerFile = toml::from_str(text).expect("parses");
        let limits = file.per_source.expect("a table").limits().expect("limits");
        assert_eq!(limits.requests_per_sec, 2000.0);
        assert_eq!(limits.connections_max, 64);
        assert_eq!(
            limits.bodies_receiving_max,
            SourceLimits::default().bodies_receiving_max
        );
        let zero = PerSourceFile {
            requests_in_flight_max: Some(0),
            ..PerSourceFile::default()
        };
        assert!(zero.limits().is_err());
    }
}
