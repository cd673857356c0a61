//! `varietycash index`: the user index as its own service. `init` makes its
//! directory and key pair (the private half never leaves it; the issuer
//! gets `index.pub` through `issuer init --user-index-key`); `serve` takes
//! the issuer's deliveries and answers disclosures; `approve` is one
//! operator's signed approval of a disclosure; `disclose` sends two of
//! them; `status` tells how far the index has applied the issuer's log.
//!
//! Run the index under an OS user of its own, in a directory only that
//! user can enter (0700, as `init` makes it): the issuer's user must not
//! read `index.key`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use client::{OperatorKey, ServerConfig, TlsIdentity};
use gateway::index::{IndexClient, approvals, approve_disclosure, serve_index};
use ledger::{CoinId, DisclosureSubject, PurchaseId};
use protocol::crypto::PublicKey;
use protocol::wire::{BoundedText, decode, encode};
use user_index::IndexService;
use user_index::wire::DisclosureOrder;

use super::common::{TransportArgs, wait_for_stop_signal};

/// The user index: its own directory, key pair and process.
#[derive(Debug, Args)]
pub struct IndexArgs {
    #[command(subcommand)]
    pub command: IndexCommand,
}

#[derive(Debug, Subcommand)]
pub enum IndexCommand {
    /// Create the index's directory (0700) and key pair: DIR/index.key
    /// (0600, opens every identity) and DIR/index.pub (for the issuer).
    Init(InitArgs),
    /// Serve the index: the issuer's deliveries and disclosures.
    Serve(ServeArgs),
    /// One operator's signed approval of a disclosure (valid two minutes).
    Approve(ApproveArgs),
    /// Ask the index who is behind a coin or purchase, with two approvals
    /// by two different operator keys; the issuer logs it first.
    Disclose(DiscloseArgs),
    /// How far the index has applied the issuer's log.
    Status(StatusArgs),
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The index's directory (created, 0700).
    #[arg(long)]
    pub dir: PathBuf,
    /// Cipher suite of the issuer it serves (its key is of that suite's
    /// kind): dhaes (the default), aes256 or tdes.
    #[arg(long, default_value = "dhaes")]
    pub suite: protocol::crypto::SuiteId,
    /// Size of the index's RSA key (suites aes256 and tdes).
    #[arg(long, value_parser = super::common::parse_rsa_bits)]
    pub rsa_bits: Option<usize>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The index's directory, as `init` made it.
    #[arg(long)]
    pub dir: PathBuf,
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:8090")]
    pub listen: SocketAddr,
    /// The issuer's gateway, where disclosures are logged.
    #[arg(long)]
    pub issuer: String,
    /// The issuer's public key (its `issuer.pub`): deliveries and logged
    /// disclosures must verify under it.
    #[arg(long)]
    pub issuer_key: PathBuf,
    /// The index's TLS certificate, issued by the issuer's authority
    /// (`varietycash issuer tls-cert`).
    #[arg(long)]
    pub tls_cert: Option<PathBuf>,
    #[arg(long)]
    pub tls_key: Option<PathBuf>,
    #[command(flatten)]
    pub transport: TransportArgs,
}

#[derive(Debug, Args)]
#[group(id = "subject", required = true, multiple = false)]
pub struct SubjectArgs {
    /// Who withdrew this coin (its id in hex).
    #[arg(long, group = "subject")]
    pub coin: Option<String>,
    /// Who made this purchase (its id in hex).
    #[arg(long, group = "subject")]
    pub purchase: Option<String>,
}

#[derive(Debug, Args)]
pub struct ApproveArgs {
    #[command(flatten)]
    pub subject: SubjectArgs,
    /// Who asks (a court, an agency).
    #[arg(long)]
    pub requester: String,
    /// Why (a case or warrant number).
    #[arg(long)]
    pub reason: String,
    /// This operator's key (listed in the issuer's issuer.toml).
    #[arg(long)]
    pub operator_key: PathBuf,
    /// The issuer's public key (its issuer.pub): the approval names that
    /// issuer, which alone checks and logs it.
    #[arg(long)]
    pub issuer_key: PathBuf,
    /// Where to write the signed approval (0600).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct DiscloseArgs {
    /// The index's URL.
    #[arg(long)]
    pub index: String,
    /// A signed approval from `index approve`: exactly two, by two
    /// different operators, of the same order.
    #[arg(long = "approval", required = true, num_args = 1)]
    pub approvals: Vec<PathBuf>,
    #[command(flatten)]
    pub transport: TransportArgs,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The index's URL.
    #[arg(long)]
    pub index: String,
    #[command(flatten)]
    pub transport: TransportArgs,
}

pub fn run(args: IndexArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        IndexCommand::Init(a) => init(a),
        IndexCommand::Serve(a) => serve(a),
        IndexCommand::Approve(a) => approve(a),
        IndexCommand::Disclose(a) => disclose(a),
        IndexCommand::Status(a) => status(a),
    }
}

fn init(args: InitArgs) -> anyhow::Result<ExitCode> {
    let rsa_bits = super::common::rsa_bits_for(args.suite, args.rsa_bits)?;
    IndexService::create_keys(&args.dir, args.suite, rsa_bits)
        .with_context(|| format!("creating the index in {}", args.dir.display()))?;
    let public = args.dir.join(user_index::INDEX_PUBLIC_KEY_FILE);
    println!(
        "user index created in {}: private key {} (0600, stays here), public key {}",
        args.dir.display(),
        args.dir.join(user_index::INDEX_KEY_FILE).display(),
        public.display()
    );
    println!(
        "next: varietycash issuer init --user-index-key {} --user-index https://HOST:PORT ...",
        public.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let issuer_key = PublicKey::read_spki(&args.issuer_key)
        .with_context(|| format!("reading the issuer's key {}", args.issuer_key.display()))?;
    let index = Arc::new(
        IndexService::open(&args.dir, issuer_key)
            .with_context(|| format!("opening the index in {}", args.dir.display()))?,
    );
    let client_config = args.transport.client_config(None)?;
    let issuer = client::client::HttpClient::new(&args.issuer, client_config)?;
    let mut config = ServerConfig::new(args.listen);
    if !args.transport.insecure_http {
        let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) else {
            bail!("pass --tls-cert and --tls-key (from `issuer tls-cert`), or --insecure-http");
        };
        config.tls = Some(
            TlsIdentity::read_pem(cert, key)
                .with_context(|| format!("reading {}", cert.display()))?,
        );
    }
    let server = serve_index(&config, index.clone(), issuer)
        .with_context(|| format!("serving on {}", args.listen))?;
    println!(
        "user index serving at {} (applied the issuer's log to record {}; Ctrl-C to stop)",
        server.url(),
        index.applied()?.0
    );
    wait_for_stop_signal()?;
    server.stop().context("stopping the index")?;
    println!("user index stopped");
    Ok(ExitCode::SUCCESS)
}

fn subject(args: &SubjectArgs) -> anyhow::Result<DisclosureSubject> {
    match (&args.coin, &args.purchase) {
        (Some(coin), None) => Ok(DisclosureSubject::Coin(
            CoinId::from_hex(coin).context("--coin takes a coin id: 32 hex digits")?,
        )),
        (None, Some(purchase)) => Ok(DisclosureSubject::Purchase(
            PurchaseId::from_hex(purchase)
                .context("--purchase takes a purchase id: 32 hex digits")?,
        )),
        _ => bail!("name exactly one of --coin and --purchase"),
    }
}

fn approve(args: ApproveArgs) -> anyhow::Result<ExitCode> {
    let order = DisclosureOrder {
        subject: subject(&args.subject)?,
        requester: BoundedText::new(args.requester.as_str()).map_err(|_| {
            anyhow::anyhow!(
                "--requester is at most {} bytes",
                user_index::constants::DISCLOSURE_REQUESTER_BYTES_MAX
            )
        })?,
        reason: BoundedText::new(args.reason.as_str()).map_err(|_| {
            anyhow::anyhow!(
                "--reason is at most {} bytes",
                user_index::constants::DISCLOSURE_REASON_BYTES_MAX
            )
        })?,
    };
    // The same checks the index and the issuer make.
    decode::<DisclosureOrder>(&encode(&order)).context("the order")?;
    let key = OperatorKey::read(&args.operator_key)
        .with_context(|| format!("reading {}", args.operator_key.display()))?;
    let issuer_key = PublicKey::read_spki(&args.issuer_key)
        .with_context(|| format!("reading the issuer's key {}", args.issuer_key.display()))?;
    let approval = approve_disclosure(&key, &issuer_key, &order).context("signing the approval")?;
    ledger::private_file::write_private(&args.out, &encode(&approval))
        .with_context(|| format!("writing {}", args.out.display()))?;
    println!(
        "approval of disclosing {} to {:?} ({:?}) by key {} written to {} (valid {} s)",
        order.subject,
        order.requester.as_str(),
        order.reason.as_str(),
        key.fingerprint().short(),
        args.out.display(),
        client::constants::OPERATOR_REQUEST_WINDOW_SECS
    );
    Ok(ExitCode::SUCCESS)
}

fn disclose(args: DiscloseArgs) -> anyhow::Result<ExitCode> {
    let [first, second] = args.approvals.as_slice() else {
        bail!("a disclosure takes exactly two --approval files, by two different operators");
    };
    let read = |path: &PathBuf| -> anyhow::Result<client::operator::OperatorRequest> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        decode(&bytes).with_context(|| format!("{} is not a signed approval", path.display()))
    };
    let request = approvals(&read(first)?, &read(second)?);
    let client = IndexClient::new(&args.index, args.transport.client_config(None)?)?;
    let answer = client
        .disclose(&request)
        .with_context(|| format!("asking the index at {}", args.index))?;
    println!(
        "{}: {} (disclosure logged by the issuer at record {})",
        answer.subject,
        answer.participant.as_str(),
        answer.logged_at.0
    );
    Ok(ExitCode::SUCCESS)
}

fn status(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let client = IndexClient::new(&args.index, args.transport.client_config(None)?)?;
    let applied = client
        .applied()
        .with_context(|| format!("asking the index at {}", args.index))?;
    println!("applied {}", applied.0);
    Ok(ExitCode::SUCCESS)
}
