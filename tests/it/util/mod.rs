//! What the end-to-end tests share: a whole system on loopback (an issuer
//! with its durable log and the simulated bank behind its gateway, merchant
//! servers over their own purses, coin holders' wallets), all over real
//! HTTP, and the auditor run over the issuer's log once it has stopped.

#![allow(dead_code, clippy::expect_used)]

pub mod books;
pub mod process;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actors::IssuerConfig;
use actors::SimulatedBank;
use client::{
    CatalogItem, ClientConfig, CollectOption, IssuerClient, MerchantConfig, NonceStore,
    OperatorAuth, OperatorKey, PurchaseOutcome, ServerConfig, ServerHandle, Wallet,
};
use gateway::{IssuerRuntime, serve_issuer_with_bank};
use ledger::{Amount, BankAccount, Coin, CoinSpec, Denomination, ParticipantId, Role};
use protocol::crypto::SuiteId;
use purse::{IssuerInfo, Purse, PurseProfile};

/// What each participant's bank account holds unless a test says otherwise.
pub const OPENING_MINOR: u64 = 100_000;

/// The passphrase of every test purse, in process and through the binary
/// (`VC_PURSE_PASSPHRASE`, set by `process`).
pub const PASSPHRASE: &str = "correct horse battery staple";

pub fn passphrase() -> purse::Passphrase {
    purse::Passphrase::new(PASSPHRASE).expect("passphrase")
}

/// A key for a new test purse, at the cheap test cost.
pub fn purse_key() -> purse::PurseKey {
    purse::PurseKey::derive_new(&passphrase(), purse::KdfParams::INSECURE_FAST).expect("key")
}

/// An issuer, its gateway and the simulated bank, on loopback.
pub struct System {
    pub dir: tempfile::TempDir,
    pub bank: Arc<SimulatedBank>,
    pub operator: IssuerClient,
    pub info: IssuerInfo,
    runtime: Option<IssuerRuntime>,
    gateway: Option<ServerHandle>,
    shops: Vec<ServerHandle>,
}

/// A coin holder or merchant: its purse, the wallet over it, its account.
pub struct Member {
    pub purse: Arc<Purse>,
    pub wallet: Wallet,
    pub account: BankAccount,
}

impl Member {
    pub fn id(&self) -> &ParticipantId {
        self.wallet.id()
    }

    pub fn holdings(&self) -> Amount {
        self.purse
            .balance()
            .expect("balance")
            .holdings()
            .expect("sum")
    }
}

impl System {
    pub fn start() -> System {
        let dir = tempfile::tempdir().expect("tempdir");
        let bank = Arc::new(
            SimulatedBank::open(dir.path().join("bank.redb"), Duration::ZERO).expect("bank"),
        );
        let mut config = IssuerConfig::new(dir.path().join("issuer"));
        config.n_shards = 4;
        let runtime = IssuerRuntime::start(config, bank.clone()).expect("issuer starts");
        let operator_key = OperatorKey::generate().expect("operator keygen");
        let mut server = ServerConfig::loopback();
        server.operators = Arc::new(
            OperatorAuth::new(
                vec![("test operator".into(), operator_key.public())],
                NonceStore::Memory,
            )
            .expect("operator keys"),
        );
        let gateway = serve_issuer_with_bank(&server, runtime.issuer().clone(), bank.clone())
            .expect("gateway");
        let operator = IssuerClient::new(&gateway.url(), ClientConfig::default())
            .expect("client")
            .with_operator(operator_key);
        let descriptor = operator.descriptor().expect("descriptor");
        let info = IssuerInfo {
            issuer: descriptor.id_i,
            public_key: descriptor.public_key,
            gateway_url: gateway.url(),
        };
        System {
            dir,
            bank,
            operator,
            info,
            runtime: Some(runtime),
            gateway: Some(gateway),
            shops: Vec::new(),
        }
    }

    /// The running issuer's suite, which its participants' keys and
    /// messages use.
    pub fn suite(&self) -> SuiteId {
        self.runtime
            .as_ref()
            .expect("the issuer runs")
            .issuer()
            .suite()
    }

    /// A new purse for `name`, registered, with a bank account holding
    /// `opening_minor` and enrolled (operator-approved) for `roles`.
    pub fn member(&self, name: &str, roles: &[Role], opening_minor: u64) -> Member {
        let profile =
            PurseProfile::generate(ParticipantId::new(name).expect("id"), self.suite(), 2048)
                .expect("profile");
        let purse = Arc::new(
            Purse::create(
                self.dir.path().join(format!("{name}.purse")),
                &profile,
                Some(&self.info),
                purse_key(),
            )
            .expect("purse"),
        );
        let wallet = Wallet::open(purse.clone(), ClientConfig::default()).expect("wallet");
        let account = BankAccount::new(format!("acct-{name}")).expect("account");
        self.operator
            .open_bank_account(&account, Amount::from_minor(opening_minor))
            .expect("bank account, through the operator route");
        wallet.register().expect("registered");
        for role in roles {
            wallet
                .request_enrollment(*role, account.clone())
                .expect("enrollment requested");
            self.operator
                .approve_enrollment(wallet.id(), *role)
                .expect("enrollment approved");
        }
        Member {
            purse,
            wallet,
            account,
        }
    }

    /// Serves `shop`'s catalog (default collection: refresh); its URL.
    /// Every purse of these tests reaches it from 127.0.0.1, so the
    /// per-client limits are those of a crowd, not of one client.
    pub fn shop(&mut self, shop: &Member, catalog: Vec<CatalogItem>) -> String {
        let server = client::serve_merchant_with_limits(
            &MerchantConfig {
                server: ServerConfig::loopback(),
                shop_name: format!("{} shop", shop.id().as_str()),
                catalog,
                collect: CollectOption::Refresh,
                client: ClientConfig::default(),
            },
            shop.purse.clone(),
            client::ClientLimits {
                orders_open_max: client::constants::ORDERS_OPEN_MAX,
                pay_refusals_max: u32::MAX,
            },
        )
        .expect("merchant server");
        let url = server.url();
        self.shops.push(server);
        url
    }

    /// The running issuer's core (what a bank connector calls into).
    pub fn core(&self) -> Arc<actors::IssuerCore> {
        self.runtime
            .as_ref()
            .expect("the issuer runs")
            .issuer()
            .core()
            .clone()
    }

    /// Whether the running issuer counts the coin unspent.
    pub fn is_unspent(&self, coin: ledger::CoinId) -> bool {
        let runtime = self.runtime.as_ref().expect("the issuer runs");
        runtime.issuer().core().unspent_coin(&coin).is_some()
    }

    pub fn bank_balance(&self, account: &BankAccount) -> Amount {
        self.operator.bank_balance(account).expect("bank balance")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("issuer").join("log.redb")
    }

    /// Stops every server and the issuer, then audits the issuer's log with
    /// its public key, asserting that every rule holds (conservation
    /// first). Returns the report for the test's own figures.
    pub fn stop_and_audit(mut self) -> replay::AuditReport {
        let key = self.info.key().expect("issuer key");
        for shop in self.shops.drain(..) {
            shop.stop().expect("merchant stops");
        }
        if let Some(gateway) = self.gateway.take() {
            gateway.stop().expect("gateway stops");
        }
        if let Some(runtime) = self.runtime.take() {
            // Returns once the log is closed, so the audit may open it.
            runtime.try_stop().expect("the issuer closes its files");
        }
        let mut opts = replay::AuditOptions::new(self.log_path());
        opts.checkpoint_verifier = Some(Box::new(move |msg: &[u8], sig: &[u8]| {
            protocol::checkpoint::verify_signed_bytes(&key, msg, sig)
        }));
        let report = replay::run_audit(opts).expect("the audit runs");
        assert_eq!(
            report.exit_code(),
            0,
            "the auditor found a broken rule:\n{}",
            report.to_text()
        );
        report
            .totals
            .check_equation()
            .expect("conservation: outstanding + aggregates + float = in - out");
        report
    }
}

pub fn item(sku: &str, minor: u64, collect: Option<CollectOption>) -> CatalogItem {
    CatalogItem {
        sku: sku.into(),
        title: format!("item {sku}"),
        price: Amount::from_minor(minor),
        collect,
    }
}

pub fn spec(lines: &[(u32, u64)]) -> CoinSpec {
    CoinSpec::new(
        lines
            .iter()
            .map(|&(count, minor)| Denomination {
                count,
                value: Amount::from_minor(minor),
            })
            .collect(),
    )
    .expect("spec")
}

/// The paper's example purchase: (2, $2.50), (1, $1.25), (3, $2).
pub fn paper_spec() -> CoinSpec {
    spec(&[(2, 250), (1, 125), (3, 200)])
}

/// Buys `spec` and expects the coins.
pub fn buy(member: &Member, spec: CoinSpec) -> Vec<Coin> {
    match member
        .wallet
        .buy(spec, member.account.clone(), false)
        .expect("purchase runs")
    {
        PurchaseOutcome::Issued(coins) => coins,
        other => panic!("purchase not issued: {other:?}"),
    }
}

pub fn minor(amount: Amount) -> i128 {
    i128::from(amount.minor_units())
}

/// `payer` pays `invoice` with `coins` straight through the protocol, past
/// the purse (which would never spend a coin twice): the payer's state and
/// its SendCoins.
pub fn send_coins(
    system: &System,
    payer: &Member,
    invoice: &protocol::wire::payment::Invoice,
    coins: Vec<Coin>,
) -> (
    protocol::flows::PaymentPayer,
    protocol::wire::payment::SendCoins,
) {
    protocol::flows::PaymentPayer::pay(
        system.suite(),
        &system.info.key().expect("issuer key"),
        &system.info.issuer,
        payer.id(),
        invoice,
        coins,
        ledger::Timestamp::now(),
    )
    .expect("send coins")
}
