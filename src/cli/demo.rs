//! `varietycash demo`: the whole system on loopback, in one process, over
//! real HTTP, read top to bottom as a walk through the paper.
//!
//! It starts an issuer (durable redb log, the simulated bank attached), a
//! merchant server over its own purse, and coin holders' purses; runs
//! registration (one party under a pseudonym, never enrolled, who sells
//! and buys), enrollment and its approval, the paper's coin purchase, an
//! anonymous purchase, payments with refresh, aggregate and redeem, a
//! change, a redeem to the bank, a refund after a purse file is deleted
//! (restored from its key backup; the old coins are refused afterwards),
//! a double spend the issuer refuses with a signed statement the payer
//! verifies, and the merchant's cash-out of its aggregated balance (none is
//! left stuck); the user index as its own service, fed the issuer's log,
//! naming who bought a coin only to two operators' approvals (one approval
//! given twice is refused); a purchase debit the bank returns (logged, the
//! purchaser suspended, the loss named in the audit); then moves value onto stored-value cards and back through
//! the serving issuer's gateway as their payment agency (load from a purse,
//! pay at a device, card to card, unload into a purse, clearing); then
//! stops the issuer and starts it again on a clock the demo moves forward past the coins'
//! expiry (into the refresh grace, never backwards), opens a key epoch,
//! shows a payment with an expired coin refused and the expired coins
//! refreshed; and audits its log with its public key. Every step prints
//! one line; the exit status is 0 only if every step and the audit succeed.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use actors::IssuerConfig;
use actors::SimulatedBank;
use anyhow::{Context, bail, ensure};
use clap::Args;
use client::{
    CatalogItem, ClientConfig, CollectOption, IssuerCa, IssuerClient, MerchantClient,
    MerchantConfig, NonceStore, OperatorAuth, OperatorKey, PurchaseOutcome, RefundOutcome,
    ServerConfig, ServerHandle, TlsAuthority, TlsIdentity, Wallet, serve_merchant,
};
use gateway::{IssuerRuntime, serve_issuer_with_bank};
use ledger::Clock;
use ledger::{Amount, BankAccount, Coin, CoinSpec, Denomination, ParticipantId, Role, Timestamp};
use protocol::crypto::SuiteId;
use protocol::flows::{PayerOutcome, PaymentPayer};
use protocol::wire::RejectReason;
use purse::{CoinState, IssuerInfo, Purse, PurseProfile};

/// Run the whole system on loopback (issuer, bank, merchant, two purses)
/// over real HTTP, then audit the issuer's log.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where to put every party's files (default: a fresh temporary directory).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Cipher suite of the issuer and the purses: dhaes (HPKE + Ed25519),
    /// aes256 (RSA, AES-256) or tdes (RSA, Triple-DES: the paper's).
    #[arg(long, default_value = "dhaes")]
    pub suite: SuiteId,
}

/// Every participant's RSA key size (suites aes256 and tdes).
const RSA_BITS: usize = 2048;
/// The party registered under a pseudonym.
const PSEUDONYM: &str = "zorro";
/// What each bank account holds when the demo opens it.
const OPENING_BALANCE_MINOR: u64 = 100_000;

/// A clock the demo moves forward: the wall clock plus an offset that only
/// grows, so that time never runs backwards in the issuer's log.
#[derive(Debug, Default)]
pub struct ForwardClock {
    offset_secs: AtomicU64,
}

impl ForwardClock {
    /// Moves the clock `secs` seconds forward.
    pub fn advance(&self, secs: u64) {
        self.offset_secs.fetch_add(secs, Ordering::SeqCst);
    }
}

impl Clock for ForwardClock {
    fn now(&self) -> Timestamp {
        Timestamp::now().plus_secs(self.offset_secs.load(Ordering::SeqCst))
    }
}

/// One day, in seconds.
const DAY_SECS: u64 = 24 * 3600;

/// The issuer's in-process parts: its actors, its gateway, its bank.
struct RunningIssuer {
    runtime: IssuerRuntime,
    gateway: ServerHandle,
    bank: Arc<SimulatedBank>,
    url: String,
    /// The operator key the gateway accepts (generated for the demo).
    operator_key: OperatorKey,
    /// A second operator's key: a disclosure needs two.
    second_operator_key: OperatorKey,
}

impl RunningIssuer {
    fn start(issuer_dir: &Path, config: IssuerConfig) -> anyhow::Result<RunningIssuer> {
        let bank = Arc::new(
            SimulatedBank::open(issuer_dir.join("bank.redb"), Duration::ZERO)
                .context("opening the simulated bank")?,
        );
        let runtime = IssuerRuntime::start(config, bank.clone()).context("starting the issuer")?;
        let operator_key = OperatorKey::generate().context("generating the operator key")?;
        let second_operator_key =
            OperatorKey::generate().context("generating the second operator key")?;
        let mut server = demo_server()?;
        server.operators = Arc::new(
            OperatorAuth::new(
                vec![
                    ("demo operator".into(), operator_key.public()),
                    ("second operator".into(), second_operator_key.public()),
                ],
                NonceStore::File(issuer_dir.join("operator-nonces")),
            )
            .context("the operator nonce store")?,
        );
        let gateway = serve_issuer_with_bank(&server, runtime.issuer().clone(), bank.clone())
            .context("starting the issuer's gateway")?;
        let url = gateway.url();
        Ok(RunningIssuer {
            runtime,
            gateway,
            bank,
            url,
            operator_key,
            second_operator_key,
        })
    }

    fn core(&self) -> &Arc<actors::IssuerCore> {
        self.runtime.issuer().core()
    }

    fn stop(self) -> anyhow::Result<()> {
        self.gateway
            .stop()
            .context("stopping the issuer's gateway")?;
        super::common::stop_issuer(self.runtime)?;
        drop(self.bank);
        Ok(())
    }
}

/// The demo's purse passphrase when `VC_PURSE_PASSPHRASE` is not set: the
/// demo's purses hold throw-away money.
pub const DEMO_PASSPHRASE: &str = "varietycash demo";

pub fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let scratch;
    let dir = match &args.dir {
        Some(dir) => {
            ledger::private_file::create_private_dir(dir)
                .with_context(|| format!("creating {}", dir.display()))?;
            dir.clone()
        }
        None => {
            scratch = tempfile::tempdir().context("creating a scratch directory")?;
            scratch.path().to_path_buf()
        }
    };
    println!("VarietyCash demo in {}", dir.display());
    // The purses are sealed under VC_PURSE_PASSPHRASE if it is set, or the
    // demo's own passphrase: the demo asks nobody for anything.
    if std::env::var_os(super::common::PASSPHRASE_ENV).is_none() {
        super::common::use_passphrase(purse::Passphrase::new(DEMO_PASSPHRASE)?);
        println!(
            "purses sealed under the demo passphrase `{DEMO_PASSPHRASE}` ({} to choose)",
            super::common::PASSPHRASE_ENV
        );
    }

    // The issuer: its actors on their own thread, its gateway on loopback,
    // the simulated bank inside its process (settling debits at once).
    // The issuer's directory is laid out as `varietycash issuer init` lays
    // it out, so the other commands (the card transfers below) can open it.
    // Its clock is one the demo can move forward (it starts at the wall
    // clock's time), shared with the purses.
    let issuer_dir = dir.join("issuer");
    ledger::private_file::create_private_dir(&issuer_dir)
        .context("creating the issuer's directory")?;
    let issuer_file = super::issuer::IssuerFile {
        suite: args.suite.to_string(),
        rsa_bits: RSA_BITS,
        shards: 4,
        listen: "127.0.0.1:0".parse().context("the loopback address")?,
        bank_settle_delay_ms: 0,
        // The demo runs its gateway in-process on loopback, over TLS with
        // an authority and an operator key of its own (`demo_tls`,
        // `RunningIssuer::start`).
        metrics_token: None,
        operators: Vec::new(),
        tls_cert: None,
        tls_key: None,
        per_source: None,
        user_index_url: None,
        log_store: None,
        bank_files: None,
        epochs: None,
    };
    ledger::private_file::write_private(
        &issuer_dir.join(super::issuer::CONFIG_FILE),
        toml::to_string(&issuer_file)
            .context("writing the issuer's configuration")?
            .as_bytes(),
    )?;
    let clock = Arc::new(ForwardClock::default());
    let mut config = IssuerConfig::new(&issuer_dir);
    config.suite = args.suite;
    config.rsa_bits = RSA_BITS;
    config.n_shards = issuer_file.shards;
    config.clock = clock.clone();
    create_user_index(&dir, args.suite, &issuer_dir)?;
    let issuer = RunningIssuer::start(&issuer_dir, config.clone())?;
    let issuer_url = issuer.url.clone();
    let operator =
        IssuerClient::new(&issuer_url, demo_client()?)?.with_operator(issuer.operator_key.clone());
    let descriptor = operator
        .descriptor()
        .context("reading the issuer's descriptor")?;
    step(
        "issuer",
        format!(
            "{} listening at {issuer_url}, {}, suite {}, log {}",
            descriptor.id_i.as_str(),
            match descriptor.suite.key_kind() {
                protocol::crypto::KeyKind::Rsa => format!("RSA-{RSA_BITS}"),
                protocol::crypto::KeyKind::Ed25519X25519 => "Ed25519/X25519".to_owned(),
            },
            descriptor.suite,
            dir.join("issuer").join("log.redb").display()
        ),
    );
    let issuer_info = IssuerInfo {
        issuer: descriptor.id_i.clone(),
        public_key: descriptor.public_key.clone(),
        gateway_url: issuer_url.clone(),
    };

    // The participants, each with a purse file and a bank account the
    // operator opens through the issuer's signed operator route; zorro is a
    // pseudonym with no bank account at all.
    let shop_purse = new_purse(&dir, "bookshop", args.suite, &issuer_info)?;
    let alice_purse = new_purse(&dir, "alice", args.suite, &issuer_info)?;
    let bob_purse = new_purse(&dir, "bob", args.suite, &issuer_info)?;
    let carol_purse = new_purse(&dir, "carol", args.suite, &issuer_info)?;
    let zorro_purse = new_purse(&dir, PSEUDONYM, args.suite, &issuer_info)?;
    let shop = Wallet::open(shop_purse.clone(), demo_client()?)?;
    let alice = Wallet::open(alice_purse.clone(), demo_client()?)?;
    let bob = Wallet::open(bob_purse.clone(), demo_client()?)?;
    let carol = Wallet::open(carol_purse.clone(), demo_client()?)?;
    let zorro = Wallet::open(zorro_purse.clone(), demo_client()?)?;
    let opening = Amount::from_minor(OPENING_BALANCE_MINOR);
    let shop_account = account_for(&operator, &shop, opening)?;
    let alice_account = account_for(&operator, &alice, opening)?;
    let bob_account = account_for(&operator, &bob, opening)?;
    let carol_account = account_for(&operator, &carol, opening)?;
    step(
        "bank",
        format!("4 accounts opened with {opening} each (operator route)"),
    );

    // Registration: each purse proves its key and keeps CERT_X.
    for wallet in [&shop, &alice, &bob, &carol] {
        wallet
            .register()
            .with_context(|| format!("registering {}", wallet.id().as_str()))?;
        step(
            "register",
            format!("{}: certificate checked and stored", wallet.id().as_str()),
        );
    }
    // An identity is whatever the participant chooses (paper section 3,
    // "possibly a pseudonym"): zorro registers a key under that name only,
    // and never enrolls, so the issuer holds no bank account for it.
    zorro.register().context("registering the pseudonym")?;
    let known = issuer
        .core()
        .participant(zorro.id())?
        .context("the issuer did not record the pseudonym")?;
    ensure!(
        known.enrollments.is_empty(),
        "the pseudonym has enrollments"
    );
    step(
        "register",
        format!(
            "{PSEUDONYM}: registered under a pseudonym; the issuer knows this party only as \
             `{PSEUDONYM}` and its public key (no enrollment, no bank account)"
        ),
    );

    // Enrollment: requested by the participant, approved by the operator.
    for (wallet, account, roles) in [
        (&shop, &shop_account, &[Role::Merchant, Role::Redeemer][..]),
        (
            &alice,
            &alice_account,
            &[Role::CoinPurchaser, Role::Redeemer][..],
        ),
        (&bob, &bob_account, &[Role::CoinPurchaser][..]),
        (&carol, &carol_account, &[Role::CoinPurchaser][..]),
    ] {
        for role in roles {
            wallet
                .request_enrollment(*role, account.clone())
                .with_context(|| format!("enrolling {} as {role:?}", wallet.id().as_str()))?;
            operator
                .approve_enrollment(wallet.id(), *role)
                .context("approving an enrollment")?;
            step(
                "enroll",
                format!("{} as {role:?}: requested, approved", wallet.id().as_str()),
            );
        }
    }

    // The merchant server: its catalog says what it takes for each item.
    let shop_server = serve_shop(&shop_purse, &shop_account, Vec::new())?;
    let shop_url = shop_server.url();
    step(
        "merchant",
        format!(
            "bookshop at {shop_url}: book 5.00 (refresh), tea 2.50 (aggregate), map 2.00 (redeem), postcard 1.00 (refresh)"
        ),
    );

    // W1: the paper's purchase, (2, $2.50), (1, $1.25), (3, $2), debited
    // from Alice's account and settled by the bank before coins are issued.
    let spec = paper_spec()?;
    let bank_before = operator.bank_balance(&alice_account)?;
    let coins = bought(alice.buy(spec.clone(), alice_account.clone(), false)?)?;
    let bank_after = operator.bank_balance(&alice_account)?;
    ensure!(
        bank_before.checked_sub(bank_after)? == spec.total()?,
        "the bank did not debit the purchase's amount"
    );
    step(
        "purchase",
        format!(
            "alice bought {} in {} coins ({}); her account went {bank_before} -> {bank_after}",
            spec.total()?,
            coins.len(),
            values(&coins)
        ),
    );

    // An anonymous purchase: the issuer's log holds no identity for it.
    let anon_spec = CoinSpec::new(vec![line(2, 200)?, line(2, 50)?])?;
    let bob_coins = bought(bob.buy(anon_spec.clone(), bob_account.clone(), true)?)?;
    step(
        "purchase",
        format!(
            "bob bought {} anonymously ({})",
            anon_spec.total()?,
            values(&bob_coins)
        ),
    );

    // P1, refresh: 5.00 paid with the two 2.50 coins; the merchant gets
    // fresh coins, Alice the merchant's signed receipt.
    let spent_for_book = coins_of(&alice_purse, Amount::from_minor(250))?;
    let outcome = alice.pay(&shop_url, "book")?;
    expect_paid(&outcome, "alice's book")?;
    step(
        "pay/refresh",
        format!(
            "alice paid 5.00 for a book; receipt verified; shop holds {}",
            holdings(&shop_purse)?
        ),
    );

    // P1, aggregate: 2.50 has no exact subset of 1.25 + 3 x 2.00, so the
    // wallet changes coins with the issuer first (the paper's way).
    let outcome = alice.pay(&shop_url, "tea")?;
    expect_paid(&outcome, "alice's tea")?;
    step(
        "pay/aggregate",
        format!(
            "alice paid 2.50 for tea after a change; the shop's balance at the issuer grew; alice holds {}",
            holdings(&alice_purse)?
        ),
    );

    // P1, redeem: the merchant takes a bank credit instead of coins.
    let shop_bank_before = operator.bank_balance(&shop_account)?;
    let outcome = bob.pay(&shop_url, "map")?;
    expect_paid(&outcome, "bob's map")?;
    let shop_bank_after = operator.bank_balance(&shop_account)?;
    ensure!(
        shop_bank_after.checked_sub(shop_bank_before)? == Amount::from_minor(200),
        "the merchant's redeem did not credit its account"
    );
    step(
        "pay/redeem",
        format!(
            "bob paid 2.00 for a map; the shop's account went {shop_bank_before} -> {shop_bank_after}"
        ),
    );

    // Change: one coin in, smaller coins of the same total out.
    let give = largest_available(&bob_purse, bob.now())?;
    let want = CoinSpec::new(vec![line(4, give.value().minor_units() / 4)?])?;
    let changed = bob.change(vec![give], want)?;
    step(
        "change",
        format!(
            "bob changed a {} coin into {}",
            give.value(),
            values(&changed)
        ),
    );

    // The pseudonym takes part without enrolling: it sells a poem from its
    // own stall (a payment with refresh needs only a registered payee) and
    // spends the coin it got at the bookshop.
    let stall = serve_merchant(
        &MerchantConfig {
            server: demo_server()?,
            shop_name: format!("{PSEUDONYM}'s poetry stall"),
            catalog: vec![item("poem", "A poem", 100, None)],
            collect: CollectOption::Refresh,
            client: demo_client()?,
        },
        zorro_purse.clone(),
    )
    .context("starting the pseudonym's stall")?;
    expect_paid(&bob.pay(&stall.url(), "poem")?, "bob's poem")?;
    let earned = holdings(&zorro_purse)?;
    expect_paid(&zorro.pay(&shop_url, "postcard")?, "zorro's postcard")?;
    stall.stop().context("stopping the stall")?;
    step(
        "pseudonym",
        format!(
            "bob paid {PSEUDONYM} {earned} for a poem; {PSEUDONYM} spent it on a postcard at the bookshop, \
             holding {} now, never enrolled",
            holdings(&zorro_purse)?
        ),
    );

    // Redeem: coins back into real money at the bank.
    let redeem = Amount::from_minor(125);
    let before = operator.bank_balance(&alice_account)?;
    alice.redeem(redeem, alice_account.clone())?;
    let after = operator.bank_balance(&alice_account)?;
    ensure!(
        after.checked_sub(before)? == redeem,
        "the redeem did not credit alice's account"
    );
    step(
        "redeem",
        format!("alice redeemed {redeem}; her account went {before} -> {after}"),
    );

    // Refund: carol backs up her identity and key (`purse backup`), buys
    // coins, loses her purse file, restores an empty purse from the backup
    // (`purse init --restore`) and asks for a refund: the issuer revokes
    // the unspent coins it issued to her and sends replacements. A stale
    // copy of the lost file (what a thief would find) is worthless after.
    drop(carol);
    let carol_keys = dir.join("carol.keys");
    carol_purse
        .backup_keys(&carol_keys)
        .context("backing up carol's keys")?;
    let carol_spec = CoinSpec::new(vec![line(3, 100)?, line(2, 50)?])?;
    // She changes one 1.00 into 2 × 0.50: change of coins issued in her
    // name is issued in her name too, so the refund covers it.
    let n_carol_coins = {
        let carol = Wallet::open(carol_purse.clone(), demo_client()?)?;
        let bought = bought(carol.buy(carol_spec, carol_account.clone(), false)?)?;
        let one = coins_of(&carol_purse, Amount::from_minor(100))?
            .first()
            .copied()
            .context("carol bought no 1.00 coin")?;
        let halves = carol.change(vec![one], CoinSpec::new(vec![line(2, 50)?])?)?;
        bought.len() - 1 + halves.len()
    };
    let lost = holdings(&carol_purse)?;
    let carol_path = carol_purse.path().to_path_buf();
    let stale_copy = dir.join("carol-stale-copy.purse");
    drop(carol_purse);
    ledger::private_file::copy_private(&carol_path, &stale_copy)
        .context("copying carol's purse")?;
    std::fs::remove_file(&carol_path).context("deleting carol's purse")?;
    let carol_purse = Arc::new(
        Purse::restore(&carol_path, &carol_keys, super::common::passphrase(false)?)
            .context("restoring carol's purse")?,
    );
    ensure!(
        holdings(&carol_purse)? == Amount::ZERO,
        "a restored purse holds coins"
    );
    let carol = Wallet::open(carol_purse.clone(), demo_client()?)?;
    let (revoked, refunded) = match carol.refund()? {
        RefundOutcome::Replaced { revoked, coins } => (revoked, coins),
        RefundOutcome::Rejected(r) => bail!("the refund was refused: {:?}", r.reason),
    };
    let back = holdings(&carol_purse)?;
    ensure!(
        back == lost && revoked == n_carol_coins,
        "the refund gave back {back} for {lost} lost"
    );
    let stale = super::common::open_purse(&stale_copy).context("opening the stale copy")?;
    let old_coin = coins_of(&stale, Amount::from_minor(100))?
        .first()
        .copied()
        .context("the stale copy holds no 1.00 coin")?;
    drop(stale);
    let (old_reason, _) = pay_directly(
        &carol_purse,
        &issuer_info,
        &shop_url,
        "postcard",
        vec![old_coin],
        carol.now(),
    )?;
    step(
        "refund",
        format!(
            "carol's purse file deleted ({lost} in {} coins lost, the change of a 1.00 coin \
             among them), restored from her key backup, refunded: {revoked} coins revoked, \
             {back} back in {} new coins; an old coin is now refused ({old_reason:?})",
            n_carol_coins,
            refunded.len()
        ),
    );

    // P2 and P4: Alice tries the two 2.50 coins she already spent. The
    // issuer refuses with a signed statement, which the merchant passes on
    // and Alice verifies under the issuer's key.
    let (reason, bad) = pay_directly(
        &alice_purse,
        &issuer_info,
        &shop_url,
        "book",
        spent_for_book,
        alice.now(),
    )?;
    step(
        "double spend",
        format!(
            "refused: {reason:?}, {bad} coin(s) named; the issuer's signature verified by alice"
        ),
    );

    // Cash-out: the shop has the issuer pay its aggregated balance (the
    // tea) to its enrolled account, as `varietycash merchant cash-out`
    // does, over the signed route; no balance is left stuck.
    let shop_bank_before = operator.bank_balance(&shop_account)?;
    let request = protocol::flows::cash_out::cash_out_request(
        &shop_purse.profile()?.secret_key()?,
        shop.id().clone(),
        issuer_info.issuer.clone(),
        &issuer_info.key()?,
        protocol::wire::cash_out::CashOutId::random()?,
        protocol::wire::cash_out::CashOutAmount::All,
    );
    let receipt = shop.issuer().cash_out(&request).context("cashing out")?;
    let paid =
        protocol::flows::cash_out::verify_cash_out_receipt(&issuer_info.key()?, &request, &receipt)
            .context("the cash-out receipt")?;
    let shop_bank_after = operator.bank_balance(&shop_account)?;
    ensure!(
        shop_bank_after.checked_sub(shop_bank_before)? == paid
            && issuer.core().totals().aggregates == 0,
        "the cash-out did not empty the aggregated balance into the shop's account"
    );
    step(
        "cash-out",
        format!(
            "the shop cashed out its aggregated {paid}; receipt verified; its account went {shop_bank_before} -> {shop_bank_after}; no aggregated balance left"
        ),
    );

    disclosure_steps(&dir, &issuer, &coins, alice.id())?;
    returned_debit_steps(&dir, &issuer, &operator, args.suite, &issuer_info)?;

    let report = alice.resume()?;
    ensure!(
        report.unfinished == 0 && alice_purse.in_flight()?.is_empty(),
        "alice's purse has unfinished transactions"
    );
    step(
        "purses",
        format!(
            "alice {}, bob {}, carol {}, {PSEUDONYM} {}, bookshop {} (no transaction left in flight)",
            holdings(&alice_purse)?,
            holdings(&bob_purse)?,
            holdings(&carol_purse)?,
            holdings(&zorro_purse)?,
            holdings(&shop_purse)?
        ),
    );

    // Stop every server, then audit the issuer's log from the file.
    let issuer_key = dir.join("issuer.pub");
    issuer
        .runtime
        .issuer()
        .public_key()
        .write_spki(&issuer_key)
        .context("writing the issuer's public key")?;
    shop_server.stop().context("stopping the merchant")?;

    // Cards (paper section 4): the issuer keeps serving, and the card
    // commands reach it as the card system's payment agency through its
    // gateway, as `varietycash card` does whenever the issuer serves: its
    // directory names the address, the TLS authority, the operator key and
    // the issuer's key. The purses' files must be closed first: the card
    // commands open them.
    drop((shop, alice, bob, carol, zorro, operator));
    drop((shop_purse, alice_purse, bob_purse, carol_purse, zorro_purse));
    let serving = super::issuer::IssuerFile {
        listen: issuer.gateway.addr(),
        ..issuer_file.clone()
    };
    ledger::private_file::write_private(
        &issuer_dir.join(super::issuer::CONFIG_FILE),
        toml::to_string(&serving)
            .context("writing the issuer's configuration")?
            .as_bytes(),
    )?;
    ledger::private_file::write_private(
        &issuer_dir.join(super::issuer::TLS_CA_CERT_FILE),
        demo_tls()?.ca_pem.as_bytes(),
    )?;
    issuer
        .operator_key
        .write(&issuer_dir.join(super::issuer::OPERATOR_KEY_FILE))
        .context("writing the operator key")?;
    issuer
        .runtime
        .issuer()
        .public_key()
        .write_spki(&issuer_dir.join(super::issuer::PUBLIC_KEY_FILE))
        .context("writing the issuer's public key")?;
    card_steps(&dir)?;
    issuer.stop()?;
    step("stop", "merchant, gateway and issuer stopped".to_owned());

    expired_coin_steps(&dir, config.clone(), &clock)?;
    epoch_end_steps(&dir, config, &clock)?;

    // The bank's own statement, matched against the log by the auditor.
    let bank_statement = dir.join("bank-statement.txt");
    super::bank::export(&dir.join("issuer").join("bank.redb"), &bank_statement)?;
    let report = super::audit::audit(&super::audit::AuditArgs {
        log: Some(dir.join("issuer").join("log.redb")),
        card_records: Vec::new(),
        issuer_key: Some(issuer_key),
        from_checkpoint: None,
        write_checkpoint: None,
        json: false,
        html: None,
        // The issuer's own read model must equal what the auditor rebuilds.
        coin_status: Some(dir.join("issuer").join("coin-status.redb")),
        accounts: None,
        // The demo's world ran 91 days ahead of this machine's clock.
        now: Some(clock.now().0),
        // The head the issuer published when it last stopped: the log
        // must reach it, and every record must be signed.
        expect_head: Some(
            dir.join("issuer")
                .join(actors::SIGNED_HEAD_FILE)
                .display()
                .to_string(),
        ),
        allow_unsigned_tail: 0,
        bank_statement: Some(bank_statement),
        skip_integrity_check: false,
        transport: Default::default(),
    })?;
    let text = report.to_text();
    print!("\n{text}");
    println!("demo took {:.1} s", started.elapsed().as_secs_f64());
    check_audit_shows_disclosure_and_return(&text)?;
    if report.exit_code() != 0 {
        bail!("the audit of the demo's log failed");
    }
    Ok(ExitCode::SUCCESS)
}

/// The user index's directory (`varietycash index init`): its key pair is
/// made there, and only its public key goes to the issuer, which seals
/// every identity to it from its first record on.
fn create_user_index(dir: &Path, suite: SuiteId, issuer_dir: &Path) -> anyhow::Result<()> {
    let public = user_index::IndexService::create_keys(&dir.join("index"), suite, RSA_BITS)
        .context("creating the user index's keys")?;
    actors::install_user_index_key(issuer_dir, &public)
        .context("giving the issuer the user index's public key")?;
    Ok(())
}

/// Trust-based anonymity (paper §1.2): the user index serves on its own,
/// fed the issuer's log through the outbox, and names who bought a coin
/// only to a request two different operators approved, which the issuer
/// logs first. One operator's approval, given twice, discloses nothing.
fn disclosure_steps(
    dir: &Path,
    issuer: &RunningIssuer,
    coins: &[Coin],
    buyer: &ParticipantId,
) -> anyhow::Result<()> {
    use gateway::index::{IndexClient, IndexForwarder, approvals, approve_disclosure, serve_index};
    use protocol::wire::BoundedText;
    use user_index::wire::DisclosureOrder;

    let index = Arc::new(
        user_index::IndexService::open(&dir.join("index"), issuer.runtime.issuer().public_key())
            .context("opening the user index")?,
    );
    let index_server = serve_index(
        &demo_server()?,
        index.clone(),
        client::client::HttpClient::new(&issuer.url, demo_client()?)?,
    )
    .context("serving the user index")?;
    let client = IndexClient::new(&index_server.url(), demo_client()?)?;
    let forwarder = IndexForwarder::start(
        issuer.core().clone(),
        client.clone(),
        &dir.join("issuer").join(gateway::index::OUTBOX_FILE),
    )
    .context("delivering the log to the user index")?;
    let head = ledger::EventStore::head(issuer.core().store().as_ref())?.last_seq;
    let deadline = Instant::now() + Duration::from_secs(30);
    while index.applied()? < head {
        ensure!(
            Instant::now() < deadline,
            "the user index did not catch up with the log"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    step(
        "user index",
        format!(
            "its own key pair and service at {}; applied the issuer's log to record {} \
             (the issuer holds only its public key)",
            index_server.url(),
            index.applied()?.0
        ),
    );

    let coin = coins.first().context("alice bought no coin")?.id();
    let order = DisclosureOrder {
        subject: ledger::DisclosureSubject::Coin(coin),
        requester: BoundedText::new("district court").map_err(|_| anyhow::anyhow!("requester"))?,
        reason: BoundedText::new("case 45").map_err(|_| anyhow::anyhow!("reason"))?,
    };
    let issuer_key = issuer.runtime.issuer().public_key();
    let first = approve_disclosure(&issuer.operator_key, &issuer_key, &order)?;
    let again = approve_disclosure(&issuer.operator_key, &issuer_key, &order)?;
    let refused = client.disclose(&approvals(&first, &again));
    ensure!(
        refused.is_err(),
        "one operator's approval, given twice, disclosed an identity"
    );
    step(
        "disclosure",
        "one operator's approval given twice: refused, nothing disclosed".to_owned(),
    );
    let second = approve_disclosure(&issuer.second_operator_key, &issuer_key, &order)?;
    let answer = client
        .disclose(&approvals(&first, &second))
        .context("the disclosure approved by two operators")?;
    ensure!(
        &answer.participant == buyer,
        "the index named {} for alice's coin",
        answer.participant.as_str()
    );
    step(
        "disclosure",
        format!(
            "two operators approved: coin {coin} was bought by {}; the issuer logged it first \
             (record {})",
            answer.participant.as_str(),
            answer.logged_at.0
        ),
    );
    forwarder.stop();
    index_server.stop().context("stopping the user index")?;
    Ok(())
}

/// A returned debit: dave buys coins, and his bank gives the collected
/// debit back (insufficient funds). The issuer logs the return, dave's
/// purchaser enrollment is suspended, and the audit names the loss.
fn returned_debit_steps(
    dir: &Path,
    issuer: &RunningIssuer,
    operator: &IssuerClient,
    suite: SuiteId,
    issuer_info: &IssuerInfo,
) -> anyhow::Result<()> {
    let dave_purse = new_purse(dir, "dave", suite, issuer_info)?;
    let dave = Wallet::open(dave_purse.clone(), demo_client()?)?;
    let account = account_for(operator, &dave, Amount::from_minor(OPENING_BALANCE_MINOR))?;
    dave.register().context("registering dave")?;
    dave.request_enrollment(Role::CoinPurchaser, account.clone())
        .context("enrolling dave")?;
    operator
        .approve_enrollment(dave.id(), Role::CoinPurchaser)
        .context("approving dave")?;
    let spec = CoinSpec::new(vec![line(2, 250)?])?;
    let coins = bought(dave.buy(spec.clone(), account.clone(), false)?)?;
    let purchase = issuer
        .bank
        .export_statement()?
        .into_iter()
        .rev()
        .find_map(|e| match e.kind {
            actors::StatementKind::Debit(p) if e.account == account => Some(p),
            _ => None,
        })
        .context("the bank shows no debit of dave's purchase")?;
    let (returned_from, amount) = issuer
        .bank
        .return_debit(purchase)?
        .context("the bank did not return the debit")?;
    let done = issuer
        .core()
        .debit_returned(purchase, &returned_from, "AM04")
        .context("recording the returned debit")?;
    ensure!(
        done.n_suspended == 1 && done.logged_at.is_some(),
        "the returned debit did not suspend dave's enrollment"
    );
    let again = dave.buy(spec, account, false);
    ensure!(
        !matches!(again, Ok(PurchaseOutcome::Issued(_))),
        "a suspended purchaser bought coins"
    );
    step(
        "returned debit",
        format!(
            "dave bought {} in {} coins; his bank returned the debit (AM04, insufficient \
             funds): logged at record {}, his purchaser enrollment suspended (his next \
             purchase refused), the {amount} the issuer's loss",
            spec_total(&coins)?,
            coins.len(),
            done.logged_at.map_or(0, |s| s.0)
        ),
    );
    Ok(())
}

/// The audit lists the disclosure and names the returned debit's loss.
fn check_audit_shows_disclosure_and_return(report: &str) -> anyhow::Result<()> {
    ensure!(
        report.contains("disclosures of identity: 1"),
        "the audit does not list the disclosure"
    );
    ensure!(
        report.contains("returned debits (loss)"),
        "the audit does not name the returned debit's loss"
    );
    Ok(())
}

fn spec_total(coins: &[Coin]) -> anyhow::Result<Amount> {
    Ok(Amount::checked_sum(coins.iter().map(Coin::value))?)
}

/// The issuer again, on the demo's clock, which now moves past the expiry
/// of every coin minted so far (into the refresh grace): a key epoch is
/// opened (`varietycash issuer epoch open`), a payment with an expired coin
/// is refused, and alice refreshes her expired coins.
fn expired_coin_steps(
    dir: &Path,
    config: IssuerConfig,
    clock: &Arc<ForwardClock>,
) -> anyhow::Result<()> {
    let lifetime = config.coin_lifetime_secs;
    let grace = config.grace_secs;
    let issuer = RunningIssuer::start(&dir.join("issuer"), config)?;
    let (alice_purse, alice) =
        super::common::open_wallet(&dir.join("alice.purse"), Some(&issuer.url), demo_client()?)?;
    let alice = alice.with_clock(clock.clone());
    let info = alice_purse
        .issuer()?
        .context("alice's purse has no issuer record")?;
    step(
        "restart",
        format!(
            "issuer started again at {}, on the demo's clock",
            issuer.url
        ),
    );

    // One day past the coins' expiry: well inside the grace period.
    clock.advance(lifetime + DAY_SECS);
    let epoch = issuer
        .core()
        .open_epoch_now()
        .context("opening a key epoch")?;
    step(
        "clock",
        format!(
            "moved {} days forward: alice's coins expired a day ago ({} days of grace); key epoch {} opened",
            (lifetime + DAY_SECS) / DAY_SECS,
            grace / DAY_SECS,
            epoch.0
        ),
    );
    let expired = alice_purse.expired(alice.now())?;
    let one = expired
        .first()
        .copied()
        .context("alice has no expired coin")?;
    // The bookshop again, with an item priced at that coin's value.
    let (shop_purse, _) = super::common::open_wallet(
        &dir.join("bookshop.purse"),
        Some(&issuer.url),
        demo_client()?,
    )?;
    let shop_server = serve_shop(
        &shop_purse,
        &BankAccount::new("ACH-bookshop")?,
        vec![item("gift", "A gift card", one.value().minor_units(), None)],
    )?;
    let (reason, _) = pay_directly(
        &alice_purse,
        &info,
        &shop_server.url(),
        "gift",
        vec![one],
        alice.now(),
    )?;
    ensure!(
        reason == RejectReason::Expired,
        "an expired coin was refused for {reason:?}, not as expired"
    );
    step(
        "expired",
        format!(
            "alice paid {} at the bookshop with an expired coin: refused ({reason:?}), signed statement verified",
            one.value()
        ),
    );
    let fresh = alice.refresh_expired()?;
    let now = alice.now();
    ensure!(
        !fresh.is_empty()
            && fresh.iter().all(|c| c.body.expiry > now)
            && alice_purse.expired(now)?.is_empty(),
        "the refresh left expired coins"
    );
    step(
        "refresh",
        format!(
            "alice refreshed {} expired coins ({}) into coins of epoch {}, good until the new epoch's expiry",
            expired.len(),
            Amount::checked_sum(expired.iter().map(Coin::value))?,
            fresh[0].body.epoch.0,
        ),
    );
    shop_server.stop().context("stopping the merchant")?;
    drop((alice, alice_purse, shop_purse));
    issuer.stop()?;
    Ok(())
}

/// The end of key epochs, on the demo's clock: the operator revokes the
/// current epoch (its key suspected stolen: `varietycash issuer epoch
/// revoke`), a payment with one of its coins is refused, and alice recoups
/// them (`varietycash purse recoup`) into coins of the next epoch. Then the
/// clock passes the first epoch's grace period and the issuer erases it
/// (`varietycash issuer epoch erase`, which the serving issuer also does on
/// its own): its spent coins leave the coin state, its key is destroyed.
fn epoch_end_steps(
    dir: &Path,
    config: IssuerConfig,
    clock: &Arc<ForwardClock>,
) -> anyhow::Result<()> {
    let grace = config.grace_secs;
    let issuer = RunningIssuer::start(&dir.join("issuer"), config)?;
    let (alice_purse, alice) =
        super::common::open_wallet(&dir.join("alice.purse"), Some(&issuer.url), demo_client()?)?;
    let alice = alice.with_clock(clock.clone());
    let info = alice_purse
        .issuer()?
        .context("alice's purse has no issuer record")?;
    let (compromised, _) = issuer
        .core()
        .current_epoch()
        .context("the issuer has no key epoch")?;
    let revoked = issuer
        .core()
        .revoke_epoch(compromised)
        .context("revoking the current key epoch")?;
    step(
        "revoke",
        format!(
            "key epoch {} revoked (its key suspected stolen): {} of its coins are unspent, what its recoups may pay out; epoch {} opened",
            compromised.0,
            revoked.owed,
            issuer.core().current_epoch().map_or(0, |(e, _)| e.0)
        ),
    );
    let held: Vec<Coin> = alice_purse
        .spendable(alice.now())?
        .into_iter()
        .filter(|c| c.body.epoch == compromised)
        .collect();
    let one = held
        .first()
        .copied()
        .context("alice holds no coin of the revoked epoch")?;
    let (shop_purse, _) = super::common::open_wallet(
        &dir.join("bookshop.purse"),
        Some(&issuer.url),
        demo_client()?,
    )?;
    let shop_server = serve_shop(
        &shop_purse,
        &BankAccount::new("ACH-bookshop")?,
        vec![item("map", "A map", one.value().minor_units(), None)],
    )?;
    let (reason, _) = pay_directly(
        &alice_purse,
        &info,
        &shop_server.url(),
        "map",
        vec![one],
        alice.now(),
    )?;
    ensure!(
        reason == RejectReason::EpochRevoked,
        "a coin of the revoked epoch was refused for {reason:?}"
    );
    step(
        "revoked",
        format!(
            "alice paid {} with a coin of epoch {}: refused ({reason:?}), signed statement verified",
            one.value(),
            compromised.0
        ),
    );
    let (value, fresh) = alice.recoup(compromised, None)?;
    ensure!(
        !fresh.is_empty() && fresh.iter().all(|c| c.body.epoch != compromised),
        "the recoup gave no coins of a good epoch"
    );
    step(
        "recoup",
        format!(
            "alice recouped {value} in {} coins of epoch {} (proof: the coins' tags); {} of epoch {} left to recoup",
            held.len(),
            fresh[0].body.epoch.0,
            issuer
                .core()
                .epoch_ends()
                .into_iter()
                .find_map(|(e, end)| match end {
                    actors::EpochEnd::Revoked { still_owed, .. } if e == compromised =>
                        Some(still_owed),
                    _ => None,
                })
                .unwrap_or(Amount::ZERO),
            compromised.0
        ),
    );
    shop_server.stop().context("stopping the merchant")?;
    drop((alice, alice_purse, shop_purse));

    // Past the first epoch's grace: its coins are worth nothing any more.
    let first = ledger::KeyEpoch(1);
    let stored_before = issuer.core().coin_status_n_coins()?;
    clock.advance(grace + DAY_SECS);
    let erased = issuer
        .core()
        .erase_epoch(
            first,
            std::time::Duration::from_millis(actors::EPOCH_DRAIN_WAIT_MS),
        )
        .context("erasing key epoch 1")?;
    let stored_after = issuer.core().coin_status_n_coins()?;
    step(
        "erase",
        format!(
            "clock moved {} days, past epoch 1's grace: {} spent coins ({}) erased, named through log record {}; its mint key destroyed; {} unspent coins ({}) forfeited; coin status {stored_before} -> {stored_after} coins",
            (grace + DAY_SECS) / DAY_SECS,
            erased.n_coins,
            erased.value,
            erased.through.0,
            erased.forfeited_n_coins,
            erased.forfeited
        ),
    );
    issuer.stop()?;
    Ok(())
}

/// Two cards: bob loads one from his purse, pays at a shop's device with it,
/// moves value card to card through the issuer, and alice unloads the other
/// card into coins; then the load/unload server clears with the issuer.
/// The issuer serves meanwhile: the card commands reach its card agency
/// through its gateway (they could not open its files while it runs).
fn card_steps(dir: &Path) -> anyhow::Result<()> {
    use super::card::{CardArgs, CardCommand, IssuerArg, SuiteArg};
    use card_bridge::wire::PsamId;
    use ledger::CardId;

    let card = |what: &str, command: CardCommand| -> anyhow::Result<()> {
        println!("  {:<14} (varietycash card {what})", "card");
        let code = super::card::run(CardArgs {
            dir: Some(dir.join("cards")),
            lus: 1,
            stop_at: None,
            command,
        })?;
        ensure!(code == ExitCode::SUCCESS, "card {what} failed");
        Ok(())
    };
    let issuer = || IssuerArg {
        issuer_dir: dir.join("issuer"),
    };
    let (bobs_card, alices_card) = (CardId::from_bytes([0xb0; 8]), CardId::from_bytes([0xa1; 8]));
    for id in [bobs_card, alices_card] {
        card(
            "issue",
            CardCommand::Issue {
                card: id,
                max: Amount::from_minor(50_000),
                days: 365,
                suite: SuiteArg::Tdes,
            },
        )?;
    }
    card(
        "from-purse",
        CardCommand::FromPurse {
            card: bobs_card,
            amount: Amount::from_minor(100),
            issuer: issuer(),
            purse: dir.join("bob.purse"),
            transfer: None,
        },
    )?;
    card(
        "pay",
        CardCommand::Pay {
            card: bobs_card,
            amount: Amount::from_minor(25),
            psam: PsamId([0x5a; 8]),
            merchant: BankAccount::new("bookshop-card-sales")?,
        },
    )?;
    card(
        "transfer",
        CardCommand::Transfer {
            from: bobs_card,
            to: alices_card,
            amount: Amount::from_minor(50),
            issuer: issuer(),
            purse: None,
            transfer: None,
        },
    )?;
    card(
        "to-purse",
        CardCommand::ToPurse {
            card: alices_card,
            amount: Amount::from_minor(50),
            issuer: issuer(),
            purse: dir.join("alice.purse"),
            transfer: None,
        },
    )?;
    card("clear", CardCommand::Clear)
}

/// The bookshop's merchant server over its purse, with `extra` items.
fn serve_shop(
    purse: &Arc<Purse>,
    account: &BankAccount,
    extra: Vec<CatalogItem>,
) -> anyhow::Result<ServerHandle> {
    let mut catalog = vec![
        item("book", "A book", 500, None),
        item("tea", "A cup of tea", 250, Some(CollectOption::Aggregate)),
        item(
            "map",
            "A map",
            200,
            Some(CollectOption::Redeem {
                bank_account: account.clone(),
            }),
        ),
        item("postcard", "A postcard", 100, None),
    ];
    catalog.extend(extra);
    serve_merchant(
        &MerchantConfig {
            server: demo_server()?,
            shop_name: "The Demo Bookshop".into(),
            catalog,
            collect: CollectOption::Refresh,
            client: demo_client()?,
        },
        purse.clone(),
    )
    .context("starting the merchant server")
}

/// The demo's TLS: an authority made for this run (as `issuer init`
/// makes one), and the certificate for 127.0.0.1 it issues to the demo's
/// servers; every client pins that authority.
struct DemoTls {
    ca: IssuerCa,
    /// The authority's certificate, as `varietycash card` reads it from
    /// the issuer's directory.
    ca_pem: String,
    identity: TlsIdentity,
}

fn demo_tls() -> anyhow::Result<&'static DemoTls> {
    static TLS: OnceLock<DemoTls> = OnceLock::new();
    if let Some(tls) = TLS.get() {
        return Ok(tls);
    }
    let authority = TlsAuthority::generate().context("making the demo's TLS authority")?;
    let identity = authority
        .issue(&["127.0.0.1".to_owned(), "localhost".to_owned()])
        .and_then(|issued| issued.identity())
        .context("issuing the demo servers' certificate")?;
    let ca = authority.ca().context("the demo's TLS authority")?;
    let ca_pem = authority.cert_pem().to_owned();
    let _ = TLS.set(DemoTls {
        ca,
        ca_pem,
        identity,
    });
    TLS.get().context("the demo's TLS")
}

/// A client of the demo's servers: HTTPS, the demo's authority pinned.
fn demo_client() -> anyhow::Result<ClientConfig> {
    Ok(ClientConfig::pinned(demo_tls()?.ca.clone()))
}

/// A server of the demo: loopback, HTTPS with the demo's certificate.
fn demo_server() -> anyhow::Result<ServerConfig> {
    let mut server = ServerConfig::loopback();
    server.tls = Some(demo_tls()?.identity.clone());
    Ok(server)
}

fn step(what: &str, line: String) {
    println!("  {what:<14} {line}");
}

fn new_purse(
    dir: &Path,
    name: &str,
    suite: SuiteId,
    issuer: &IssuerInfo,
) -> anyhow::Result<Arc<Purse>> {
    let profile = PurseProfile::generate(ParticipantId::new(name)?, suite, RSA_BITS)
        .with_context(|| format!("generating {name}'s key"))?;
    let path = dir.join(format!("{name}.purse"));
    let purse = Purse::create(
        &path,
        &profile,
        Some(issuer),
        super::common::new_purse_key()?,
    )
    .with_context(|| format!("creating {}", path.display()))?;
    Ok(Arc::new(purse))
}

fn account_for(
    operator: &IssuerClient,
    wallet: &Wallet,
    balance: Amount,
) -> anyhow::Result<BankAccount> {
    let account = BankAccount::new(format!("ACH-{}", wallet.id().as_str()))?;
    operator
        .open_bank_account(&account, balance)
        .context("opening a bank account")?;
    Ok(account)
}

fn item(sku: &str, title: &str, minor: u64, collect: Option<CollectOption>) -> CatalogItem {
    CatalogItem {
        sku: sku.into(),
        title: title.into(),
        price: Amount::from_minor(minor),
        collect,
    }
}

fn line(count: u32, minor: u64) -> anyhow::Result<Denomination> {
    Ok(Denomination {
        count,
        value: Amount::from_minor(minor),
    })
}

/// The paper's example: (2, $2.50), (1, $1.25), (3, $2).
fn paper_spec() -> anyhow::Result<CoinSpec> {
    Ok(CoinSpec::new(vec![
        line(2, 250)?,
        line(1, 125)?,
        line(3, 200)?,
    ])?)
}

fn bought(outcome: PurchaseOutcome) -> anyhow::Result<Vec<Coin>> {
    match outcome {
        PurchaseOutcome::Issued(coins) => Ok(coins),
        PurchaseOutcome::Rejected(r) => bail!("the purchase was refused: {:?}", r.reason),
        PurchaseOutcome::Pending(tx) => bail!("the purchase {tx} did not settle"),
    }
}

fn expect_paid(outcome: &PayerOutcome, what: &str) -> anyhow::Result<()> {
    match outcome {
        PayerOutcome::Paid {
            receipt_verified: true,
        } => Ok(()),
        PayerOutcome::Paid { .. } => bail!("{what}: paid, but the receipt did not verify"),
        PayerOutcome::Rejected { reason, .. } => bail!("{what}: refused ({reason:?})"),
    }
}

fn holdings(purse: &Purse) -> anyhow::Result<Amount> {
    Ok(purse.balance()?.holdings()?)
}

fn values(coins: &[Coin]) -> String {
    coins
        .iter()
        .map(|c| c.value().to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The purse's available coins of `value`.
fn coins_of(purse: &Purse, value: Amount) -> anyhow::Result<Vec<Coin>> {
    Ok(purse
        .coins()?
        .into_iter()
        .filter(|c| c.state == CoinState::Available && c.coin.value() == value)
        .map(|c| c.coin)
        .collect())
}

fn largest_available(purse: &Purse, now: Timestamp) -> anyhow::Result<Coin> {
    purse
        .spendable(now)?
        .into_iter()
        .max_by_key(Coin::value)
        .context("no coin to change")
}

/// Pays a new invoice for `sku` with `coins` straight through the protocol,
/// bypassing the purse that knows better (it would never send a spent,
/// revoked or expired coin), as a cheat would. Returns the verified
/// statement's reason and how many coins it names.
fn pay_directly(
    purse: &Purse,
    issuer: &IssuerInfo,
    shop_url: &str,
    sku: &str,
    coins: Vec<Coin>,
    now: Timestamp,
) -> anyhow::Result<(RejectReason, usize)> {
    let spent = coins;
    let profile = purse.profile()?;
    let merchant = MerchantClient::new(shop_url, demo_client()?)?;
    let invoice = merchant.invoice(sku, &profile.participant)?;
    let (payer, send) = PaymentPayer::pay(
        profile.suite,
        &issuer.key()?,
        &issuer.issuer,
        &profile.participant,
        &invoice,
        spent.clone(),
        now,
    )?;
    let result = merchant.pay(&invoice.tid_py, &send)?;
    match payer.on_result(&result)? {
        PayerOutcome::Rejected {
            reason, bad_coins, ..
        } => {
            let ours: Vec<_> = spent.iter().map(Coin::id).collect();
            ensure!(
                !bad_coins.is_empty() && bad_coins.iter().all(|c| ours.contains(c)),
                "the statement names coins that were not ours"
            );
            Ok((reason, bad_coins.len()))
        }
        PayerOutcome::Paid { .. } => bail!("a payment with a bad coin was accepted"),
    }
}
