//! The load generator: client threads, each a payer and a payee, paying
//! with refresh over HTTP through the protocol's state machines (no purse,
//! so the client side stays cheap). The payee's fresh coins are its next
//! payment's coins, so a few coins per client circulate for the whole run.
//! Closed loop (each client one payment at a time) for the peak; paced at a
//! fixed rate, with latency counted from the scheduled start so queueing is
//! not hidden, for latency under load.

use std::fmt;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use ledger::{Amount, CoinSpec, Denomination, ParticipantId, Timestamp};
use protocol::crypto::{PublicKey, SuiteId};
use protocol::flows::{PayeeOutcome, PaymentPayee, PaymentPayer};
use protocol::wire::payment::{PDesc, VOption};

use super::setup::{BenchIssuer, COIN_VALUE_MINOR, ClientKit};
use super::stats::{self, Latencies};

/// Coins in and out of one payment (refresh: as many out as in).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mix {
    pub n_coins: usize,
}

impl Mix {
    pub const ONE_IN_ONE_OUT: Mix = Mix { n_coins: 1 };
    pub const FOUR_IN_FOUR_OUT: Mix = Mix { n_coins: 4 };

    pub fn name(self) -> String {
        format!("{n}-in/{n}-out", n = self.n_coins)
    }

    /// The payment's amount and the refresh spec: `n_coins` coins of the
    /// benchmark's one value.
    pub fn amount_and_spec(self) -> anyhow::Result<(Amount, CoinSpec)> {
        let spec = CoinSpec::new(vec![Denomination {
            count: u32::try_from(self.n_coins)?,
            value: Amount::from_minor(COIN_VALUE_MINOR),
        }])?;
        Ok((spec.total()?, spec))
    }
}

/// Coins a client needs to run payments of `mix` (refresh gives them back).
pub fn coins_needed(mix: Mix) -> usize {
    mix.n_coins
}

/// The clients between phases (their coins change hands each payment).
pub struct Clients {
    kits: Vec<ClientKit>,
    /// Whether payees acknowledge with Issuance2 (the protocol: yes).
    send_acks: bool,
    /// The nice value of the client threads (0: the issuer's priority).
    nice: i32,
}

impl Clients {
    pub fn new(kits: Vec<ClientKit>, send_acks: bool, nice: i32) -> Clients {
        Clients {
            kits,
            send_acks,
            nice,
        }
    }
}

/// What one phase measured.
pub struct PhaseReport {
    label: String,
    n_clients: usize,
    pub n_paid: u64,
    n_coins: u64,
    n_rejected: u64,
    n_failed: u64,
    n_acks_failed: u64,
    first_error: Option<String>,
    elapsed: Duration,
    latencies: Latencies,
    cpu_secs: f64,
    client_cpu_secs: f64,
    commits: String,
    /// The issuer's stage histograms over the phase.
    stages: Option<actors::TimingsSnapshot>,
    /// The client's side of each payment's latency.
    client_side: ClientSide,
    load_average: String,
}

/// Where the client's share of a payment's latency goes, per payment.
#[derive(Default)]
struct ClientSide {
    /// From the scheduled start until the request was sent (paced phase
    /// only: the client thread was late; counted in the latency).
    lag: Latencies,
    /// Building the request: SendCoins and ValidationRequest (two OAEP
    /// encryptions), before the send, outside the latency.
    prepare: Latencies,
    /// POST /v1/validate until its answer is read.
    round_trip: Latencies,
}

impl ClientSide {
    fn merge(&mut self, other: ClientSide) {
        self.lag.merge(other.lag);
        self.prepare.merge(other.prepare);
        self.round_trip.merge(other.round_trip);
    }

    fn finish(&mut self) {
        self.lag.finish();
        self.prepare.finish();
        self.round_trip.finish();
    }
}

impl PhaseReport {
    pub fn payments_per_sec(&self) -> f64 {
        self.n_paid as f64 / self.elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
    }

    /// Cores the load generator's threads kept busy (its own crypto: the
    /// payee's RSA decryption of `K_I`, the payer's and payee's OAEP).
    pub fn client_cores(&self) -> f64 {
        self.client_cpu_secs / self.elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
    }

    /// The load generator's CPU per payment, in milliseconds.
    pub fn client_cpu_ms_per_payment(&self) -> f64 {
        if self.n_paid == 0 {
            return 0.0;
        }
        self.client_cpu_secs * 1000.0 / self.n_paid as f64
    }

    /// The `p` (0..=1) latency of the phase's payments in milliseconds,
    /// from each one's scheduled start when paced.
    pub fn latency_ms(&self, p: f64) -> Option<f64> {
        self.latencies.percentile(p)
    }

    /// CPU of the process outside the load generator's threads (the
    /// issuer's actors, its HTTP workers, the log writer) per payment, in
    /// milliseconds.
    pub fn issuer_cpu_ms_per_payment(&self) -> f64 {
        if self.n_paid == 0 {
            return 0.0;
        }
        (self.cpu_secs - self.client_cpu_secs).max(0.0) * 1000.0 / self.n_paid as f64
    }
}

impl fmt::Display for PhaseReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.elapsed.as_secs_f64().max(f64::MIN_POSITIVE);
        let issuer_cpu = (self.cpu_secs - self.client_cpu_secs).max(0.0);
        writeln!(
            f,
            "e2e {} ({} clients): {} payments in {:.1} s = {:.1} payments/s, {:.1} coins validated/s",
            self.label,
            self.n_clients,
            self.n_paid,
            secs,
            self.payments_per_sec(),
            self.n_coins as f64 / secs
        )?;
        writeln!(
            f,
            "  latency of /v1/validate p50 {} ms, p99 {} ms, p999 {} ms ({} samples)",
            stats::ms(self.latencies.percentile(0.5)),
            stats::ms(self.latencies.percentile(0.99)),
            stats::ms(self.latencies.percentile(0.999)),
            self.latencies.len()
        )?;
        writeln!(
            f,
            "  CPU {:.2} cores busy of {} (issuer + HTTP {:.2}, load-generator threads {:.2}); issuer CPU {:.2} ms per payment",
            self.cpu_secs / secs,
            stats::n_cores(),
            issuer_cpu / secs,
            self.client_cpu_secs / secs,
            self.issuer_cpu_ms_per_payment()
        )?;
        writeln!(f, "  {}", self.commits)?;
        if let Some(stages) = &self.stages {
            write_stages(f, stages, &self.client_side)?;
        }
        write!(
            f,
            "  rejected {}, failed {}, acks failed {}{}; load average {}",
            self.n_rejected,
            self.n_failed,
            self.n_acks_failed,
            self.first_error
                .as_deref()
                .map(|e| format!(" (first error: {e})"))
                .unwrap_or_default(),
            self.load_average
        )
    }
}

/// One line per stage of a payment's latency: the client's side (exact
/// percentiles), then the issuer's histograms (bucket bounds: at most 19%
/// high), means exact.
fn write_stages(
    f: &mut fmt::Formatter<'_>,
    stages: &actors::TimingsSnapshot,
    client: &ClientSide,
) -> fmt::Result {
    writeln!(
        f,
        "  where the latency goes (ms; client side exact, issuer side from its histograms, p50/p99 at most 19% high):"
    )?;
    let mean = |l: &Latencies| l.mean_ms().map(|m| format!("{m:.2}")).unwrap_or("-".into());
    for (name, l) in [
        ("client: late send (paced; counted)", &client.lag),
        ("client: build request (not counted)", &client.prepare),
        ("client: POST /v1/validate", &client.round_trip),
    ] {
        writeln!(
            f,
            "    {name:<34} mean {:>7}  p50 {:>7}  p99 {:>7}",
            mean(l),
            stats::ms(l.percentile(0.5)),
            stats::ms(l.percentile(0.99))
        )?;
    }
    for stage in actors::Stage::ALL {
        let h = stages.stage(stage);
        let what = match stage {
            actors::Stage::LogAppend | actors::Stage::SessionCommit => "per commit",
            _ => "per validation",
        };
        writeln!(
            f,
            "    issuer: {:<26} mean {:>7}  p50 {:>7}  p99 {:>7}  ({} {what})",
            stage.name(),
            h.mean_ms().map(|m| format!("{m:.2}")).unwrap_or("-".into()),
            stats::ms(h.percentile_ms(0.5)),
            stats::ms(h.percentile_ms(0.99)),
            h.count
        )?;
    }
    Ok(())
}

/// What one client thread counted.
#[derive(Default)]
struct ClientTally {
    n_paid: u64,
    n_coins: u64,
    n_rejected: u64,
    n_failed: u64,
    n_acks_failed: u64,
    first_error: Option<String>,
    latencies: Latencies,
    client_side: ClientSide,
    cpu_secs: f64,
}

impl ClientTally {
    fn failed(&mut self, e: impl fmt::Display) {
        self.n_failed += 1;
        if self.first_error.is_none() {
            self.first_error = Some(e.to_string());
        }
    }
}

/// The issuer as every client thread sees it.
#[derive(Clone)]
struct Target {
    pk_i: PublicKey,
    id_i: ParticipantId,
    suite: SuiteId,
    send_acks: bool,
}

/// Runs payments of `mix` from every client for `duration`: closed loop,
/// or paced at `rate` payments/s in all when given.
pub fn run_phase(
    issuer: &BenchIssuer,
    clients: &mut Clients,
    mix: Mix,
    duration: Duration,
    rate: Option<f64>,
) -> anyhow::Result<PhaseReport> {
    let n_clients = clients.kits.len();
    let target = Target {
        pk_i: issuer.pk_i.clone(),
        id_i: issuer.id_i.clone(),
        suite: issuer.suite,
        send_acks: clients.send_acks,
    };
    // Each client paces itself at its share, offset so the sends interleave.
    let interval = rate
        .filter(|r| *r > 0.0)
        .map(|r| Duration::from_secs_f64(n_clients as f64 / r));
    let nice = clients.nice;
    let barrier = Arc::new(Barrier::new(n_clients + 1));
    let mut threads = Vec::with_capacity(n_clients);
    for (i, kit) in clients.kits.drain(..).enumerate() {
        let http = issuer.client()?;
        let target = target.clone();
        let barrier = barrier.clone();
        let offset = interval.map(|iv| iv.mul_f64(i as f64 / n_clients as f64));
        threads.push(
            std::thread::Builder::new()
                .name(format!("bench-client-{i}"))
                .spawn(move || {
                    // Linux keeps a nice value per thread: this one only.
                    if nice != 0
                        && let Err(e) = rustix::process::setpriority_process(None, nice)
                    {
                        tracing::warn!(error = %e, nice, "the load generator keeps its priority");
                    }
                    barrier.wait();
                    let start = Instant::now();
                    let pacing = interval.zip(offset);
                    client_loop(&http, &target, kit, mix, start, duration, pacing)
                })?,
        );
    }
    let commits_before = issuer.commit_counts();
    let stages_before = issuer.stage_timings();
    let cpu_before = stats::process_cpu_secs();
    barrier.wait();
    let started = Instant::now();
    let mut tally = ClientTally::default();
    for thread in threads {
        let (kit, t) = thread
            .join()
            .map_err(|_| anyhow::anyhow!("a client thread panicked"))?;
        clients.kits.push(kit);
        tally.n_paid += t.n_paid;
        tally.n_coins += t.n_coins;
        tally.n_rejected += t.n_rejected;
        tally.n_failed += t.n_failed;
        tally.n_acks_failed += t.n_acks_failed;
        tally.first_error = tally.first_error.or(t.first_error);
        tally.latencies.merge(t.latencies);
        tally.client_side.merge(t.client_side);
        tally.cpu_secs += t.cpu_secs;
    }
    let elapsed = started.elapsed();
    let cpu_secs = stats::process_cpu_secs() - cpu_before;
    tally.latencies.finish();
    tally.client_side.finish();
    let stages = issuer
        .stage_timings()
        .zip(stages_before)
        .map(|(now, then)| now.since(&then));
    let label = match rate {
        Some(r) => format!("{} paced at {r:.1} payments/s", mix.name()),
        None => format!("{} closed loop", mix.name()),
    };
    Ok(PhaseReport {
        label,
        n_clients,
        n_paid: tally.n_paid,
        n_coins: tally.n_coins,
        n_rejected: tally.n_rejected,
        n_failed: tally.n_failed,
        n_acks_failed: tally.n_acks_failed,
        first_error: tally.first_error,
        elapsed,
        latencies: tally.latencies,
        cpu_secs,
        client_cpu_secs: tally.cpu_secs,
        commits: issuer
            .commit_counts()
            .since(&commits_before, elapsed.as_secs_f64()),
        stages,
        client_side: tally.client_side,
        load_average: stats::load_average(),
    })
}

/// One client until `duration` has passed since `start` (or its coins
/// run out); gives its kit back with the coins it holds now.
///
/// Each payment's request is built before it is sent (paced: before its
/// scheduled start, as a payee has its request ready when it sends), so the
/// latency is the issuer's answer, counted from the scheduled start when
/// paced (a late client is not hidden) or from the send.
fn client_loop(
    http: &client::IssuerClient,
    target: &Target,
    mut kit: ClientKit,
    mix: Mix,
    start: Instant,
    duration: Duration,
    pacing: Option<(Duration, Duration)>,
) -> (ClientKit, ClientTally) {
    let cpu_before = stats::thread_cpu_secs();
    let mut tally = ClientTally::default();
    let deadline = start + duration;
    let (amount, spec) = match mix.amount_and_spec() {
        Ok(x) => x,
        Err(e) => {
            tally.failed(e);
            return (kit, tally);
        }
    };
    let mut n_sent: u32 = 0;
    loop {
        let scheduled = pacing.map(|(interval, offset)| start + offset + interval * n_sent);
        if scheduled.is_some_and(|at| at >= deadline)
            || Instant::now() >= deadline
            || kit.coins.len() < mix.n_coins
        {
            break;
        }
        n_sent += 1;
        let coins = kit.coins.split_off(kit.coins.len() - mix.n_coins);
        let began = Instant::now();
        let request = match prepare(target, &kit, coins, amount, &spec) {
            Ok(request) => request,
            Err(e) => {
                tally.failed(e);
                continue;
            }
        };
        let prepared = began.elapsed();
        if let Some(wait) = scheduled.and_then(|at| at.checked_duration_since(Instant::now())) {
            std::thread::sleep(wait);
        }
        match send(http, target, &kit, request, scheduled) {
            Ok(Paid::Coins {
                coins,
                latency,
                lag,
                round_trip,
                ack_ok,
            }) => {
                kit.coins.extend(coins);
                tally.n_paid += 1;
                tally.n_coins += mix.n_coins as u64;
                tally.latencies.record(latency);
                if let Some(lag) = lag {
                    tally.client_side.lag.record(lag);
                }
                tally.client_side.prepare.record(prepared);
                tally.client_side.round_trip.record(round_trip);
                if !ack_ok {
                    tally.n_acks_failed += 1;
                }
            }
            Ok(Paid::Refused(why)) => {
                tally.n_rejected += 1;
                if tally.first_error.is_none() {
                    tally.first_error = Some(why);
                }
            }
            Err(e) => tally.failed(e),
        }
    }
    tally.cpu_secs = stats::thread_cpu_secs() - cpu_before;
    (kit, tally)
}

enum Paid {
    Coins {
        coins: Vec<ledger::Coin>,
        /// From the scheduled start (paced) or the send, to the answer.
        latency: Duration,
        /// Paced: how late the send was against its scheduled start.
        lag: Option<Duration>,
        /// The POST alone.
        round_trip: Duration,
        ack_ok: bool,
    },
    Refused(String),
}

/// A built ValidationRequest and the payee's state waiting for its answer.
struct Prepared {
    awaiting: protocol::flows::PayeeAwaitingIssuance,
    request: protocol::wire::payment::ValidationRequest,
}

/// One payment's request with refresh: invoice, SendCoins (OAEP to the
/// issuer), ValidationRequest (OAEP).
fn prepare(
    target: &Target,
    kit: &ClientKit,
    coins: Vec<ledger::Coin>,
    amount: Amount,
    spec: &CoinSpec,
) -> anyhow::Result<Prepared> {
    let (payee, invoice) = PaymentPayee::invoice(
        kit.payee.clone(),
        kit.payer.clone(),
        target.id_i.clone(),
        PDesc::new("bench")?,
        amount,
        None,
    );
    let (_payer, send) = PaymentPayer::pay(
        target.suite,
        &target.pk_i,
        &target.id_i,
        &kit.payer,
        &invoice,
        coins,
        Timestamp::now(),
    )?;
    let (awaiting, request) = payee.on_send_coins(
        target.suite,
        &target.pk_i,
        &kit.sk_py,
        send,
        VOption::Refresh { spec: spec.clone() },
    )?;
    Ok(Prepared { awaiting, request })
}

/// Sends a prepared request over HTTP; the payee opens Issuance1 and
/// acknowledges with Issuance2.
fn send(
    http: &client::IssuerClient,
    target: &Target,
    kit: &ClientKit,
    prepared: Prepared,
    scheduled: Option<Instant>,
) -> anyhow::Result<Paid> {
    let posted = Instant::now();
    let issuance = http.validate(&prepared.request)?;
    let answered = Instant::now();
    let round_trip = answered.duration_since(posted);
    match prepared.awaiting.on_issuance1(&kit.sk_py, &issuance)? {
        PayeeOutcome::Coins { coins, ack } => {
            let ack_ok = !target.send_acks || http.validate_ack(&ack).is_ok();
            Ok(Paid::Coins {
                coins,
                latency: answered.duration_since(scheduled.unwrap_or(posted)),
                lag: scheduled.map(|at| posted.saturating_duration_since(at)),
                round_trip,
                ack_ok,
            })
        }
        PayeeOutcome::Rejected(reject) => Ok(Paid::Refused(format!(
            "the issuer refused: {:?}",
            reject.reason
        ))),
        PayeeOutcome::Receipt(_) => Ok(Paid::Refused(
            "a receipt where refreshed coins were due".to_owned(),
        )),
    }
}
