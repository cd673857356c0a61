//! `varietycash bank`: the operator's view of the simulated bank. The bank
//! lives inside the issuer's process (`issuer serve`), its only client; these
//! commands reach it through the gateway's loopback-only operator routes.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use gateway::{ClientConfig, IssuerClient};
use ledger::{Amount, BankAccount};

use super::common::parse_account;

/// The simulated bank, through the running issuer's operator routes.
#[derive(Debug, Args)]
pub struct BankArgs {
    /// The issuer's gateway URL (the routes answer loopback peers only).
    #[arg(long, global = true, default_value = "http://127.0.0.1:8080")]
    pub issuer: String,
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
}

pub fn run(args: BankArgs) -> anyhow::Result<ExitCode> {
    let client = IssuerClient::new(&args.issuer, ClientConfig::default())?;
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
    }
    Ok(ExitCode::SUCCESS)
}
