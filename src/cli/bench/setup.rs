//! The system under test: an issuer (durable redb log, fsync on) with a
//! simulated bank that settles at once, served over loopback HTTP, and the
//! participants of the load: a purchaser who buys every coin through the
//! real purchase flow (W1..W3, Issuance2), and payees registered over HTTP.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use actors::IssuerConfig;
use actors::SimulatedBank;
use anyhow::Context;
use client::{
    ClientConfig, IssuerClient, NonceStore, OperatorAuth, OperatorKey, ServerConfig, ServerHandle,
};
use gateway::IssuerRuntime;
use ledger::{Amount, BankAccount, Coin, CoinSpec, Denomination, ParticipantId, Role, Timestamp};
use protocol::crypto::{PublicKey, SecretKey, SuiteId};
use protocol::flows::{PurchaseClient, PurchaseUpdate, RegistrationClient, enrollment_request};
use protocol::wire::purchase::WDesc;

/// Coin shards of the issuer under test.
const N_SHARDS: u16 = 16;
/// Most coins bought in one purchase (a transaction's coin limit).
const COINS_PER_PURCHASE_MAX: u32 = 1024;
/// Distinct payee keys; payees share them (each has its own identity) so
/// that setting up many clients does not cost one RSA key generation each.
const PAYEE_KEYS_N: usize = 2;
/// Polls of a purchase before giving up (the housekeeper settles every 250 ms).
const PURCHASE_POLLS_MAX: u32 = 400;
const PURCHASE_POLL_INTERVAL_MS: u64 = 25;
/// What the purchaser's bank account holds, in minor units.
const PURCHASER_FUNDS_MINOR: u64 = 1_000_000_000;
/// Value of every coin of the benchmark, in minor units.
pub const COIN_VALUE_MINOR: u64 = 1;

/// Where the issuer in `dir` keeps its RSA key (PKCS#8).
pub fn issuer_key_path(dir: &Path) -> PathBuf {
    dir.join("issuer.key")
}

/// Group-commit counters of the issuer at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub struct CommitCounts {
    pub log: actors::LogCommitStats,
    pub sessions: actors::SessionCommitStats,
}

impl CommitCounts {
    /// What happened between `earlier` and `self` over `secs` seconds, as a
    /// line of text.
    pub fn since(&self, earlier: &CommitCounts, secs: f64) -> String {
        let commits = self.log.commits.saturating_sub(earlier.log.commits);
        let batches = self.log.batches.saturating_sub(earlier.log.batches);
        let s_commits = self
            .sessions
            .commits
            .saturating_sub(earlier.sessions.commits);
        let s_writes = self.sessions.writes.saturating_sub(earlier.sessions.writes);
        let per = |n: u64, d: u64| if d == 0 { 0.0 } else { n as f64 / d as f64 };
        let secs = secs.max(f64::MIN_POSITIVE);
        format!(
            "group commit: log {commits} commits ({:.1}/s), {:.2} batches per commit; sessions {s_commits} commits ({:.1}/s), {:.2} writes per commit",
            commits as f64 / secs,
            per(batches, commits),
            s_commits as f64 / secs,
            per(s_writes, s_commits),
        )
    }
}

/// What one client thread starts with: a payer's identity and coins, and a
/// registered payee with its key.
pub struct ClientKit {
    pub payer: ParticipantId,
    pub payee: ParticipantId,
    pub sk_py: Arc<SecretKey>,
    pub coins: Vec<Coin>,
}

/// The issuer under test and how to reach it.
pub struct BenchIssuer {
    pub url: String,
    pub pk_i: PublicKey,
    pub id_i: ParticipantId,
    pub suite: SuiteId,
    rsa_bits: usize,
    bank: Arc<SimulatedBank>,
    /// Signs the setup's operator requests (the gateway accepts it).
    operator_key: OperatorKey,
    gateway: Option<ServerHandle>,
    runtime: Option<IssuerRuntime>,
}

impl BenchIssuer {
    /// Starts the issuer in `dir` (a fresh one: keys are generated) and its
    /// gateway on 127.0.0.1; its log in `log_store` if given, else in
    /// `dir/log.redb`.
    pub fn start(
        dir: &Path,
        suite: SuiteId,
        rsa_bits: usize,
        log_store: Option<Arc<dyn ledger::EventStore>>,
    ) -> anyhow::Result<BenchIssuer> {
        std::fs::create_dir_all(dir)?;
        let bank = Arc::new(
            SimulatedBank::open(dir.join("bank.redb"), Duration::ZERO)
                .context("opening the simulated bank")?,
        );
        let mut config = IssuerConfig::new(dir);
        config.n_shards = N_SHARDS;
        config.suite = suite;
        config.rsa_bits = rsa_bits;
        config.log_store = log_store;
        let runtime = IssuerRuntime::start(config, bank.clone()).context("starting the issuer")?;
        let operator_key = OperatorKey::generate().context("generating the operator key")?;
        let mut server = ServerConfig::loopback();
        // The load generator is one address: the benchmark measures the
        // issuer, not the per-source limits.
        server.per_source = client::SourceLimits::unlimited();
        server.operators = Arc::new(
            OperatorAuth::new(
                vec![("bench operator".into(), operator_key.public())],
                NonceStore::Memory,
            )
            .context("the operator keys")?,
        );
        let gateway = gateway::serve_issuer(&server, runtime.issuer().clone())
            .context("starting the issuer's gateway")?;
        let core = runtime.issuer().core().clone();
        Ok(BenchIssuer {
            url: gateway.url(),
            pk_i: core.public_key(),
            id_i: core.id().clone(),
            suite: core.suite(),
            rsa_bits,
            bank,
            operator_key,
            gateway: Some(gateway),
            runtime: Some(runtime),
        })
    }

    /// An HTTP client of the gateway that does not retry: a failure is
    /// counted, not hidden.
    pub fn client(&self) -> anyhow::Result<IssuerClient> {
        let config = ClientConfig {
            attempts_max: 1,
            ..ClientConfig::default()
        };
        Ok(IssuerClient::new(&self.url, config)?)
    }

    /// Registers a purchaser and `n_clients` payees over HTTP, buys
    /// `n_clients * coins_per_client` coins through the purchase flow, and
    /// deals them out.
    pub fn clients(
        &self,
        n_clients: usize,
        coins_per_client: usize,
    ) -> anyhow::Result<Vec<ClientKit>> {
        let client = self.client()?;
        let buyer_sk = SecretKey::generate_for(self.suite, self.rsa_bits)?;
        let buyer = ParticipantId::new("bench-buyer")?;
        let account = BankAccount::new("bench-buyer-account")?;
        self.bank
            .open_account(&account, Amount::from_minor(PURCHASER_FUNDS_MINOR))?;
        self.register(&client, &buyer, &buyer_sk)?;
        let enrollment = enrollment_request(
            self.suite,
            &buyer_sk,
            &self.pk_i,
            buyer.clone(),
            Role::CoinPurchaser,
            account.clone(),
            Timestamp::now(),
        )?;
        client.enroll(&enrollment)?;
        client
            .clone()
            .with_operator(self.operator_key.clone())
            .approve_enrollment(&buyer, Role::CoinPurchaser)?;

        let payee_keys: Vec<Arc<SecretKey>> = (0..PAYEE_KEYS_N)
            .map(|_| SecretKey::generate_for(self.suite, self.rsa_bits).map(Arc::new))
            .collect::<Result<_, _>>()?;
        let mut coins = Vec::with_capacity(n_clients * coins_per_client);
        let mut n_left = u32::try_from(n_clients * coins_per_client)?;
        while n_left > 0 {
            let n = n_left.min(COINS_PER_PURCHASE_MAX);
            coins.extend(self.buy(&client, &buyer, &buyer_sk, &account, n)?);
            n_left -= n;
        }
        let mut kits = Vec::with_capacity(n_clients);
        for i in 0..n_clients {
            let payee = ParticipantId::new(format!("bench-payee-{i}"))?;
            let sk_py = payee_keys[i % PAYEE_KEYS_N].clone();
            self.register(&client, &payee, &sk_py)?;
            let Some(first) = coins.len().checked_sub(coins_per_client) else {
                anyhow::bail!("the purchases issued fewer coins than asked for");
            };
            let mine = coins.split_off(first);
            kits.push(ClientKit {
                payer: ParticipantId::new(format!("bench-payer-{i}"))?,
                payee,
                sk_py,
                coins: mine,
            });
        }
        Ok(kits)
    }

    fn register(
        &self,
        client: &IssuerClient,
        id: &ParticipantId,
        sk: &SecretKey,
    ) -> anyhow::Result<()> {
        let (registration, request) = RegistrationClient::start(id.clone(), sk);
        let cert = client.register(&request)?;
        registration.on_certificate(&self.pk_i, cert, Timestamp::now())?;
        Ok(())
    }

    /// WRequest1..3 over HTTP for `n` coins, polls until the debit settles,
    /// then acknowledges.
    fn buy(
        &self,
        client: &IssuerClient,
        buyer: &ParticipantId,
        sk: &SecretKey,
        account: &BankAccount,
        n: u32,
    ) -> anyhow::Result<Vec<Coin>> {
        let spec = CoinSpec::new(vec![Denomination {
            count: n,
            value: Amount::from_minor(COIN_VALUE_MINOR),
        }])?;
        let (state, w1) =
            PurchaseClient::start(self.suite, sk, buyer.clone(), &self.pk_i, Timestamp::now())?;
        let w2 = client.wrequest1(&w1)?;
        let w_desc = WDesc {
            amount: spec.total()?,
            spec,
            bank_account: account.clone(),
            anonymous: true,
        };
        let (awaiting, w3) = state.on_wrequest2(sk, &self.id_i, &w2, w_desc)?;
        let mut issuance = client.wrequest3(&w3)?;
        for _ in 0..PURCHASE_POLLS_MAX {
            match awaiting.on_issuance1(&issuance)? {
                PurchaseUpdate::Issued { coins, ack } => {
                    client.purchase_ack(&ack)?;
                    return Ok(coins);
                }
                PurchaseUpdate::Pending => {
                    std::thread::sleep(Duration::from_millis(PURCHASE_POLL_INTERVAL_MS));
                    issuance = client.purchase_poll(&awaiting.poll())?;
                }
                PurchaseUpdate::Rejected(r) => anyhow::bail!("the purchase was rejected: {r:?}"),
            }
        }
        anyhow::bail!("the purchase did not settle")
    }

    /// Mean time of one HTTP/1.1 round trip to the gateway on a kept-alive
    /// connection (`GET /health`), in milliseconds.
    pub fn http_round_trip_ms(&self, n: u32) -> anyhow::Result<f64> {
        let client = self.client()?;
        client.health()?;
        let started = std::time::Instant::now();
        for _ in 0..n {
            client.health()?;
        }
        Ok(started.elapsed().as_secs_f64() * 1000.0 / f64::from(n.max(1)))
    }

    /// The issuer's group-commit counters so far: the log's and the
    /// session store's (the same figures `/metrics` shows).
    pub fn commit_counts(&self) -> CommitCounts {
        match &self.runtime {
            Some(runtime) => {
                let core = runtime.issuer().core();
                CommitCounts {
                    log: core.log_commit_stats(),
                    sessions: core.session_commit_stats(),
                }
            }
            None => CommitCounts::default(),
        }
    }

    /// The issuer's stage timings so far (the histograms `/metrics` shows
    /// as `vc_issuer_stage_seconds`).
    pub fn stage_timings(&self) -> Option<actors::TimingsSnapshot> {
        self.runtime
            .as_ref()
            .map(|runtime| runtime.issuer().core().stage_timings().snapshot())
    }

    /// Replays the issuer's log and checks that cash was conserved.
    pub fn check_conservation(&self) -> anyhow::Result<()> {
        let Some(runtime) = &self.runtime else {
            anyhow::bail!("the issuer has stopped");
        };
        let totals = runtime.issuer().core().audit_conservation()?;
        println!(
            "conservation from the log: outstanding {} + aggregates {} = real in {} - real out {}",
            totals.outstanding, totals.aggregates, totals.real_in, totals.real_out
        );
        Ok(())
    }
}

impl Drop for BenchIssuer {
    fn drop(&mut self) {
        if let Some(gateway) = self.gateway.take()
            && let Err(e) = gateway.stop()
        {
            tracing::warn!(error = %e, "stopping the gateway");
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.stop();
        }
    }
}
