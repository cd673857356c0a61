//! `varietycash merchant`: a shop. `init` creates the merchant's purse,
//! registers it and asks to be enrolled as a merchant; `serve` runs the
//! merchant server over that purse with a catalog from flags or a TOML file;
//! `cash-out` has the issuer pay the aggregated balance to the shop's
//! enrolled redeem account.
//!
//! Where the shop lives: `--purse FILE` (and `--catalog FILE`), or `--dir
//! DIR`, the party's data directory: `DIR/purse.redb` and the configuration
//! `DIR/merchant.toml` (shop name, listen address, collection, redeem
//! account, items), which `init` writes with defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use client::{CatalogItem, CollectOption, MerchantConfig, ScrapeToken, ServerConfig, TlsIdentity};
use ledger::{Amount, BankAccount, ParticipantId, Role};
use protocol::crypto::SuiteId;
use protocol::flows::cash_out::{cash_out_request, verify_cash_out_receipt};
use protocol::wire::cash_out::{CashOutAmount, CashOutId};
use serde::Deserialize;

use super::common::{
    TransportArgs, open_wallet, parse_account, parse_participant, read_toml, wait_for_stop_signal,
};

/// Run a shop: its purse, its enrollment, its merchant server.
#[derive(Debug, Args)]
pub struct MerchantArgs {
    #[command(subcommand)]
    pub command: MerchantCommand,
}

#[derive(Debug, Subcommand)]
pub enum MerchantCommand {
    /// Create the merchant's purse, register, and ask to be enrolled.
    Init(InitArgs),
    /// Serve the shop until Ctrl-C or SIGTERM.
    Serve(ServeArgs),
    /// Have the issuer pay the aggregated balance (all, or AMOUNT) to the
    /// shop's enrolled redeem account.
    CashOut(CashOutArgs),
    /// Replace the shop's key with a fresh one, signed by the current key;
    /// the issuer certifies the new key and forgets the old one.
    ChangeKey(ChangeKeyArgs),
}

#[derive(Debug, Args)]
pub struct ChangeKeyArgs {
    /// The merchant's purse file, as `init` made it.
    #[arg(long, conflicts_with = "dir", required_unless_present = "dir")]
    pub purse: Option<PathBuf>,
    /// The shop's data directory, as `init --dir` made it.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// The issuer's gateway URL, if not the one the purse remembers.
    #[arg(long)]
    pub issuer: Option<String>,
    /// Size of the new RSA key (suites aes256 and tdes): 2048 (the
    /// default) or 3072.
    #[arg(long, value_parser = super::common::parse_rsa_bits)]
    pub rsa_bits: Option<usize>,
    /// TLS towards the issuer (default: merchant.toml's issuer_cert).
    #[command(flatten)]
    pub transport: TransportArgs,
}

#[derive(Debug, Args)]
pub struct CashOutArgs {
    /// How much to cash out (e.g. 2.50); default: the whole balance.
    pub amount: Option<Amount>,
    /// The merchant's purse file, as `init` made it.
    #[arg(long, conflicts_with = "dir", required_unless_present = "dir")]
    pub purse: Option<PathBuf>,
    /// The shop's data directory, as `init --dir` made it.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// The issuer's gateway URL, if not the one the purse remembers.
    #[arg(long)]
    pub issuer: Option<String>,
    /// TLS towards the issuer (default: merchant.toml's issuer_cert).
    #[command(flatten)]
    pub transport: TransportArgs,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The merchant's purse file (created).
    #[arg(long, conflicts_with = "dir", required_unless_present = "dir")]
    pub purse: Option<PathBuf>,
    /// The shop's data directory (created): DIR/purse.redb, DIR/merchant.toml.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// The merchant's participant id.
    #[arg(long, value_parser = parse_participant)]
    pub id: ParticipantId,
    /// The issuer's gateway URL.
    #[arg(long)]
    pub issuer: String,
    /// The merchant's bank account (for redeemed payments).
    #[arg(long, value_parser = parse_account)]
    pub account: BankAccount,
    /// Also ask to be enrolled as a redeemer (to take bank credits).
    #[arg(long)]
    pub redeemer: bool,
    /// Cipher suite of the shop's key and messages (default: the issuer's).
    #[arg(long)]
    pub suite: Option<SuiteId>,
    /// Size of the shop's RSA key (suites aes256 and tdes): 2048 (the
    /// default) or 3072.
    #[arg(long, value_parser = super::common::parse_rsa_bits)]
    pub rsa_bits: Option<usize>,
    /// TLS towards the issuer (with --dir, a copy of the certificate is
    /// kept as DIR/issuer-ca.pem and named in merchant.toml).
    #[command(flatten)]
    pub transport: TransportArgs,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The merchant's purse file, as `init` made it.
    #[arg(long, conflicts_with = "dir", required_unless_present = "dir")]
    pub purse: Option<PathBuf>,
    /// The shop's data directory, as `init --dir` made it (its
    /// merchant.toml is the catalog unless --catalog says otherwise).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// The issuer's gateway URL, if not the one the purse remembers.
    #[arg(long)]
    pub issuer: Option<String>,
    /// A validator node of the issuer (`issuer serve --role validator`)
    /// that takes the shop's payments (repeat: they are used in turn, and
    /// an unreachable one is passed over); default: the issuer's gateway.
    #[arg(long = "validator")]
    pub validators: Vec<String>,
    /// Where to listen (default: the catalog's `listen`, else 127.0.0.1:8081).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// The shop's name on its page.
    #[arg(long, default_value = "VarietyCash shop")]
    pub name: String,
    /// An item: SKU=PRICE or SKU=PRICE=TITLE (repeat for more).
    #[arg(long = "item", value_parser = parse_item)]
    pub items: Vec<CatalogItem>,
    /// A catalog file (TOML: shop_name, listen, collect, redeem_account,
    /// [[item]] sku, title, price, collect); its items come after the flags'.
    #[arg(long)]
    pub catalog: Option<PathBuf>,
    /// What the shop takes for coins: refresh, aggregate or redeem.
    #[arg(long, default_value = "refresh")]
    pub collect: String,
    /// The enrolled account redeemed payments are credited to.
    #[arg(long, value_parser = parse_account)]
    pub redeem_account: Option<BankAccount>,
    /// The shop's TLS certificate (PEM), issued by the issuer's authority
    /// (`varietycash issuer tls-cert`); default: the catalog's `tls_cert`.
    #[arg(long)]
    pub tls_cert: Option<PathBuf>,
    /// Its private key (PEM, 0600); default: the catalog's `tls_key`.
    #[arg(long)]
    pub tls_key: Option<PathBuf>,
    /// Open (unpaid) orders one client address may hold at once; raise it
    /// for a shop behind a reverse proxy, where every payer arrives from
    /// the proxy's address.
    #[arg(long, default_value_t = client::constants::ORDERS_OPEN_PER_CLIENT_MAX)]
    pub open_orders_per_client: usize,
    /// TLS towards the issuer; `--insecure-http` also serves the shop over
    /// plain HTTP.
    #[command(flatten)]
    pub transport: TransportArgs,
}

/// A catalog file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    shop_name: Option<String>,
    listen: Option<SocketAddr>,
    collect: Option<String>,
    redeem_account: Option<String>,
    /// The issuer's TLS authority certificate, relative to the file.
    issuer_cert: Option<PathBuf>,
    /// The shop's TLS certificate and key, relative to the file.
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    /// The bearer token `GET /metrics` requires (none: it answers nobody).
    metrics_token: Option<String>,
    #[serde(default)]
    item: Vec<CatalogFileItem>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFileItem {
    sku: String,
    title: Option<String>,
    price: String,
    collect: Option<String>,
}

fn parse_item(s: &str) -> Result<CatalogItem, String> {
    let mut parts = s.splitn(3, '=');
    let sku = parts.next().unwrap_or_default().trim();
    let price = parts
        .next()
        .ok_or_else(|| format!("`{s}` is not SKU=PRICE[=TITLE]"))?;
    let price: Amount = price
        .trim()
        .parse()
        .map_err(|e| format!("`{price}` is not a price: {e}"))?;
    let title = parts.next().unwrap_or(sku).trim();
    if !client::merchant::is_valid_sku(sku) {
        return Err(format!("`{sku}` is not a sku (letters, digits, - and _)"));
    }
    Ok(CatalogItem {
        sku: sku.to_owned(),
        title: title.to_owned(),
        price,
        collect: None,
    })
}

fn parse_collect(s: &str, account: Option<&BankAccount>) -> anyhow::Result<CollectOption> {
    match s {
        "refresh" => Ok(CollectOption::Refresh),
        "aggregate" => Ok(CollectOption::Aggregate),
        "redeem" => Ok(CollectOption::Redeem {
            bank_account: account
                .cloned()
                .context("redeem needs the account: --redeem-account (or redeem_account)")?,
        }),
        other => bail!("`{other}` is not refresh, aggregate or redeem"),
    }
}

pub fn run(args: MerchantArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        MerchantCommand::Init(a) => init(a),
        MerchantCommand::Serve(a) => serve(a),
        MerchantCommand::CashOut(a) => cash_out(a),
        MerchantCommand::ChangeKey(a) => change_key(a),
    }
}

/// The merchant's configuration inside its data directory.
pub const CONFIG_FILE: &str = "merchant.toml";
/// Where a shop listens unless told otherwise.
const DEFAULT_LISTEN: &str = "127.0.0.1:8081";

/// The purse file: `--purse FILE`, or DIR/purse.redb.
fn purse_path(purse: Option<&Path>, dir: Option<&Path>) -> anyhow::Result<PathBuf> {
    match (purse, dir) {
        (Some(file), _) => Ok(file.to_path_buf()),
        (None, Some(dir)) => Ok(dir.join(super::purse::PURSE_FILE)),
        (None, None) => bail!("where is the shop? --dir DIR or --purse FILE"),
    }
}

fn init(args: InitArgs) -> anyhow::Result<ExitCode> {
    let purse_file = purse_path(args.purse.as_deref(), args.dir.as_deref())?;
    if let Some(dir) = &args.dir {
        ledger::private_file::create_private_dir(dir)
            .with_context(|| format!("creating {}", dir.display()))?;
    }
    let client = args.transport.client_config(None)?;
    super::purse::create_purse(
        &purse_file,
        &args.issuer,
        &client,
        args.id,
        args.suite,
        args.rsa_bits,
    )?;
    let (_, wallet) = open_wallet(&purse_file, None, client)?;
    wallet.register().context("registering")?;
    let mut roles = vec![Role::Merchant];
    if args.redeemer {
        roles.push(Role::Redeemer);
    }
    for role in roles {
        wallet
            .request_enrollment(role, args.account.clone())
            .with_context(|| format!("asking to be enrolled as {role}"))?;
        println!(
            "enrollment as {role} requested; approve with: varietycash issuer enroll approve {} {role} --dir ISSUER_DIR",
            wallet.id().as_str()
        );
    }
    if let Some(dir) = &args.dir {
        let path = dir.join(CONFIG_FILE);
        if !path.exists() {
            let tls = match &args.transport.issuer_cert {
                Some(cert) if !args.transport.insecure_http => {
                    let copy = dir.join(super::purse::ISSUER_CERT_FILE);
                    std::fs::copy(cert, &copy)
                        .with_context(|| format!("copying {}", cert.display()))?;
                    format!(
                        "# TLS: the issuer's authority (pinned), and the shop's certificate\n\
                         # and key from `varietycash issuer tls-cert`.\n\
                         issuer_cert = \"{}\"\n\
                         # tls_cert = \"tls.pem\"\n# tls_key = \"tls.key\"\n\
                         # The bearer token GET /metrics requires (none: it answers nobody).\n\
                         # metrics_token = \"...\"\n",
                        super::purse::ISSUER_CERT_FILE
                    )
                }
                _ => String::new(),
            };
            let text = format!(
                "# VarietyCash shop, written by `varietycash merchant init`.\n\
                 shop_name = \"{}\"\n\
                 listen = \"{DEFAULT_LISTEN}\"\n{tls}\
                 # What the shop takes for coins: refresh, aggregate or redeem.\n\
                 collect = \"refresh\"\n\
                 redeem_account = \"{}\"\n\n\
                 # One block per item; collect is optional.\n\
                 # [[item]]\n# sku = \"book\"\n# title = \"A book\"\n# price = \"5.00\"\n",
                wallet.id().as_str(),
                args.account.as_str()
            );
            ledger::private_file::write_private(&path, text.as_bytes())
                .with_context(|| format!("writing {}", path.display()))?;
            println!(
                "configuration written to {} (add items there)",
                path.display()
            );
        }
    }
    println!("merchant purse {} ready", purse_file.display());
    Ok(ExitCode::SUCCESS)
}

fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let purse_file = purse_path(args.purse.as_deref(), args.dir.as_deref())?;
    let config = merchant_config(&args)?;
    let (purse, _) = open_wallet(&purse_file, args.issuer.as_deref(), config.client.clone())?;
    if config.catalog.is_empty() {
        bail!("nothing to sell: give --item SKU=PRICE or --catalog FILE");
    }
    // A panic anywhere in the server (a poisoned lock over its orders
    // among them) means its memory is not trusted: exit, and the restart
    // finishes every journaled collection.
    actors::FailStop::new(actors::FailStopPolicy::ExitProcess).guard_whole_process();
    let (server, owner_link) = client::merchant::serve_merchant_via_validators(
        &config,
        purse,
        client::merchant::ClientLimits {
            orders_open_max: args.open_orders_per_client,
            ..Default::default()
        },
        &args.validators,
    )
    .with_context(|| format!("serving on {}", config.server.bind))?;
    println!(
        "{} serving {} item(s) at {} (Ctrl-C to stop)",
        config.shop_name,
        config.catalog.len(),
        server.url()
    );
    println!("the merchant's own page (this link works once): {owner_link}");
    wait_for_stop_signal()?;
    server.stop().context("stopping the merchant server")?;
    println!("merchant stopped");
    Ok(ExitCode::SUCCESS)
}

/// Where a cash-out waits for its receipt: written before the request is
/// sent, removed once the issuer answers it, so a run cut short (a crash, a
/// lost answer) sends the same request id again and is paid once.
fn pending_cash_out_path(purse_file: &Path) -> PathBuf {
    let mut name = purse_file.as_os_str().to_owned();
    name.push(".cash-out-pending");
    PathBuf::from(name)
}

fn write_pending_cash_out(
    path: &Path,
    id: &CashOutId,
    amount: &CashOutAmount,
) -> anyhow::Result<()> {
    let amount = match amount {
        CashOutAmount::All => "all".to_owned(),
        CashOutAmount::Exactly(a) => a.to_string(),
    };
    ledger::private_file::write_private(path, format!("{} {amount}\n", id.to_hex()).as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// The pending cash-out in `path`, if any.
fn read_pending_cash_out(path: &Path) -> anyhow::Result<Option<(CashOutId, CashOutAmount)>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let bad = || anyhow::anyhow!("{} is not a pending cash-out (ID AMOUNT)", path.display());
    let (id, amount) = text.trim().split_once(' ').ok_or_else(bad)?;
    // Hex digits only (`from_str_radix` would also take a sign).
    let mut bytes = [0u8; 16];
    hex::decode_to_slice(id, &mut bytes).map_err(|_| bad())?;
    let amount = match amount {
        "all" => CashOutAmount::All,
        a => CashOutAmount::Exactly(a.parse().map_err(|_| bad())?),
    };
    Ok(Some((CashOutId(bytes), amount)))
}

fn change_key(args: ChangeKeyArgs) -> anyhow::Result<ExitCode> {
    let purse_file = purse_path(args.purse.as_deref(), args.dir.as_deref())?;
    let issuer_cert = match &args.dir {
        Some(dir) if dir.join(CONFIG_FILE).exists() => {
            let file: CatalogFile = read_toml(&dir.join(CONFIG_FILE))?;
            file.issuer_cert.map(|c| dir.join(c))
        }
        _ => None,
    };
    let client = args.transport.client_config(issuer_cert.as_deref())?;
    let (_, wallet) = open_wallet(&purse_file, args.issuer.as_deref(), client)
        .context("opening the shop's purse (if its server is running, stop it first)")?;
    let cert = wallet
        .change_key(super::common::rsa_bits_for(wallet.suite(), args.rsa_bits)?)
        .context(
            "changing the shop's key (if the issuer did not answer, run the command again: it \
         sends the same request)",
        )?;
    println!(
        "key changed: the issuer certified the shop's new key for {} (the old key opens \
         nothing any more; make a new key backup)",
        cert.id.as_str()
    );
    Ok(ExitCode::SUCCESS)
}

fn cash_out(args: CashOutArgs) -> anyhow::Result<ExitCode> {
    let purse_file = purse_path(args.purse.as_deref(), args.dir.as_deref())?;
    let issuer_cert = match &args.dir {
        Some(dir) if dir.join(CONFIG_FILE).exists() => {
            let file: CatalogFile = read_toml(&dir.join(CONFIG_FILE))?;
            file.issuer_cert.map(|c| dir.join(c))
        }
        _ => None,
    };
    let client = args.transport.client_config(issuer_cert.as_deref())?;
    // The shop's server holds the purse while it runs.
    let (purse, wallet) = open_wallet(&purse_file, args.issuer.as_deref(), client)
        .context("opening the shop's purse (if its server is running, stop it first)")?;
    let info = purse
        .issuer()?
        .context("the purse has no issuer record: run `merchant init` first")?;
    let pk_i = info.key()?;
    let sk_m = purse.profile()?.secret_key()?;
    let pending = pending_cash_out_path(&purse_file);
    let (id, amount, resumed) = match read_pending_cash_out(&pending)? {
        Some((id, amount)) => (id, amount, true),
        None => {
            let amount = match args.amount {
                None => CashOutAmount::All,
                Some(a) if a.is_zero() => bail!("a cash-out of zero pays nothing"),
                Some(a) => CashOutAmount::Exactly(a),
            };
            let id = CashOutId::random()?;
            write_pending_cash_out(&pending, &id, &amount)?;
            (id, amount, false)
        }
    };
    if resumed {
        println!(
            "finishing the cash-out {} left unanswered by an earlier run",
            id.to_hex()
        );
    }
    let request = cash_out_request(
        &sk_m,
        wallet.id().clone(),
        info.issuer.clone(),
        &pk_i,
        id,
        amount,
    );
    let answer = wallet.issuer().cash_out(&request);
    let receipt = match answer {
        Ok(receipt) => receipt,
        Err(e) if e.code().is_some() && !e.is_transient() => {
            // The issuer refused it: nothing was paid, nothing to resume.
            std::fs::remove_file(&pending)
                .with_context(|| format!("removing {}", pending.display()))?;
            return Err(e).context("the issuer refused the cash-out");
        }
        Err(e) => {
            return Err(e).context(format!(
                "cash-out {} unanswered; run the command again to finish it",
                id.to_hex()
            ));
        }
    };
    let paid = verify_cash_out_receipt(&pk_i, &request, &receipt)
        .context("the issuer's receipt does not check")?;
    std::fs::remove_file(&pending).with_context(|| format!("removing {}", pending.display()))?;
    println!(
        "cashed out {paid} to the enrolled redeem account (request {}, receipt signed by the issuer)",
        id.to_hex()
    );
    if resumed {
        println!("run the command again for a new cash-out");
    }
    Ok(ExitCode::SUCCESS)
}

fn merchant_config(args: &ServeArgs) -> anyhow::Result<MerchantConfig> {
    let mut shop_name = args.name.clone();
    let mut collect_name = args.collect.clone();
    let mut account = args.redeem_account.clone();
    let mut catalog = args.items.clone();
    let mut file_items = Vec::new();
    let mut listen = args.listen;
    let in_dir = args
        .dir
        .as_ref()
        .map(|d| d.join(CONFIG_FILE))
        .filter(|p| p.exists());
    let catalog_path = args.catalog.clone().or(in_dir);
    let mut issuer_cert = None;
    let mut metrics_token = None;
    let (mut tls_cert, mut tls_key) = (args.tls_cert.clone(), args.tls_key.clone());
    if let Some(path) = &catalog_path {
        let file: CatalogFile = read_toml(path)?;
        let base = path.parent().unwrap_or(Path::new("."));
        issuer_cert = file.issuer_cert.map(|c| base.join(c));
        metrics_token = file
            .metrics_token
            .map(ScrapeToken::new)
            .transpose()
            .map_err(|e| anyhow::anyhow!("metrics_token {}: {e}", catalog_where(Some(path))))?;
        tls_cert = tls_cert.or(file.tls_cert.map(|c| base.join(c)));
        tls_key = tls_key.or(file.tls_key.map(|c| base.join(c)));
        shop_name = file.shop_name.unwrap_or(shop_name);
        listen = listen.or(file.listen);
        collect_name = file.collect.unwrap_or(collect_name);
        if let Some(a) = file.redeem_account {
            account = Some(BankAccount::new(a).context("the catalog's redeem_account")?);
        }
        file_items = file.item;
    }
    for it in file_items {
        let mut item = parse_item(&format!("{}={}", it.sku, it.price))
            .map_err(anyhow::Error::msg)
            .with_context(|| catalog_where(catalog_path.as_deref()))?;
        item.title = it.title.unwrap_or(item.title);
        item.collect = it
            .collect
            .as_deref()
            .map(|c| parse_collect(c, account.as_ref()))
            .transpose()?;
        catalog.push(item);
    }
    let listen = match listen {
        Some(addr) => addr,
        None => DEFAULT_LISTEN
            .parse()
            .context("the default listen address")?,
    };
    let mut server = ServerConfig::new(listen);
    server.metrics_token = metrics_token;
    if !args.transport.insecure_http {
        let (Some(cert), Some(key)) = (tls_cert, tls_key) else {
            bail!(
                "the shop serves HTTPS: give --tls-cert and --tls-key (from `varietycash issuer \
                 tls-cert`), or tls_cert and tls_key in merchant.toml; or --insecure-http"
            );
        };
        server.tls = Some(
            TlsIdentity::read_pem(&cert, &key)
                .with_context(|| format!("reading the shop's certificate {}", cert.display()))?,
        );
    }
    Ok(MerchantConfig {
        server,
        shop_name,
        catalog,
        collect: parse_collect(&collect_name, account.as_ref())?,
        client: args.transport.client_config(issuer_cert.as_deref())?,
    })
}

fn catalog_where(path: Option<&Path>) -> String {
    match path {
        Some(p) => format!("in {}", p.display()),
        None => "in the catalog".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pending_cash_out_reads_back_and_a_signed_id_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("pending");
        let id = CashOutId([0xab; 16]);
        write_pending_cash_out(&path, &id, &CashOutAmount::All).expect("written");
        let (read, amount) = read_pending_cash_out(&path)
            .expect("read")
            .expect("pending");
        assert_eq!((read, amount), (id, CashOutAmount::All));
        std::fs::write(&path, format!("+f{} all", "0".repeat(30))).expect("write");
        assert!(read_pending_cash_out(&path).is_err());
    }

    #[test]
    fn items_parse_from_flags_and_bad_ones_say_why() {
        let item = parse_item("book=5.00=A good book").expect("item");
        assert_eq!(item.sku, "book");
        assert_eq!(item.price, Amount::from_minor(500));
        assert_eq!(item.title, "A good book");
        assert_eq!(parse_item("tea=2.50").expect("item").title, "tea");
        assert!(parse_item("book").is_err());
        assert!(parse_item("book=five").is_err());
        assert!(parse_item("b o o k=5.00").is_err());
    }

    #[test]
    fn a_catalog_file_adds_items_after_the_flags_with_their_own_options() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("shop.toml");
        std::fs::write(
            &path,
            "shop_name = \"Books\"\nredeem_account = \"ACH-shop\"\n\n\
             [[item]]\nsku = \"map\"\nprice = \"2.00\"\ncollect = \"redeem\"\n\n\
             [[item]]\nsku = \"tea\"\ntitle = \"Tea\"\nprice = \"2.50\"\n",
        )
        .expect("write");
        let args = ServeArgs {
            purse: Some(dir.path().join("shop.purse")),
            dir: None,
            issuer: None,
            validators: Vec::new(),
            listen: Some("127.0.0.1:0".parse().expect("addr")),
            name: "unnamed".into(),
            items: vec![parse_item("book=5.00").expect("item")],
            catalog: Some(path),
            collect: "aggregate".into(),
            redeem_account: None,
            tls_cert: None,
            tls_key: None,
            open_orders_per_client: 32,
            transport: TransportArgs {
                issuer_cert: None,
                insecure_http: true,
            },
        };
        let config = merchant_config(&args).expect("config");
        assert_eq!(config.shop_name, "Books");
        assert_eq!(config.collect, CollectOption::Aggregate);
        let skus: Vec<&str> = config.catalog.iter().map(|i| i.sku.as_str()).collect();
        assert_eq!(skus, ["book", "map", "tea"]);
        assert_eq!(
            config.catalog[1].collect,
            Some(CollectOption::Redeem {
                bank_account: BankAccount::new("ACH-shop").expect("account")
            })
        );
        assert_eq!(config.catalog[2].title, "Tea");
        assert_eq!(config.catalog[2].collect, None);
    }

    #[test]
    fn redeem_without_an_account_is_refused() {
        assert!(parse_collect("redeem", None).is_err());
        assert!(parse_collect("teleport", None).is_err());
        assert_eq!(
            parse_collect("aggregate", None).expect("ok"),
            CollectOption::Aggregate
        );
    }
}
