//! `varietycash purse`: a coin holder's purse file driven over HTTP through
//! the gateway's `Wallet`: create it, register, enroll, buy, pay a merchant,
//! change, redeem, refresh expired coins, finish journaled transactions,
//! and show the balance and the coins.
//!
//! Not here: `refund` (the wallet does not drive refunds yet; the issuer's
//! `/v1/refund` route exists).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use gateway::{ClientConfig, IssuerClient, PurchaseOutcome, Wallet, WalletError};
use ledger::{Amount, BankAccount, ParticipantId, Role, Timestamp};
use protocol::crypto::SuiteId;
use protocol::flows::PayerOutcome;
use purse::{IssuerInfo, Purse, PurseProfile, Selection};

use super::common::{open_wallet, parse_account, parse_participant, parse_spec};

/// Rounds of "change, then select again" before giving up.
const CHANGE_ROUNDS_MAX: usize = 4;

/// A coin holder's purse: buy coins, pay merchants, change, redeem.
#[derive(Debug, Args)]
pub struct PurseArgs {
    /// The purse file (redb, created 0600 by `init`).
    #[arg(long, global = true)]
    pub purse: Option<PathBuf>,
    /// The issuer's gateway URL (required by `init`; elsewhere it replaces
    /// the address the purse remembers).
    #[arg(long, global = true)]
    pub issuer: Option<String>,
    #[command(subcommand)]
    pub command: PurseCommand,
}

#[derive(Debug, Subcommand)]
pub enum PurseCommand {
    /// Create the purse: a fresh key pair and the issuer's identity and key.
    Init {
        /// The participant's id (what the issuer registers).
        #[arg(long, value_parser = parse_participant)]
        id: ParticipantId,
        /// Cipher suite of sealed messages.
        #[arg(long, default_value = "aes256")]
        suite: SuiteId,
        /// Size of the participant's RSA key.
        #[arg(long, default_value_t = 2048)]
        rsa_bits: usize,
    },
    /// Register with the issuer: prove the key, keep the certificate.
    Register,
    /// Ask to be enrolled for a role; the issuer's operator approves it.
    Enroll {
        /// purchaser, redeemer or merchant.
        role: Role,
        /// The bank account the role debits or credits.
        #[arg(long, value_parser = parse_account)]
        account: BankAccount,
    },
    /// Buy coins, debited from the bank account.
    Buy {
        /// Coins as COUNTxVALUE,... e.g. 2x2.50,1x1.25,3x2.00.
        spec: String,
        #[arg(long, value_parser = parse_account)]
        account: BankAccount,
        /// Buy without the issuer learning who holds the coins.
        #[arg(long)]
        anonymous: bool,
    },
    /// Pay for an item at a merchant server (making change first if needed).
    Pay {
        /// The merchant server's URL, e.g. http://127.0.0.1:8081.
        merchant: String,
        /// The item's sku on that server.
        sku: String,
    },
    /// Trade coins totalling the spec's amount for coins of the spec.
    Change {
        /// Coins wanted, as COUNTxVALUE,...
        spec: String,
    },
    /// Turn coins back into money at the bank.
    Redeem {
        amount: Amount,
        #[arg(long, value_parser = parse_account)]
        account: BankAccount,
    },
    /// Refresh every expired coin still within its grace period.
    Refresh,
    /// Finish every transaction left journaled by a crash or a lost connection.
    Resume,
    /// What the purse holds, by state.
    Balance,
    /// Every coin with its value, expiry and state.
    Coins,
}

pub fn run(args: PurseArgs) -> anyhow::Result<ExitCode> {
    let path = args
        .purse
        .clone()
        .context("the purse file is needed: --purse FILE")?;
    match command(&path, args.issuer.as_deref(), args.command) {
        // The issuer answered with a verified refusal: the command ran and
        // was told no, which is not a failure to run.
        Err(e) => match e.downcast_ref::<WalletError>() {
            Some(WalletError::Rejected(statement)) => {
                println!(
                    "refused by the issuer ({:?}, statement verified)",
                    statement.reason
                );
                Ok(ExitCode::from(1))
            }
            _ => Err(e),
        },
        ok => ok,
    }
}

fn command(path: &Path, issuer: Option<&str>, command: PurseCommand) -> anyhow::Result<ExitCode> {
    let open = || open_wallet(path, issuer);
    match command {
        PurseCommand::Init {
            id,
            suite,
            rsa_bits,
        } => {
            let url = issuer.context("init needs the issuer's gateway: --issuer URL")?;
            let purse = create_purse(path, url, id, suite, rsa_bits)?;
            println!(
                "purse {} created for {}",
                path.display(),
                purse.profile()?.participant.as_str()
            );
        }
        PurseCommand::Register => {
            let (_, wallet) = open()?;
            wallet.register()?;
            println!("registered: {} (certificate stored)", wallet.id().as_str());
        }
        PurseCommand::Enroll { role, account } => {
            let (_, wallet) = open()?;
            wallet.request_enrollment(role, account)?;
            println!(
                "enrollment as {role} requested; the issuer's operator approves it \
                 (varietycash issuer enroll approve {} {role} --dir DIR)",
                wallet.id().as_str()
            );
        }
        PurseCommand::Buy {
            spec,
            account,
            anonymous,
        } => {
            let spec = parse_spec(&spec)?;
            let (_, wallet) = open()?;
            match wallet.buy(spec, account, anonymous)? {
                PurchaseOutcome::Issued(coins) => {
                    let total = Amount::checked_sum(coins.iter().map(|c| c.value()))?;
                    println!("bought {total} in {} coins", coins.len());
                }
                PurchaseOutcome::Rejected(r) => {
                    println!("refused by the issuer: {:?}", r.reason);
                    return Ok(ExitCode::from(1));
                }
                PurchaseOutcome::Pending(tx) => {
                    println!("not settled yet ({tx}); `purse resume` finishes it");
                    return Ok(ExitCode::from(1));
                }
            }
        }
        PurseCommand::Pay { merchant, sku } => match open()?.1.pay(&merchant, &sku)? {
            PayerOutcome::Paid { receipt_verified } => println!(
                "paid for {sku}; receipt {}",
                if receipt_verified {
                    "verified"
                } else {
                    "not signed"
                }
            ),
            PayerOutcome::Rejected {
                reason, bad_coins, ..
            } => {
                println!(
                    "refused by the issuer ({reason:?}, statement verified); {} coin(s) marked bad",
                    bad_coins.len()
                );
                return Ok(ExitCode::from(1));
            }
        },
        PurseCommand::Change { spec } => {
            let spec = parse_spec(&spec)?;
            let (purse, wallet) = open()?;
            let coins = change(&purse, &wallet, spec)?;
            let values: Vec<String> = coins.iter().map(|c| c.value().to_string()).collect();
            println!("changed into {}", values.join(" "));
        }
        PurseCommand::Redeem { amount, account } => {
            open()?.1.redeem(amount, account)?;
            println!("redeemed {amount}");
        }
        PurseCommand::Refresh => {
            let coins = open()?.1.refresh_expired()?;
            println!("refreshed {} expired coin(s)", coins.len());
        }
        PurseCommand::Resume => {
            let report = open()?.1.resume()?;
            println!(
                "finished {}, still unfinished {}",
                report.finished, report.unfinished
            );
            if report.unfinished > 0 {
                return Ok(ExitCode::from(1));
            }
        }
        PurseCommand::Balance => {
            let b = open_purse(path)?.balance()?;
            println!(
                "available {} ({} coins), pending {} ({}), bad {} ({}), spent coins {}",
                b.available, b.n_available, b.pending, b.n_pending, b.bad, b.n_bad, b.n_spent
            );
        }
        PurseCommand::Coins => {
            // Written, not printed: a listing piped into `head` ends quietly.
            let mut out = std::io::stdout().lock();
            for c in open_purse(path)?.coins()? {
                writeln!(
                    out,
                    "{}  {:>10}  expires at {} (unix)  {}",
                    c.coin.id(),
                    c.coin.value().to_string(),
                    c.coin.body.expiry.0,
                    c.state.name()
                )?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The purse alone, for reading: no issuer needed.
fn open_purse(path: &Path) -> anyhow::Result<Purse> {
    Purse::open(path).with_context(|| format!("opening the purse {}", path.display()))
}

/// Creates a purse with a fresh key and the issuer's identity and key, as
/// its gateway describes them.
pub fn create_purse(
    path: &std::path::Path,
    url: &str,
    id: ParticipantId,
    suite: SuiteId,
    rsa_bits: usize,
) -> anyhow::Result<Purse> {
    if path.exists() {
        bail!("{} exists", path.display());
    }
    let client = IssuerClient::new(url, ClientConfig::default())?;
    let descriptor = client
        .descriptor()
        .with_context(|| format!("asking {url} who the issuer is"))?;
    let profile = PurseProfile::generate(id, suite, rsa_bits).context("generating the key")?;
    Purse::create(
        path,
        &profile,
        Some(&IssuerInfo {
            issuer: descriptor.id_i,
            public_key: descriptor.public_key,
            gateway_url: url.to_owned(),
        }),
    )
    .with_context(|| format!("creating {}", path.display()))
}

/// Coins of `spec` for coins of the same total, changing first if the
/// purse has no exact subset.
fn change(
    purse: &Purse,
    wallet: &Wallet,
    spec: ledger::CoinSpec,
) -> anyhow::Result<Vec<ledger::Coin>> {
    let amount = spec.total()?;
    for _ in 0..CHANGE_ROUNDS_MAX {
        match purse.select(amount, Timestamp::now())? {
            Selection::Exact(coins) => return Ok(wallet.change(coins, spec)?),
            Selection::NeedsChange { give, want } => {
                wallet.change(give, want)?;
            }
            Selection::Insufficient { available, wanted } => {
                bail!("not enough money: {available} available, {wanted} wanted")
            }
        }
    }
    bail!("no exact coins for {amount} after {CHANGE_ROUNDS_MAX} changes")
}
