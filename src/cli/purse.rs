//! `varietycash purse`: a coin holder's purse file driven over HTTP through
//! the gateway's `Wallet`: create it (or restore it from a key backup),
//! back up its keys, register, enroll, buy, pay a merchant, change, redeem,
//! refresh expired coins, refund, finish journaled transactions, and show
//! the balance and the coins.
//!
//! Where the purse lives: `--purse FILE`, or `--dir DIR` (the party's data
//! directory: `DIR/purse.redb` and the configuration `DIR/purse.toml`,
//! which `init` writes: the issuer's URL and a default bank account).
//!
//! The purse file is sealed under a passphrase: `VC_PURSE_PASSPHRASE`, or
//! asked on the terminal (`common::passphrase`). `encrypt` turns a purse of
//! the first, unencrypted format into a sealed one.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use client::{
    ClientConfig, IssuerClient, PaymentExpectation, PurchaseOutcome, RefundOutcome, Wallet,
    WalletError,
};
use ledger::{Amount, BankAccount, ParticipantId, Role};
use protocol::crypto::SuiteId;
use protocol::flows::PayerOutcome;
use purse::{IssuerInfo, Purse, PurseProfile, Selection};
use serde::{Deserialize, Serialize};

use super::common::{
    TransportArgs, finish, open_purse, open_wallet, parse_account, parse_participant, parse_spec,
    progress_bar, read_toml, spinner,
};

/// Rounds of "change, then select again" before giving up.
const CHANGE_ROUNDS_MAX: usize = 4;

/// A coin holder's purse: buy coins, pay merchants, change, redeem.
#[derive(Debug, Args)]
pub struct PurseArgs {
    /// The purse file (redb, created 0600 by `init`).
    #[arg(long, global = true, conflicts_with = "dir")]
    pub purse: Option<PathBuf>,
    /// The party's data directory: DIR/purse.redb and DIR/purse.toml.
    #[arg(long, global = true)]
    pub dir: Option<PathBuf>,
    /// The issuer's gateway URL (required by `init`; elsewhere it replaces
    /// the address the purse remembers).
    #[arg(long, global = true)]
    pub issuer: Option<String>,
    /// TLS: the issuer's authority certificate (`init --dir` keeps a copy,
    /// DIR/issuer-ca.pem, named in purse.toml), or plain HTTP.
    #[command(flatten)]
    pub transport: TransportArgs,
    #[command(subcommand)]
    pub command: PurseCommand,
}

#[derive(Debug, Subcommand)]
pub enum PurseCommand {
    /// Create the purse: a fresh key pair and the issuer's identity and key
    /// (or, with --restore, the identity and keys of a key backup).
    Init {
        /// The participant's id (what the issuer registers): a name or a
        /// pseudonym of the participant's choosing.
        #[arg(long, value_parser = parse_participant, required_unless_present = "restore")]
        id: Option<ParticipantId>,
        /// Make an empty purse with the identity and keys of this backup
        /// (written by `purse backup`), e.g. after the purse file was lost;
        /// `purse refund` then brings its coins back.
        #[arg(long, conflicts_with = "id")]
        restore: Option<PathBuf>,
        /// The default bank account of `enroll`, `buy` and `redeem` (kept in
        /// DIR/purse.toml; with --dir only).
        #[arg(long, value_parser = parse_account)]
        account: Option<BankAccount>,
        /// Cipher suite of sealed messages and of the purse's key
        /// (default: the issuer's, as its gateway describes it).
        #[arg(long)]
        suite: Option<SuiteId>,
        /// Size of the participant's RSA key (suites aes256 and tdes):
        /// 2048 (the default) or 3072.
        #[arg(long, value_parser = super::common::parse_rsa_bits)]
        rsa_bits: Option<usize>,
    },
    /// Write the purse's identity, keys, certificate and issuer record to
    /// FILE (created 0600, never overwritten): what `init --restore` needs
    /// to make the purse again if its file is lost. Keep it offline.
    Backup {
        /// The backup file to create.
        file: PathBuf,
    },
    /// Make the purse (at --purse or --dir) from a purse file of the first,
    /// unencrypted format, its records sealed under the passphrase. The old
    /// file still holds keys and coins in the clear: delete it afterwards.
    Encrypt {
        /// The unencrypted purse file.
        #[arg(long)]
        from: PathBuf,
    },
    /// Register with the issuer: prove the key, keep the certificate.
    Register,
    /// Replace the participant's key with a fresh one: the request is
    /// signed by the current key and proves the new one; the purse keeps
    /// the new key once the issuer certified it. A run cut short sends the
    /// same request again. Make a new `backup` afterwards.
    ChangeKey {
        /// Size of the new RSA key (suites aes256 and tdes): 2048 (the
        /// default) or 3072.
        #[arg(long, value_parser = super::common::parse_rsa_bits)]
        rsa_bits: Option<usize>,
    },
    /// Ask to be enrolled for a role; the issuer's operator approves it.
    Enroll {
        /// purchaser, redeemer or merchant.
        role: Role,
        /// The bank account the role debits or credits (default: purse.toml's).
        #[arg(long, value_parser = parse_account)]
        account: Option<BankAccount>,
    },
    /// Buy coins, debited from the bank account.
    Buy {
        /// Coins as COUNTxVALUE,... e.g. 2x2.50,1x1.25,3x2.00.
        spec: String,
        /// The account debited (default: purse.toml's).
        #[arg(long, value_parser = parse_account)]
        account: Option<BankAccount>,
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
        /// The merchant's participant id: an invoice from anyone else is
        /// refused, whoever answers at the URL.
        #[arg(long, value_parser = parse_participant)]
        payee: Option<ParticipantId>,
        /// The most to pay for the item: a dearer invoice is refused.
        #[arg(long)]
        max: Option<Amount>,
    },
    /// Trade coins totalling the spec's amount for coins of the spec.
    Change {
        /// Coins wanted, as COUNTxVALUE,...
        spec: String,
    },
    /// Turn coins back into money at the bank.
    Redeem {
        amount: Amount,
        /// The account credited (default: purse.toml's).
        #[arg(long, value_parser = parse_account)]
        account: Option<BankAccount>,
    },
    /// Refresh every expired coin still within its grace period.
    Refresh,
    /// Give back every coin of a key epoch the issuer revoked (its key is
    /// suspected compromised) for fresh coins of a good epoch, or with
    /// --to-account for a credit to that enrolled account.
    Recoup {
        /// The revoked key epoch, as the issuer's operator announced it;
        /// without it, every epoch the issuer lists as revoked
        /// (`GET /v1/epochs/revoked`) of which the purse holds coins.
        #[arg(long)]
        epoch: Option<u32>,
        /// Credit this enrolled redeem account instead of taking fresh coins.
        #[arg(long, value_parser = parse_account)]
        to_account: Option<BankAccount>,
    },
    /// Ask the issuer to revoke every unspent coin it issued to this
    /// participant (not anonymous purchases) and send replacements: after a
    /// purse file was lost and restored with `init --restore`, or copied.
    Refund,
    /// Finish every transaction left journaled by a crash or a lost connection.
    Resume,
    /// What the purse holds, by state.
    Balance,
    /// Every coin with its value, expiry and state.
    Coins,
    /// Serve the purse as a web page on 127.0.0.1, for this user's browser:
    /// prints a link that works once (it sets the page's session cookie),
    /// and serves until Ctrl-C or SIGTERM.
    Ui {
        /// Where to listen: a loopback address (port 0: a free port).
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: std::net::SocketAddr,
    },
    /// Ask the issuer the status of the coins the purse holds (showing
    /// them whole: the tags prove possession); the answer is signed, and
    /// checked before it is shown. A coin the issuer says spent was spent
    /// from a copy of this purse (or a restored backup): the exit status is
    /// then 1.
    Status,
}

/// The purse's file inside its data directory.
pub const PURSE_FILE: &str = "purse.redb";
/// The purse's configuration inside its data directory.
pub const CONFIG_FILE: &str = "purse.toml";

/// A purse's configuration, DIR/purse.toml. Every field is optional; flags
/// win over it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurseFile {
    /// The issuer's gateway URL (the purse also remembers the last one used).
    pub issuer: Option<String>,
    /// The default bank account of `enroll`, `buy` and `redeem`.
    pub account: Option<String>,
    /// The issuer's TLS authority certificate, relative to DIR: the one
    /// root trusted for the issuer's gateway and merchant servers.
    #[serde(default)]
    pub issuer_cert: Option<PathBuf>,
}

/// The copy of the issuer's TLS authority certificate `init --dir` keeps.
pub const ISSUER_CERT_FILE: &str = "issuer-ca.pem";

/// Where a purse command finds its purse and its configuration.
struct Place {
    purse: PathBuf,
    /// The data directory, with --dir.
    dir: Option<PathBuf>,
    /// DIR/purse.toml with --dir; none with --purse.
    config_path: Option<PathBuf>,
    config: PurseFile,
}

impl Place {
    fn of(args: &PurseArgs) -> anyhow::Result<Place> {
        match (&args.dir, &args.purse) {
            (Some(dir), _) => {
                let config_path = dir.join(CONFIG_FILE);
                let config = if config_path.exists() {
                    read_toml(&config_path)?
                } else {
                    PurseFile::default()
                };
                Ok(Place {
                    purse: dir.join(PURSE_FILE),
                    dir: Some(dir.clone()),
                    config_path: Some(config_path),
                    config,
                })
            }
            (None, Some(file)) => Ok(Place {
                purse: file.clone(),
                dir: None,
                config_path: None,
                config: PurseFile::default(),
            }),
            (None, None) => bail!("where is the purse? --dir DIR or --purse FILE"),
        }
    }

    /// The issuer certificate purse.toml names, as a path.
    fn configured_cert(&self) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        self.config.issuer_cert.as_ref().map(|c| dir.join(c))
    }

    fn account(&self, flag: Option<BankAccount>) -> anyhow::Result<BankAccount> {
        match (flag, &self.config.account) {
            (Some(account), _) => Ok(account),
            (None, Some(account)) => {
                parse_account(account).context("the configuration's bank account")
            }
            (None, None) => {
                bail!("which bank account? --account ACCOUNT (or `account` in purse.toml)")
            }
        }
    }
}

pub fn run(args: PurseArgs) -> anyhow::Result<ExitCode> {
    let place = Place::of(&args)?;
    let issuer = args.issuer.clone().or_else(|| place.config.issuer.clone());
    match command(&place, issuer.as_deref(), &args.transport, args.command) {
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
            // The merchant gave no proof: the coins came back through the
            // issuer (or its statement shows the merchant was paid).
            Some(e @ (WalletError::Unproven { .. } | WalletError::Invoice(_))) => {
                println!("{e}");
                Ok(ExitCode::from(1))
            }
            _ => Err(e),
        },
        ok => ok,
    }
}

fn command(
    place: &Place,
    issuer: Option<&str>,
    transport: &TransportArgs,
    command: PurseCommand,
) -> anyhow::Result<ExitCode> {
    let path = place.purse.as_path();
    // Asked for only by the commands that go on the network.
    let client = || transport.client_config(place.configured_cert().as_deref());
    let open = || open_wallet(path, issuer, client()?);
    match command {
        PurseCommand::Init {
            id,
            restore,
            account,
            suite,
            rsa_bits,
        } => {
            // A missing directory is made 0700; an existing one not named by
            // --dir (a home directory, say) is the user's and left as it is.
            if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty())
                && (place.config_path.is_some() || !dir.exists())
            {
                ledger::private_file::create_private_dir(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            let purse = match (id, restore) {
                (_, Some(backup)) => {
                    let passphrase = super::common::passphrase(false)?;
                    let purse = Purse::restore(path, &backup, passphrase).with_context(|| {
                        format!("restoring {} from {}", path.display(), backup.display())
                    })?;
                    if let Some(url) = issuer {
                        let mut info =
                            purse.issuer()?.context("the backup has no issuer record")?;
                        info.gateway_url = url.to_owned();
                        purse.set_issuer(&info)?;
                    }
                    println!(
                        "purse {} restored for {} (no coins: `purse refund` asks the issuer for them)",
                        path.display(),
                        purse.profile()?.participant.as_str()
                    );
                    purse
                }
                (Some(id), None) => {
                    let url = issuer.context("init needs the issuer's gateway: --issuer URL")?;
                    let purse = create_purse(path, url, &client()?, id, suite, rsa_bits)?;
                    println!(
                        "purse {} created for {}",
                        path.display(),
                        purse.profile()?.participant.as_str()
                    );
                    purse
                }
                (None, None) => bail!("init needs --id ID or --restore FILE"),
            };
            if let Some(config_path) = &place.config_path
                && !config_path.exists()
            {
                let issuer_cert = match (&transport.issuer_cert, &place.dir) {
                    (Some(cert), Some(dir)) if !transport.insecure_http => {
                        std::fs::copy(cert, dir.join(ISSUER_CERT_FILE)).with_context(|| {
                            format!("copying {} into {}", cert.display(), dir.display())
                        })?;
                        Some(PathBuf::from(ISSUER_CERT_FILE))
                    }
                    _ => None,
                };
                let file = PurseFile {
                    issuer: purse.issuer()?.map(|i| i.gateway_url),
                    account: account.map(|a| a.as_str().to_owned()),
                    issuer_cert,
                };
                write_config(config_path, &file)?;
                println!("configuration written to {}", config_path.display());
            }
        }
        PurseCommand::Encrypt { from } => {
            let key = super::common::new_purse_key()?;
            let purse = Purse::encrypt_unencrypted(&from, path, key)
                .with_context(|| format!("sealing {} into {}", from.display(), path.display()))?;
            println!(
                "purse {} made from {} ({} coins), sealed under its passphrase; \
                 {} still holds keys and coins in the clear: delete it and its copies",
                path.display(),
                from.display(),
                purse.coins()?.len(),
                from.display()
            );
        }
        PurseCommand::Backup { file } => {
            open_purse(path)?
                .backup_keys(&file)
                .with_context(|| format!("writing the key backup {}", file.display()))?;
            println!(
                "identity and keys written to {} (mode 0600); keep it apart from the purse",
                file.display()
            );
        }
        PurseCommand::Register => {
            let (_, wallet) = open()?;
            wallet.register()?;
            println!("registered: {} (certificate stored)", wallet.id().as_str());
        }
        PurseCommand::ChangeKey { rsa_bits } => {
            let (_, wallet) = open()?;
            wallet
                .change_key(super::common::rsa_bits_for(wallet.suite(), rsa_bits)?)
                .context(
                    "changing the key (if the issuer did not answer, run the command again: it \
                 sends the same request)",
                )?;
            println!(
                "key changed: the issuer certified {}'s new key (the old key opens nothing \
                 any more; make a new backup)",
                wallet.id().as_str()
            );
        }
        PurseCommand::Enroll { role, account } => {
            let account = place.account(account)?;
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
            let account = place.account(account)?;
            let (_, wallet) = open()?;
            let bar = spinner(&format!("buying {} coins", spec.n_coins()));
            let outcome = wallet.buy(spec, account, anonymous);
            finish(bar);
            match outcome? {
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
        PurseCommand::Pay {
            merchant,
            sku,
            payee,
            max,
        } => {
            let expected = PaymentExpectation {
                payee,
                amount_max: max,
            };
            match open()?.1.pay_expecting(&merchant, &sku, &expected)? {
                PayerOutcome::Paid { .. } => {
                    println!("paid for {sku}; the merchant's receipt verified")
                }
                PayerOutcome::Rejected {
                    reason, bad_coins, ..
                } => {
                    println!(
                        "refused by the issuer ({reason:?}, statement verified); {} coin(s) \
                         marked bad, the others reclaimed through the issuer",
                        bad_coins.len()
                    );
                    return Ok(ExitCode::from(1));
                }
            }
        }
        PurseCommand::Change { spec } => {
            let spec = parse_spec(&spec)?;
            let (purse, wallet) = open()?;
            let coins = change(&purse, &wallet, spec)?;
            let values: Vec<String> = coins.iter().map(|c| c.value().to_string()).collect();
            println!("changed into {}", values.join(" "));
        }
        PurseCommand::Redeem { amount, account } => {
            let account = place.account(account)?;
            open()?.1.redeem(amount, account)?;
            println!("redeemed {amount}");
        }
        PurseCommand::Recoup { epoch, to_account } => {
            let credited = to_account.is_some();
            let wallet = open()?.1;
            let (recouped, n_fresh) = match epoch {
                Some(epoch) => {
                    let epoch = ledger::KeyEpoch(epoch);
                    let (value, coins) = wallet.recoup(epoch, to_account)?;
                    (vec![(epoch, value)], coins.len())
                }
                None => {
                    let (recouped, coins) = wallet.recoup_revoked(to_account)?;
                    (recouped, coins.len())
                }
            };
            if recouped.is_empty() {
                println!("no coin of a revoked key epoch to recoup");
            }
            for (epoch, value) in &recouped {
                println!("recouped {value} of key epoch {}", epoch.0);
            }
            if credited {
                println!("credited to the account");
            } else if !recouped.is_empty() {
                println!("{n_fresh} fresh coin(s)");
            }
        }
        PurseCommand::Refresh => {
            let coins = open()?.1.refresh_expired()?;
            println!("refreshed {} expired coin(s)", coins.len());
        }
        PurseCommand::Refund => match open()?.1.refund()? {
            RefundOutcome::Replaced { revoked, coins } => {
                let total = Amount::checked_sum(coins.iter().map(|c| c.value()))?;
                println!(
                    "refunded: {revoked} coin(s) revoked, {total} back in {} new coin(s)",
                    coins.len()
                );
            }
            RefundOutcome::Rejected(r) => {
                println!("refused by the issuer ({:?}, statement verified)", r.reason);
                return Ok(ExitCode::from(1));
            }
        },
        PurseCommand::Resume => {
            let (_, wallet) = open()?;
            let bar = progress_bar(wallet.purse().in_flight()?.len() as u64, "resuming");
            let report = wallet.resume_with(|_| {
                if let Some(bar) = &bar {
                    bar.inc(1);
                }
            })?;
            finish(bar);
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
        PurseCommand::Status => return coin_status(&open()?.1),
        PurseCommand::Ui { listen } => {
            let (_, wallet) = open()?;
            let ui = client::purse_ui::serve_purse_ui(
                wallet,
                client::purse_ui::PurseUiConfig {
                    bind: listen,
                    default_account: place.account(None).ok(),
                    client: client()?,
                },
            )
            .with_context(|| format!("serving the purse page on {listen}"))?;
            println!("purse page at {} (Ctrl-C to stop)", ui.origin);
            println!("open (works once): {}", ui.login_url);
            std::io::stdout().flush()?;
            super::common::wait_for_stop_signal()?;
            ui.server.stop().context("stopping the purse page")?;
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

/// `purse status`: the held coins (available or pending) in batches of
/// [`HELD_COIN_STATUS_COINS_MAX`], each answer's signature and serials
/// checked under the issuer's key. The purse is not changed: a status is
/// advice, and only a refused spend or a refund moves its coins.
fn coin_status(wallet: &client::Wallet) -> anyhow::Result<ExitCode> {
    use protocol::wire::status::{CoinState, HELD_COIN_STATUS_COINS_MAX, HeldCoinStatusQuery};
    let purse = wallet.purse();
    let info = purse
        .issuer()?
        .context("the purse has no issuer record: run `purse init` first")?;
    let pk_i = info.key()?;
    let held: Vec<_> = purse
        .coins()?
        .into_iter()
        .filter(|c| matches!(c.state.name(), "available" | "pending"))
        .collect();
    let mut spent = 0usize;
    let mut out = std::io::stdout().lock();
    for batch in held.chunks(HELD_COIN_STATUS_COINS_MAX) {
        let query = HeldCoinStatusQuery {
            coins: protocol::wire::BoundedVec::new(batch.iter().map(|c| c.coin).collect())
                .map_err(|_| anyhow::anyhow!("a batch of more than the query may hold"))?,
        };
        let answer = wallet
            .issuer()
            .held_coin_status(&query)
            .context("asking the issuer the coins' status")?;
        let entries = protocol::flows::verify_coin_status(&pk_i, &query.serials()?, &answer)
            .context("the issuer's coin status answer does not check")?;
        for (stored, entry) in batch.iter().zip(entries) {
            let said = match entry.state {
                CoinState::Unspent => "unspent",
                CoinState::InUse => "in use",
                CoinState::Spent => {
                    spent += 1;
                    "SPENT (a copy of this coin was spent elsewhere)"
                }
                CoinState::Unknown => "unknown to the issuer",
            };
            writeln!(
                out,
                "{}  {:>10}  purse: {:<9}  issuer: {said}",
                stored.coin.id(),
                stored.coin.value().to_string(),
                stored.state.name()
            )?;
        }
    }
    writeln!(
        out,
        "{} coin(s) checked, {spent} spent elsewhere; answers signed by the issuer, signature verified",
        held.len()
    )?;
    Ok(if spent == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn write_config(path: &Path, file: &PurseFile) -> anyhow::Result<()> {
    let text = format!(
        "# VarietyCash purse, written by `varietycash purse init`.\n\
         # issuer: the issuer's gateway; account: the default bank account\n\
         # of `enroll`, `buy` and `redeem`. Flags win over both.\n{}",
        toml::to_string(file).context("writing the configuration")?
    );
    ledger::private_file::write_private(path, text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// Creates a purse with a fresh key and the issuer's identity and key, as
/// its gateway describes them.
pub fn create_purse(
    path: &std::path::Path,
    url: &str,
    client: &ClientConfig,
    id: ParticipantId,
    suite: Option<SuiteId>,
    rsa_bits: Option<usize>,
) -> anyhow::Result<Purse> {
    if path.exists() {
        bail!("{} exists", path.display());
    }
    let client = IssuerClient::new(url, client.clone())?;
    let descriptor = client
        .descriptor()
        .with_context(|| format!("asking {url} who the issuer is"))?;
    let suite = suite.unwrap_or(descriptor.suite);
    // A purse's envelopes go to the issuer's key: a suite that key cannot
    // serve would make every request fail later.
    protocol::crypto::PublicKey::from_ledger(&descriptor.public_key)
        .context("the issuer's public key")?
        .check_suite(suite)
        .with_context(|| format!("the issuer's suite is {}", descriptor.suite))?;
    let rsa_bits = super::common::rsa_bits_for(suite, rsa_bits)?;
    let what = match suite.key_kind() {
        protocol::crypto::KeyKind::Rsa => format!("an RSA-{rsa_bits} key"),
        protocol::crypto::KeyKind::Ed25519X25519 => "an Ed25519/X25519 key".to_owned(),
    };
    let bar = super::common::spinner(&format!("generating {what}"));
    let profile = PurseProfile::generate(id, suite, rsa_bits);
    super::common::finish(bar);
    let profile = profile.context("generating the key")?;
    Purse::create(
        path,
        &profile,
        Some(&IssuerInfo {
            issuer: descriptor.id_i,
            public_key: descriptor.public_key,
            gateway_url: url.to_owned(),
        }),
        super::common::new_purse_key()?,
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
        match purse.select(amount, wallet.now())? {
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
