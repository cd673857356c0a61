//! Shared helpers of the issuer's tests: an issuer in a temporary directory
//! with a simulated bank and a hand-driven clock, participants with keys,
//! and each flow driven by the protocol crate's client state machines.

#![allow(dead_code, clippy::expect_used)]

use ledger::Clock;
use ledger::fault::{FaultPlan, FaultyFile, FaultyStore, StoreFault};
use ledger::{RedbOptions, RedbStore};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ledger::{Amount, BankAccount, Coin, CoinSpec, Denomination, ParticipantId, Role, Timestamp};
use protocol::crypto::{PublicKey, SecretKey};
use protocol::flows::{
    PayeeAwaitingIssuance, PayeeOutcome, PaymentPayee, PaymentPayer, PurchaseAwaitingIssuance,
    PurchaseClient, PurchaseUpdate, RefundClient, RegistrationClient, enrollment_request,
};
use protocol::wire::payment::{
    Invoice, PDesc, PaymentIssuance1, SendCoins, VOption, ValidationRequest,
};
use protocol::wire::purchase::{PurchaseIssuance1, WDesc};
use protocol::wire::refund::RefundRequest;
use vc_actors::SimulatedBank;
use vc_actors::{IssuerConfig, IssuerCore};

pub use ledger::testkit::ManualClock;

/// Participant keys of the issuers' default suite, generated once per test
/// binary.
pub fn key(n: usize) -> &'static SecretKey {
    static KEYS: OnceLock<Vec<SecretKey>> = OnceLock::new();
    &KEYS.get_or_init(|| {
        let defaults = IssuerConfig::new("unused");
        (0..KEYS_N)
            .map(|_| SecretKey::generate_for(defaults.suite, defaults.rsa_bits).expect("keygen"))
            .collect()
    })[n]
}

/// How many participant keys [`key`] has.
const KEYS_N: usize = 6;

/// One participant: identity, key, bank account.
#[derive(Clone)]
pub struct Who {
    pub id: ParticipantId,
    pub sk: &'static SecretKey,
    pub account: BankAccount,
}

impl Who {
    pub fn new(name: &str, key_idx: usize) -> Who {
        let who = Who {
            id: ParticipantId::new(name).expect("valid id"),
            sk: key(key_idx),
            account: BankAccount::new(format!("acct-{name}")).expect("valid account"),
        };
        keys_by_id()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(who.id.clone(), who.sk);
        who
    }
}

/// Every participant's key, by id, so that a payee's ValidationRequest can
/// be signed knowing only its id.
fn keys_by_id()
-> &'static std::sync::Mutex<std::collections::HashMap<ParticipantId, &'static SecretKey>> {
    static KEYS: std::sync::OnceLock<
        std::sync::Mutex<std::collections::HashMap<ParticipantId, &'static SecretKey>>,
    > = std::sync::OnceLock::new();
    KEYS.get_or_init(Default::default)
}

/// The key of participant `id` (made by [`Who::new`]).
pub fn key_of(id: &ParticipantId) -> &'static SecretKey {
    keys_by_id()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(id)
        .copied()
        .expect("a participant made by Who::new")
}

pub fn spec(lines: &[(u32, u64)]) -> CoinSpec {
    CoinSpec::new(
        lines
            .iter()
            .map(|&(count, v)| Denomination {
                count,
                value: Amount::from_minor(v),
            })
            .collect(),
    )
    .expect("valid spec")
}

/// An issuer in a temporary directory.
pub struct Harness {
    pub dir: tempfile::TempDir,
    pub clock: Arc<ManualClock>,
    bank: Option<Arc<SimulatedBank>>,
    pub settle_delay: Duration,
    pub core: Option<IssuerCore>,
    /// The registry's and card agency's tables, if not their files.
    pub side_tables: Option<Arc<dyn ledger::KvStore>>,
}

impl Harness {
    pub fn new() -> Harness {
        Harness::with_settle_delay(Duration::ZERO)
    }

    pub fn with_settle_delay(settle_delay: Duration) -> Harness {
        Harness::with(settle_delay, None)
    }

    /// An issuer keeping its registry and card agency in `tables`.
    pub fn with_side_tables(tables: Arc<dyn ledger::KvStore>) -> Harness {
        Harness::with(Duration::ZERO, Some(tables))
    }

    /// An issuer keeping its tables in `tables`, whose bank settles debits
    /// after `settle_delay`.
    pub fn with_settle_delay_and_side_tables(
        settle_delay: Duration,
        tables: Arc<dyn ledger::KvStore>,
    ) -> Harness {
        Harness::with(settle_delay, Some(tables))
    }

    fn with(settle_delay: Duration, side_tables: Option<Arc<dyn ledger::KvStore>>) -> Harness {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = Arc::new(ManualClock::at(Timestamp(1_800_000_000)));
        let bank = Arc::new(
            SimulatedBank::open(dir.path().join("bank.redb"), settle_delay).expect("bank"),
        );
        let mut h = Harness {
            dir,
            clock,
            bank: Some(bank),
            settle_delay,
            core: None,
            side_tables,
        };
        h.start();
        h
    }

    pub fn config(&self) -> IssuerConfig {
        let mut config = IssuerConfig::new(self.dir.path().join("issuer"));
        config.n_shards = 4;
        config.clock = self.clock.clone();
        config.coin_lifetime_secs = 1000;
        config.grace_secs = 500;
        config.epoch_period_secs = 400;
        config.side_tables = self.side_tables.clone();
        config
    }

    fn start(&mut self) {
        self.core =
            Some(IssuerCore::open(self.config(), self.bank().clone()).expect("issuer opens"));
    }

    /// The issuer's log file.
    pub fn log_file(&self) -> std::path::PathBuf {
        self.config().dir.join("log.redb")
    }

    /// Restarts the issuer writing its log to `log` (a wrapper around its
    /// log file, such as [`Harness::faulty_log`]).
    pub fn restart_on_log(&mut self, log: Arc<dyn ledger::EventStore>) {
        self.core = None;
        let mut config = self.config();
        config.log_store = Some(log);
        self.core = Some(IssuerCore::open(config, self.bank().clone()).expect("issuer opens"));
    }

    /// The issuer's log file, opened as the issuer opens it, under a wrapper
    /// that stops dead as `plan` says (on a `FaultyFile` for a failed
    /// fsync). Stops the issuer first: one handle opens a redb file.
    pub fn faulty_log(&mut self, plan: &Arc<FaultPlan>) -> Arc<dyn ledger::EventStore> {
        self.core = None;
        let path = self.log_file();
        let store = match plan.fault() {
            StoreFault::FsyncFails => {
                let file = std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(&path)
                    .expect("log file");
                let backend = FaultyFile::new(file, plan.clone()).expect("backend");
                RedbStore::open_on_backend(backend, RedbOptions::default()).expect("log opens")
            }
            _ => RedbStore::open(&path).expect("log opens"),
        };
        Arc::new(FaultyStore::new(store, plan.clone()))
    }

    /// Stops the issuer (and the bank) and starts both again from their files.
    pub fn restart(&mut self) {
        self.core = None;
        // redb lets one handle open a file: drop ours before reopening.
        self.bank = None;
        self.bank = Some(Arc::new(
            SimulatedBank::open(self.dir.path().join("bank.redb"), self.settle_delay)
                .expect("bank reopens"),
        ));
        self.start();
    }

    pub fn bank(&self) -> &Arc<SimulatedBank> {
        self.bank.as_ref().expect("bank open")
    }

    pub fn core(&self) -> &IssuerCore {
        self.core.as_ref().expect("issuer running")
    }

    pub fn pk_i(&self) -> PublicKey {
        self.core().public_key()
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Registers `who` and opens its bank account with `funds`.
    pub fn register(&self, who: &Who, funds: u64) {
        let (client, req) = RegistrationClient::start(who.id.clone(), who.sk);
        let cert = self.core().register(&req).expect("registered");
        client
            .on_certificate(&self.pk_i(), cert, self.now())
            .expect("certificate checks");
        self.bank()
            .open_account(&who.account, Amount::from_minor(funds))
            .expect("bank account");
    }

    /// Enrolls `who` for `role` and has the operator approve it.
    pub fn enroll(&self, who: &Who, role: Role) {
        let req = enrollment_request(
            self.core().suite(),
            who.sk,
            &self.pk_i(),
            who.id.clone(),
            role,
            who.account.clone(),
            self.now(),
        )
        .expect("enrollment request");
        self.core()
            .request_enrollment(&req)
            .expect("enrollment recorded");
        self.core()
            .approve_enrollment(&who.id, role)
            .expect("enrollment approved");
    }

    /// A registered purchaser with `funds` in the bank.
    pub fn purchaser(&self, name: &str, key_idx: usize, funds: u64) -> Who {
        let who = Who::new(name, key_idx);
        self.register(&who, funds);
        self.enroll(&who, Role::CoinPurchaser);
        who
    }

    /// WRequest1 alone, as the issuer answers it.
    pub fn wrequest1(
        &self,
        who: &Who,
    ) -> Result<protocol::wire::purchase::WRequest2, vc_actors::IssuerError> {
        let core = self.core();
        let (_, w1) = PurchaseClient::start(
            core.suite(),
            who.sk,
            who.id.clone(),
            &self.pk_i(),
            core.now(),
        )
        .expect("wrequest1");
        core.wrequest1(&w1)
    }

    /// WRequest1..3; returns the purchaser's state and the first Issuance1.
    pub fn start_purchase(
        &self,
        who: &Who,
        spec: CoinSpec,
        anonymous: bool,
    ) -> (PurchaseAwaitingIssuance, PurchaseIssuance1) {
        let core = self.core();
        let (state, w1) = PurchaseClient::start(
            core.suite(),
            who.sk,
            who.id.clone(),
            &self.pk_i(),
            core.now(),
        )
        .expect("wrequest1");
        let w2 = core.wrequest1(&w1).expect("wrequest2");
        let amount = spec.total().expect("total");
        let w_desc = WDesc {
            spec,
            amount,
            bank_account: who.account.clone(),
            anonymous,
        };
        let (awaiting, w3) = state
            .on_wrequest2(who.sk, core.id(), &w2, w_desc)
            .expect("wrequest3");
        let iss1 = core.wrequest3(&w3).expect("issuance1");
        (awaiting, iss1)
    }

    /// A whole purchase that settles at once; returns the coins.
    pub fn buy(&self, who: &Who, spec: CoinSpec) -> Vec<Coin> {
        let (awaiting, iss1) = self.start_purchase(who, spec, false);
        match awaiting.on_issuance1(&iss1).expect("issuance1 opens") {
            PurchaseUpdate::Issued { coins, ack } => {
                self.core().purchase_issuance2(&ack).expect("ack");
                coins
            }
            other => panic!("purchase did not settle: {other:?}"),
        }
    }

    /// Invoice and SendCoins of a payment of `coins` from `payer` to `payee`.
    pub fn send_coins(
        &self,
        payer: &Who,
        payee: &Who,
        coins: Vec<Coin>,
    ) -> (PaymentPayee, PaymentPayer, Invoice, SendCoins) {
        let core = self.core();
        let amount = Amount::checked_sum(coins.iter().map(Coin::value)).expect("sum");
        let (payee_state, invoice) = PaymentPayee::invoice(
            payee.id.clone(),
            payer.id.clone(),
            core.id().clone(),
            PDesc::new("a book").expect("text"),
            amount,
            None,
        );
        let (payer_state, send) = PaymentPayer::pay(
            core.suite(),
            &self.pk_i(),
            core.id(),
            &payer.id,
            &invoice,
            coins,
            self.now(),
        )
        .expect("send coins");
        (payee_state, payer_state, invoice, send)
    }

    /// The secret key of `id`: the one of [`key`]'s keys whose public half
    /// this issuer registered for `id` (tests of one binary share names
    /// with other keys), or the key [`Who::new`] gave it.
    pub fn key_registered_for(&self, id: &ParticipantId) -> &'static SecretKey {
        let registered = self
            .core()
            .participant(id)
            .expect("registry")
            .map(|p| p.public_key);
        registered
            .and_then(|public| (0..KEYS_N).map(key).find(|k| k.public() == public))
            .unwrap_or_else(|| key_of(id))
    }

    /// The payee's ValidationRequest for `send` with `option`.
    pub fn validation(
        &self,
        payee_state: &PaymentPayee,
        send: &SendCoins,
        option: VOption,
    ) -> (PayeeAwaitingIssuance, ValidationRequest) {
        let sk_py = self.key_registered_for(&payee_state.invoice_sent().id_py);
        payee_state
            .on_send_coins(
                self.core().suite(),
                &self.pk_i(),
                sk_py,
                send.clone(),
                option,
            )
            .expect("validation request")
    }

    /// A whole payment; returns the payee's outcome (ack sent for coins).
    pub fn pay(&self, payer: &Who, payee: &Who, coins: Vec<Coin>, option: VOption) -> PayeeOutcome {
        let (payee_state, _payer_state, _inv, send) = self.send_coins(payer, payee, coins);
        let (awaiting, vreq) = self.validation(&payee_state, &send, option);
        let iss1 = self.core().validate(&vreq).expect("issuance1");
        let outcome = awaiting
            .on_issuance1(payee.sk, &iss1)
            .expect("issuance1 opens");
        if let PayeeOutcome::Coins { ack, .. } = &outcome {
            self.core().payment_issuance2(ack).expect("ack");
        }
        outcome
    }

    /// Opens `iss1` as `payee` expecting coins.
    pub fn coins_of(
        &self,
        awaiting: &PayeeAwaitingIssuance,
        payee: &Who,
        iss1: &PaymentIssuance1,
    ) -> Vec<Coin> {
        match awaiting.on_issuance1(payee.sk, iss1).expect("opens") {
            PayeeOutcome::Coins { coins, .. } => coins,
            other => panic!("expected coins, got {other:?}"),
        }
    }

    /// Conservation, computed from the log alone: every batch balances, the
    /// running equation holds, and the unspent coins the shards hold are
    /// exactly the outstanding e-money the log says.
    /// `who`'s refund request, and the client that opens the answer.
    pub fn refund_request(&self, who: &Who) -> (RefundClient, RefundRequest) {
        RefundClient::start(
            self.core().suite(),
            who.sk,
            &self.pk_i(),
            self.core().id().clone(),
            who.id.clone(),
            self.now(),
        )
        .expect("refund request")
    }

    pub fn assert_conserved(&self) {
        let totals = self.core().audit_conservation().expect("log audits");
        totals.check_equation().expect("conservation equation");
        assert_eq!(
            totals.outstanding,
            self.core().unspent_value() as i128,
            "shards and log disagree on outstanding e-money"
        );
        assert_eq!(totals, self.core().totals());
        assert_eq!(
            self.core().n_reserved(),
            0,
            "a reservation outlived its transaction"
        );
    }
}

impl Harness {
    /// Stops the issuer after catching its coin-status checkpoint up, and
    /// runs the auditor over its files (the log, and the coin-status file
    /// as a projection check) as of the harness's clock, which need not be
    /// today.
    /// [`Harness::stop_and_audit`], whose every rule must hold (the
    /// report's text if one does not).
    pub fn stop_and_audit_holding(&mut self) -> replay::AuditReport {
        let report = self.stop_and_audit();
        assert_eq!(
            report.outcome,
            replay::Outcome::Holds,
            "{}",
            report.to_text()
        );
        report
    }

    pub fn stop_and_audit(&mut self) -> replay::AuditReport {
        self.core()
            .checkpoint_coin_status()
            .expect("coin-status checkpoint");
        // The auditor opens the files itself: the issuer must let go of them.
        self.core = None;
        let dir = self.dir.path().join("issuer");
        let mut opts = replay::AuditOptions::new(dir.join("log.redb"));
        opts.now = Some(self.now());
        opts.projection_checks = vec![Box::new(replay::CoinStatusFile(
            dir.join("coin-status.redb"),
        ))];
        replay::run_audit(opts).expect("the audit runs")
    }
}

pub fn refresh(total: u64) -> VOption {
    VOption::Refresh {
        spec: spec(&[(1, total)]),
    }
}
