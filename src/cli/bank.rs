//! `varietycash bank`: the operator's view of the simulated bank. The bank
//! lives inside the issuer's process (`issuer serve`), its only client; these
//! commands reach it through the gateway's operator routes, signed with an
//! operator key the issuer lists, except `export`, which reads a stopped
//! issuer's bank file and writes the bank's statement for an auditor
//! (`audit --bank-statement`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use gateway::IssuerClient;
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
            })
            .collect(),
    };
    // 0600: the statement names bank accounts.
    ledger::private_file::write_private(out, statement.to_text().as_bytes())
        .with_context(|| format!("writing the statement to {}", out.display()))?;
    Ok(entries.len())
}
