//! `varietycash bank`: the operator's view of the simulated bank, and the
//! issuer's bank connectors. The simulated bank lives inside the issuer's
//! process (`issuer serve`), its only client; these commands reach it
//! through the gateway's operator routes, signed with an operator key the
//! issuer lists, except `export`, which reads a stopped issuer's bank file
//! and writes the bank's statement for an auditor (`audit
//! --bank-statement`).
//!
//! The file-exchange bank (`issuer init --bank files:DIR`) is
//! `actors::FileExchangeBank`: `issuer serve` runs its exchange
//! every second on a thread of its own ([`ExchangeThread`]). The auditor
//! reads the bank's camt.053 statements as well as the simulated bank's
//! export ([`read_statement`]).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use actors::{Bank, SimulatedBank};
use actors::{ExchangeDirs, FileExchangeBank, IssuerAccount};
use anyhow::bail;
use bank_files::camt053::{EntryKind, Statement};
use bank_files::{Bic, Iban};
use serde::{Deserialize, Serialize};

use anyhow::Context;
use clap::{Args, Subcommand};
use client::IssuerClient;
use ledger::{Amount, BankAccount};

use super::common::{TransportArgs, parse_account};
use super::issuer::read_operator_key;

/// The simulated bank, through the running issuer's operator routes.
#[derive(Debug, Args)]
pub struct BankArgs {
    /// The issuer's gateway URL.
    #[arg(long, global = true, default_value = "https://127.0.0.1:8080")]
    pub issuer: String,
    /// The operator key that signs the requests.
    #[arg(long, global = true)]
    pub operator_key: Option<PathBuf>,
    /// The issuer's directory, whose operator.key signs unless
    /// --operator-key names another.
    #[arg(long, global = true)]
    pub dir: Option<PathBuf>,
    /// TLS: the issuer's authority certificate (default DIR/tls-ca.pem).
    #[command(flatten)]
    pub transport: TransportArgs,
    #[command(subcommand)]
    pub command: BankCommand,
}

#[derive(Debug, Subcommand)]
pub enum BankCommand {
    /// Open an account holding AMOUNT.
    OpenAccount {
        #[arg(value_parser = parse_account)]
        account: BankAccount,
        amount: Amount,
    },
    /// An account's balance.
    Balance {
        #[arg(value_parser = parse_account)]
        account: BankAccount,
    },
    /// Write the bank's whole statement (debits of purchases, credits of
    /// redemptions; no account numbers) for `audit --bank-statement`. Reads
    /// the bank file of a stopped issuer (DIR/bank.redb).
    Export {
        /// The simulated bank's file.
        #[arg(long)]
        bank: std::path::PathBuf,
        /// Where to write the statement.
        #[arg(long)]
        out: std::path::PathBuf,
    },
}

pub fn run(args: BankArgs) -> anyhow::Result<ExitCode> {
    if let BankCommand::Export { bank, out } = &args.command {
        let n = export(bank, out)?;
        println!("{n} statement entries written to {}", out.display());
        return Ok(ExitCode::SUCCESS);
    }
    let key = read_operator_key(args.operator_key.as_deref(), args.dir.as_deref())?;
    let ca = args
        .dir
        .as_deref()
        .map(|d| d.join(super::issuer::TLS_CA_CERT_FILE));
    let client = IssuerClient::new(&args.issuer, args.transport.client_config(ca.as_deref())?)?
        .with_operator(key);
    match args.command {
        BankCommand::OpenAccount { account, amount } => {
            client
                .open_bank_account(&account, amount)
                .with_context(|| format!("opening an account at {}", args.issuer))?;
            println!("account {} opened with {amount}", account.as_str());
        }
        BankCommand::Balance { account } => {
            let balance = client
                .bank_balance(&account)
                .with_context(|| format!("reading a balance at {}", args.issuer))?;
            println!("{} {balance}", account.as_str());
        }
        BankCommand::Export { .. } => {}
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes the simulated bank's statement at `bank` to `out` in the
/// auditor's format; the number of entries.
pub fn export(bank: &std::path::Path, out: &std::path::Path) -> anyhow::Result<usize> {
    anyhow::ensure!(
        bank.exists(),
        "no bank file at {} (expected the issuer's DIR/bank.redb)",
        bank.display()
    );
    let bank_db =
        actors::SimulatedBank::open(bank, std::time::Duration::ZERO).with_context(|| {
            format!(
                "opening the bank {} (is the issuer stopped?)",
                bank.display()
            )
        })?;
    let entries = bank_db
        .export_statement()
        .context("reading the bank's statement")?;
    let statement = replay::BankStatement {
        entries: entries
            .iter()
            .map(|e| match e.kind {
                actors::StatementKind::Debit(purchase) => replay::BankEntry::Debit {
                    purchase,
                    amount: e.amount,
                },
                actors::StatementKind::Credit(tx) => replay::BankEntry::Credit {
                    tx,
                    amount: e.amount,
                },
                actors::StatementKind::Returned(purchase) => replay::BankEntry::Returned {
                    purchase,
                    amount: e.amount,
                },
            })
            .collect(),
    };
    // 0600: the statement names bank accounts.
    ledger::private_file::write_private(out, statement.to_text().as_bytes())
        .with_context(|| format!("writing the statement to {}", out.display()))?;
    Ok(entries.len())
}

/// `issuer init --bank`: which bank the issuer talks to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BankChoice {
    /// The simulated bank in DIR/bank.redb.
    Simulated,
    /// ISO 20022 files exchanged through this directory.
    Files(PathBuf),
}

pub fn parse_bank_choice(text: &str) -> Result<BankChoice, String> {
    match text.split_once(':') {
        None if text == "simulated" => Ok(BankChoice::Simulated),
        Some(("files", dir)) if !dir.is_empty() => Ok(BankChoice::Files(PathBuf::from(dir))),
        _ => Err("expected `simulated` or `files:DIR`".into()),
    }
}

/// The issuer's own account, which its pain files are drawn on.
#[derive(Debug, Clone, Args)]
pub struct IssuerAccountArgs {
    /// `--bank files:DIR`: the issuer's IBAN (check digits verified).
    #[arg(long)]
    pub bank_iban: Option<String>,
    /// `--bank files:DIR`: the BIC of the issuer's bank.
    #[arg(long)]
    pub bank_bic: Option<String>,
    /// `--bank files:DIR`: the issuer's SEPA creditor identifier.
    #[arg(long)]
    pub creditor_id: Option<String>,
    /// `--bank files:DIR`: the account holder's name in the files.
    #[arg(long, default_value = "VarietyCash Issuer")]
    pub bank_name: String,
}

/// `[bank_files]` in issuer.toml.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BankFilesConfig {
    /// The exchange directory (its `outbox` and `inbox`).
    pub dir: PathBuf,
    pub name: String,
    pub iban: String,
    pub bic: String,
    pub creditor_id: String,
}

/// The redb file of the file-exchange bank, in the issuer's directory.
pub const BANK_FILES_DB: &str = "bank-files.redb";
/// How often `issuer serve` exchanges files with the bank (at least a
/// second: the second names each file).
pub const BANK_EXCHANGE_INTERVAL_MS: u64 = 1_000;
const _: () = assert!(BANK_EXCHANGE_INTERVAL_MS >= 1_000);

impl BankFilesConfig {
    /// What `init --bank` chose: `None` for the simulated bank.
    pub fn from_init(
        choice: &BankChoice,
        account: &IssuerAccountArgs,
    ) -> anyhow::Result<Option<BankFilesConfig>> {
        let BankChoice::Files(dir) = choice else {
            return Ok(None);
        };
        let (Some(iban), Some(bic), Some(creditor_id)) =
            (&account.bank_iban, &account.bank_bic, &account.creditor_id)
        else {
            bail!("--bank files:DIR needs --bank-iban, --bank-bic and --creditor-id");
        };
        let config = BankFilesConfig {
            dir: std::path::absolute(dir)
                .with_context(|| format!("the exchange directory {}", dir.display()))?,
            name: account.bank_name.clone(),
            iban: Iban::parse(iban)
                .context("--bank-iban")?
                .as_str()
                .to_owned(),
            bic: Bic::parse(bic).context("--bank-bic")?.as_str().to_owned(),
            creditor_id: creditor_id.clone(),
        };
        config.account()?;
        Ok(Some(config))
    }

    fn account(&self) -> anyhow::Result<IssuerAccount> {
        Ok(IssuerAccount {
            name: self.name.clone(),
            iban: Iban::parse(&self.iban).context("iban in [bank_files]")?,
            bic: Bic::parse(&self.bic).context("bic in [bank_files]")?,
            creditor_id: self.creditor_id.clone(),
        })
    }

    /// Opens the bank's file in the issuer's directory and the exchange
    /// directories.
    pub fn open(&self, issuer_dir: &Path) -> anyhow::Result<IssuerBank> {
        let path = issuer_dir.join(BANK_FILES_DB);
        let bank = FileExchangeBank::open(&path, self.account()?)
            .with_context(|| format!("opening the file-exchange bank {}", path.display()))?;
        let dirs = ExchangeDirs::create(&self.dir)
            .with_context(|| format!("the exchange directory {}", self.dir.display()))?;
        Ok(IssuerBank::Files {
            bank: Arc::new(bank),
            dirs,
        })
    }
}

/// The bank an issuer runs with.
#[derive(Debug, Clone)]
pub enum IssuerBank {
    Simulated(Arc<SimulatedBank>),
    Files {
        bank: Arc<FileExchangeBank>,
        dirs: ExchangeDirs,
    },
}

impl IssuerBank {
    pub fn as_dyn(&self) -> Arc<dyn Bank> {
        match self {
            IssuerBank::Simulated(bank) => bank.clone(),
            IssuerBank::Files { bank, .. } => bank.clone(),
        }
    }

    /// For the file-exchange bank: the thread exchanging its files.
    pub fn start_exchange(
        &self,
        core: Arc<actors::IssuerCore>,
    ) -> anyhow::Result<Option<ExchangeThread>> {
        let IssuerBank::Files { bank, dirs } = self else {
            return Ok(None);
        };
        let (bank, dirs) = (bank.clone(), dirs.clone());
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("vc-bank-exchange".into())
            .spawn(move || {
                while !stopping.load(Ordering::SeqCst) {
                    let now = core.now().0;
                    match bank.exchange(&core, &dirs, now) {
                        Ok(round) if round != Default::default() => {
                            tracing::info!(
                                debits_sent = round.debits_sent,
                                credits_sent = round.credits_sent,
                                statements_booked = round.statements_booked,
                                debits_returned = round.debits_returned,
                                "bank files exchanged"
                            );
                        }
                        Ok(_) => {}
                        Err(e) => tracing::error!(error = %e, "bank file exchange failed"),
                    }
                    std::thread::sleep(Duration::from_millis(BANK_EXCHANGE_INTERVAL_MS));
                }
            })
            .context("starting the bank file exchange")?;
        Ok(Some(ExchangeThread {
            stop,
            thread: Some(thread),
        }))
    }
}

/// The file exchange of a serving issuer; stopped by [`ExchangeThread::stop`].
#[derive(Debug)]
pub struct ExchangeThread {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ExchangeThread {
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The bank statement at `path` for the auditor: the simulated bank's
/// export (text), one camt.053 file (`.xml`), or a directory of camt.053
/// files (its `*.xml`, and those in its `booked/`), in name order. Every
/// camt.053 is checked against the schema's rules first; a purchase debit
/// collected becomes a debit, a payout a credit, a collected debit given
/// back a return. A statement the bank delivered twice (the same statement
/// id, in the inbox and in `booked/`, or under two names) counts once; two
/// different statements under one id, or statements of two accounts, are
/// an error: the auditor reconciles one account and never sums a
/// re-delivery.
pub fn read_statement(path: &Path) -> anyhow::Result<replay::BankStatement> {
    let mut files = Vec::new();
    if path.is_dir() {
        for dir in [path.to_path_buf(), path.join(actors::BOOKED_DIR)] {
            if !dir.is_dir() {
                continue;
            }
            for entry in
                std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?
            {
                let file = entry?.path();
                if file.is_file() && file.extension().is_some_and(|x| x == "xml") {
                    files.push(file);
                }
            }
        }
        files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
        if files.is_empty() {
            bail!("{} holds no camt.053 file (*.xml)", path.display());
        }
    } else if path.extension().is_some_and(|x| x == "xml") {
        files.push(path.to_path_buf());
    } else {
        return replay::BankStatement::read_file(path)
            .with_context(|| format!("reading the bank statement {}", path.display()));
    }
    let mut entries = Vec::new();
    let mut seen: std::collections::BTreeMap<String, (PathBuf, Statement)> =
        std::collections::BTreeMap::new();
    let mut account: Option<(PathBuf, Iban)> = None;
    for file in files {
        let len = std::fs::metadata(&file)
            .with_context(|| format!("reading {}", file.display()))?
            .len();
        if len > bank_files::FILE_BYTES_MAX as u64 {
            bail!("{} is larger than a statement may be", file.display());
        }
        let xml = std::fs::read_to_string(&file)
            .with_context(|| format!("reading {}", file.display()))?;
        let statement = Statement::from_xml(&xml)
            .with_context(|| format!("{} is not a valid camt.053 statement", file.display()))?;
        match &account {
            Some((first, iban)) if *iban != statement.account => bail!(
                "{} is a statement of another account than {}",
                file.display(),
                first.display()
            ),
            Some(_) => {}
            None => account = Some((file.clone(), statement.account.clone())),
        }
        match seen.get(&statement.statement_id) {
            Some((_, earlier)) if *earlier == statement => continue,
            Some((earlier_file, _)) => bail!(
                "{} and {} are two different statements under one id {:?}",
                earlier_file.display(),
                file.display(),
                statement.statement_id
            ),
            None => {
                seen.insert(
                    statement.statement_id.clone(),
                    (file.clone(), statement.clone()),
                );
            }
        }
        for entry in statement.entries {
            let bad_id = || {
                anyhow::anyhow!(
                    "{}: end-to-end id {:?} is not a VarietyCash purchase or transaction id",
                    file.display(),
                    entry.end_to_end_id
                )
            };
            entries.push(match entry.kind {
                EntryKind::Collected => replay::BankEntry::Debit {
                    purchase: ledger::PurchaseId::from_hex(&entry.end_to_end_id)
                        .ok_or_else(bad_id)?,
                    amount: entry.amount,
                },
                EntryKind::Returned(_) => replay::BankEntry::Returned {
                    purchase: ledger::PurchaseId::from_hex(&entry.end_to_end_id)
                        .ok_or_else(bad_id)?,
                    amount: entry.amount,
                },
                EntryKind::Paid => replay::BankEntry::Credit {
                    tx: ledger::TxId::from_hex(&entry.end_to_end_id).ok_or_else(bad_id)?,
                    amount: entry.amount,
                },
            });
        }
    }
    Ok(replay::BankStatement { entries })
}
