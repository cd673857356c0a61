//! `varietycash bench`: the issuer's speed against its own limits.
//!
//! One run measures, on this machine and in this order:
//! 1. the ledger core without public-key crypto ([`ledger_core`]): spends
//!    through the issuer's commit path (coin shards, group commit over a
//!    durable redb log) without keys; then one commit alone (the fsync floor);
//! 2. end to end over loopback HTTP ([`setup`], [`load`]): an issuer
//!    (durable redb log, fsync on every group commit) and client threads,
//!    each a payer and a payee, paying with refresh, 1 coin in and 1 out,
//!    then 4 in and 4 out, then 1-in/1-out paced at 70% of the peak; each
//!    closed-loop phase is followed at once by
//! 3. the crypto ceiling of the same mix ([`ceiling`]): only the issuer's
//!    public-key and symmetric work of one payment, in a loop on every
//!    core; then each step of it alone.
//!
//! It ends with a summary of the suite (payments/s end to end 1-in/1-out
//! and 4-in/4-out, issuer CPU per payment, the paced phase's latency, the
//! ledger core, and the crypto-only `ratio` as information), whose last
//! line is exactly `payments/s = N`: the 1-in/1-out end-to-end rate, what a
//! script reads. `--core` runs step 1 alone. Every figure is printed with
//! the load average it was measured under: the machine may be shared.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use protocol::crypto::SuiteId;

#[path = "bench/ceiling.rs"]
mod ceiling;
#[path = "bench/ledger_core.rs"]
mod ledger_core;
#[path = "bench/load.rs"]
mod load;
#[path = "bench/setup.rs"]
mod setup;
#[path = "bench/stats.rs"]
mod stats;

/// Seconds per measured phase, unless `--seconds` says otherwise.
const PHASE_SECS_DEFAULT: u64 = 20;
/// Seconds per measured phase with `--quick`.
const PHASE_SECS_QUICK: u64 = 5;
/// Seconds of the paced phase with `--quick`: its p99 needs more samples
/// than 5 s give (~800 at 160 payments/s, so p99 would be the 8th-worst
/// payment and moved 16-37 ms between idle runs).
const PACED_SECS_QUICK: u64 = 15;
/// Client threads per core, unless `--clients` says otherwise: each waits on
/// the network most of the time, so the issuer needs several per core busy.
const CLIENTS_PER_CORE_DEFAULT: usize = 8;
/// Round trips timed for the HTTP cost of a step.
const HTTP_ROUND_TRIPS_N: u32 = 500;
/// The load generator's nice value unless `--generator-nice` says
/// otherwise: the issuer's own. At 10 (interleaved runs, 04:03-04:06, load
/// average 5.6-8.0) other tenants' processes starved the clients: sends a
/// mean 11-23 ms late, which the paced phase counts.
const GENERATOR_NICE_DEFAULT: i32 = 0;
/// The pacing of the latency phase, as a share of the measured peak.
const PACED_LOAD_SHARE: f64 = 0.7;

/// The cipher suite of the issuer under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum SuiteArg {
    Dhaes,
    Aes256,
    Tdes,
}

impl SuiteArg {
    fn suite(self) -> SuiteId {
        match self {
            SuiteArg::Dhaes => SuiteId::Dhaes,
            SuiteArg::Aes256 => SuiteId::Aes256,
            SuiteArg::Tdes => SuiteId::Tdes,
        }
    }
}

fn parse_rsa_bits(s: &str) -> Result<usize, String> {
    match s {
        "2048" => Ok(2048),
        "3072" => Ok(3072),
        _ => Err(format!("expected 2048 or 3072, got {s:?}")),
    }
}

/// Measure payments/s end to end over loopback HTTP against the crypto
/// ceiling, and durable spends/s of the ledger core.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Short phases (5 s each, the paced one 15 s): the whole run takes under a minute.
    #[arg(long)]
    quick: bool,
    /// Seconds per measured phase (default 20, or 5 with --quick).
    #[arg(long, value_name = "N")]
    seconds: Option<u64>,
    /// Client threads of the load generator, each a payer and a payee
    /// (default 8 per core).
    #[arg(long, value_name = "N")]
    clients: Option<usize>,
    /// Cipher suite of the issuer and the participants: dhaes (HPKE +
    /// Ed25519), aes256 or tdes (RSA).
    #[arg(long, value_enum, default_value = "dhaes")]
    suite: SuiteArg,
    /// RSA modulus of the issuer and of the participants (aes256, tdes).
    #[arg(long, default_value = "2048", value_parser = parse_rsa_bits)]
    rsa_bits: usize,
    /// Run only the ledger-core benchmark (no HTTP, no public-key crypto).
    #[arg(long)]
    core: bool,
    /// Group-commit size of the ledger-core benchmark: most batches per
    /// durable transaction (default: ledger's default, as the issuer runs).
    #[arg(long, value_name = "N")]
    commit_batches_max: Option<usize>,
    /// Experiment: the payees do not send Issuance2, so the issuer skips
    /// the ack's check and its session's tombstone (a soft redb write).
    /// Not the protocol: shows what the ack costs.
    #[arg(long)]
    skip_acks: bool,
    /// Experiment: nice value of the load generator's threads (default 0,
    /// the issuer's priority). They share the issuer's cores (the payee's
    /// RSA decryption of K_I is 2.3 ms per payment); above 0 they yield to
    /// the issuer, but on a shared machine also to every other tenant, and
    /// late sends then count in the paced phase's latency.
    #[arg(long, value_name = "N", default_value_t = GENERATOR_NICE_DEFAULT, allow_negative_numbers = true)]
    generator_nice: i32,
    /// Directory for the issuer's and the core benchmark's files (default: a
    /// fresh temporary directory on the same disk as /tmp).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Keep the measured issuer's log in this PostgreSQL database (it must
    /// hold no log) instead of a redb file. With --core, the ledger core's
    /// log instead (without --core the ledger core stays on redb).
    #[arg(long, value_name = "postgres://…")]
    store: Option<String>,
    /// Pay through N validator nodes (`issuer serve --role validator`,
    /// each its own process) in front of the issuer as their sequencer:
    /// one closed-loop 1-in/1-out phase, with the sequencer's and the
    /// nodes' CPU per payment; the other phases are skipped.
    #[arg(long, value_name = "N")]
    validators: Option<usize>,
}

/// Runs the benchmark; exit code 0 when every phase measured something, 1
/// when a phase completed no payment (the figures would be meaningless).
pub fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let n_cores = stats::n_cores();
    let phase = Duration::from_secs(args.seconds.unwrap_or(if args.quick {
        PHASE_SECS_QUICK
    } else {
        PHASE_SECS_DEFAULT
    }));
    anyhow::ensure!(!phase.is_zero(), "--seconds must be positive");
    let paced_phase = if args.quick && args.seconds.is_none() {
        Duration::from_secs(PACED_SECS_QUICK)
    } else {
        phase
    };
    let n_clients = args.clients.unwrap_or(n_cores * CLIENTS_PER_CORE_DEFAULT);
    anyhow::ensure!(n_clients > 0, "--clients must be positive");
    let scratch = match &args.dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            tempfile::tempdir_in(dir)
        }
        None => tempfile::tempdir(),
    }
    .context("creating the scratch directory")?;
    println!("{}", stats::machine_line());
    let keys = match args.suite.suite().key_kind() {
        protocol::crypto::KeyKind::Rsa => format!(
            "RSA {} bits on {}",
            args.rsa_bits,
            protocol::crypto::RsaBackend::process_default()
        ),
        protocol::crypto::KeyKind::Ed25519X25519 => "Ed25519/X25519".to_owned(),
    };
    println!(
        "suite {}, {keys}, {} client threads at nice {}, {} s per phase ({} s paced), files in {}",
        args.suite.suite(),
        n_clients,
        args.generator_nice,
        phase.as_secs(),
        paced_phase.as_secs(),
        scratch.path().display()
    );

    let core_log = match (&args.store, args.core) {
        (Some(url), true) => Some(open_empty_postgres(url)?),
        _ => None,
    };
    let core_report = ledger_core::run(
        &scratch.path().join("core"),
        phase,
        n_cores,
        args.commit_batches_max,
        core_log.clone(),
    )?;
    println!("{core_report}");
    println!(
        "  one durable commit alone (one spend, fsync, nothing to group with): {:.2} ms; load average {}",
        ledger_core::lone_commit_ms(&scratch.path().join("lone"), core_log)?,
        stats::load_average()
    );
    if args.core {
        return Ok(if core_report.n_spends > 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        });
    }

    let log_store = args.store.as_deref().map(open_empty_postgres).transpose()?;
    if let Some(url) = &args.store {
        println!(
            "the issuer's log: PostgreSQL {}",
            pg_store::url::redacted(url)
        );
    }
    let issuer = setup::BenchIssuer::start(
        &scratch.path().join("issuer"),
        args.suite.suite(),
        args.rsa_bits,
        log_store,
    )?;
    println!(
        "HTTP/1.1 round trip on loopback (GET /health, kept alive): {:.3} ms; load average {}",
        issuer.http_round_trip_ms(HTTP_ROUND_TRIPS_N)?,
        stats::load_average()
    );
    let coins_per_client = load::coins_needed(load::Mix::FOUR_IN_FOUR_OUT);
    let clients = issuer.clients(n_clients, coins_per_client)?;
    let mut clients = load::Clients::new(clients, !args.skip_acks, args.generator_nice);
    if args.skip_acks {
        println!("EXPERIMENT --skip-acks: payees send no Issuance2 (not the protocol)");
    }

    if let Some(n) = args.validators {
        anyhow::ensure!(n > 0, "--validators must be positive");
        let nodes = issuer.start_validators(&scratch.path().join("issuer"), n)?;
        clients.through_validators(nodes.urls.clone());
        let nodes_before = nodes.nodes_cpu_secs();
        let one = load::run_phase(
            &issuer,
            &mut clients,
            load::Mix::ONE_IN_ONE_OUT,
            phase,
            None,
        )?;
        let nodes_secs = nodes.nodes_cpu_secs() - nodes_before;
        println!("{one}");
        let per = |secs: f64| secs * 1000.0 / (one.n_paid().max(1) as f64);
        println!(
            "cluster of {n} validator node(s): sequencer (the issuer's process less the load generator) {:.3} ms CPU per payment; validator nodes {:.3} ms CPU per payment in all ({:.2} cores busy)",
            one.issuer_cpu_ms_per_payment(),
            per(nodes_secs),
            nodes_secs / one.elapsed_secs().max(f64::MIN_POSITIVE)
        );
        drop(nodes);
        issuer.check_conservation()?;
        println!("payments/s = {:.1}", one.payments_per_sec());
        return Ok(if one.n_paid() > 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        });
    }

    // Each crypto-only phase runs right after the end-to-end phase it is
    // compared with: on a shared machine, neighbours in time see the most
    // similar spare CPU. The issuer idles meanwhile.
    let issuer_key = setup::issuer_key_path(&scratch.path().join("issuer"));
    let ceiling_dir = scratch.path().join("ceiling");
    let ceiling = |mix| {
        ceiling::run(
            &ceiling_dir,
            args.suite.suite(),
            &issuer_key,
            mix,
            phase,
            n_cores,
        )
    };
    let one = load::run_phase(
        &issuer,
        &mut clients,
        load::Mix::ONE_IN_ONE_OUT,
        phase,
        None,
    )?;
    println!("{one}");
    let ceiling_one = ceiling(load::Mix::ONE_IN_ONE_OUT)?;
    println!("{ceiling_one}");
    let four = load::run_phase(
        &issuer,
        &mut clients,
        load::Mix::FOUR_IN_FOUR_OUT,
        phase,
        None,
    )?;
    println!("{four}");
    let ceiling_four = ceiling(load::Mix::FOUR_IN_FOUR_OUT)?;
    println!("{ceiling_four}");
    let paced_rate = one.payments_per_sec() * PACED_LOAD_SHARE;
    let paced = load::run_phase(
        &issuer,
        &mut clients,
        load::Mix::ONE_IN_ONE_OUT,
        paced_phase,
        Some(paced_rate),
    )?;
    println!("{paced}");
    issuer.check_conservation()?;
    drop(issuer);

    let steps = ceiling::step_costs(&ceiling_dir, args.suite.suite(), &issuer_key)?;
    for line in &steps.lines {
        println!("{line}");
    }
    // On a shared machine the two throughputs saw different spare CPU; the
    // CPU per payment of each is the steadier comparison.
    println!(
        "issuer CPU efficiency 1-in/1-out = {:.3} ({:.2} ms crypto-only / {:.2} ms issuer CPU per payment end to end)",
        ceiling_one.cpu_ms_per_payment() / one.issuer_cpu_ms_per_payment().max(f64::MIN_POSITIVE),
        ceiling_one.cpu_ms_per_payment(),
        one.issuer_cpu_ms_per_payment()
    );
    // The load generator runs on the same cores as the issuer: its own
    // crypto (mostly the payee's RSA decryption of K_I) is CPU the issuer
    // cannot have. The ratio below is NOT corrected for it; this line says
    // how far it bounds the ratio.
    // CPU per payment is compared, not payments/s: on a shared machine each
    // phase got different spare CPU.
    let crypto_ms = ceiling_one.cpu_ms_per_payment();
    let generator_ms = one.client_cpu_ms_per_payment();
    let bound = |issuer_ms: f64| crypto_ms / (issuer_ms + generator_ms).max(f64::MIN_POSITIVE);
    println!(
        "load generator 1-in/1-out: {:.2} cores busy, {:.2} ms CPU per payment on the issuer's cores; so ratio <= {:.3} (crypto-only {:.2} / (issuer {:.2} + generator {:.2}) ms), and <= {:.3} even for an issuer doing nothing but its crypto",
        one.client_cores(),
        generator_ms,
        bound(one.issuer_cpu_ms_per_payment()),
        crypto_ms,
        one.issuer_cpu_ms_per_payment(),
        generator_ms,
        bound(crypto_ms)
    );
    // Both sides' crypto of one payment on this one machine: the issuer's
    // (the crypto-only loop) plus the clients' RSA (the payee's decryption
    // of K_I, the payer's and payee's encryptions to the issuer; their MACs
    // and CTR are microseconds). Not the target, which is `ratio`.
    let clients_crypto_ms = steps.rsa_decrypt_cpu_ms + 2.0 * steps.rsa_encrypt_cpu_ms;
    let both_sides = ceiling_one.payments_per_sec() * crypto_ms
        / (crypto_ms + clients_crypto_ms).max(f64::MIN_POSITIVE);
    // The same against CPU per payment, which other tenants disturb less.
    let both_sides_cpu = (crypto_ms + clients_crypto_ms)
        / (one.issuer_cpu_ms_per_payment() + generator_ms).max(f64::MIN_POSITIVE);
    println!(
        "both sides' crypto on this machine 1-in/1-out (NOT the ratio below): issuer {:.2} + clients {:.2} ms CPU per payment, so {:.1} payments/s at the crypto-only phase's CPU; measured / that = {:.3}; by CPU per payment, ({:.2} + {:.2}) / (issuer {:.2} + generator {:.2}) ms = {:.3}",
        crypto_ms,
        clients_crypto_ms,
        both_sides,
        one.payments_per_sec() / both_sides.max(f64::MIN_POSITIVE),
        crypto_ms,
        clients_crypto_ms,
        one.issuer_cpu_ms_per_payment(),
        generator_ms,
        both_sides_cpu
    );
    println!(
        "ratio 4-in/4-out = {:.3} ({:.1} / {:.1} payments/s)",
        four.payments_per_sec() / ceiling_four.payments_per_sec(),
        four.payments_per_sec(),
        ceiling_four.payments_per_sec()
    );
    println!(
        "ratio = {:.3} (1-in/1-out: {:.1} measured / {:.1} crypto-only payments/s, suite {}, {keys}, {} cores)",
        one.payments_per_sec() / ceiling_one.payments_per_sec(),
        one.payments_per_sec(),
        ceiling_one.payments_per_sec(),
        args.suite.suite(),
        n_cores
    );
    let summary = Summary {
        suite: args.suite.suite(),
        keys: keys.clone(),
        n_cores,
        one_per_sec: one.payments_per_sec(),
        four_per_sec: four.payments_per_sec(),
        one_cpu_ms: one.issuer_cpu_ms_per_payment(),
        four_cpu_ms: four.issuer_cpu_ms_per_payment(),
        paced_rate,
        paced_ms: [0.5, 0.99, 0.999].map(|p| paced.latency_ms(p)),
        core_spends_per_sec: core_report.spends_per_sec(),
        ratio: one.payments_per_sec() / ceiling_one.payments_per_sec().max(f64::MIN_POSITIVE),
    };
    for line in summary.lines() {
        println!("{line}");
    }
    let all_measured = one.n_paid > 0 && four.n_paid > 0 && paced.n_paid > 0;
    Ok(if all_measured {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The log in the PostgreSQL database `url`, which must hold none, opened
/// as the issuer opens it: its one writer, fenced (so a benchmark never
/// appends beside a live issuer's writer).
fn open_empty_postgres(url: &str) -> anyhow::Result<std::sync::Arc<dyn ledger::EventStore>> {
    let shown = pg_store::url::redacted(url);
    // Opening takes the database's writer lock; the fence refuses any
    // append of a writer that held it before.
    let store = pg_store::PostgresStore::open(url)
        .with_context(|| format!("opening the log in {shown}"))?;
    pg_store::fence::fence(&store).with_context(|| format!("fencing the log in {shown}"))?;
    anyhow::ensure!(
        store.is_empty()?,
        "{shown} already holds a log: the benchmark needs an empty database"
    );
    Ok(std::sync::Arc::new(store))
}

/// The figures that matter of one run, printed last.
struct Summary {
    suite: SuiteId,
    keys: String,
    n_cores: usize,
    one_per_sec: f64,
    four_per_sec: f64,
    one_cpu_ms: f64,
    four_cpu_ms: f64,
    paced_rate: f64,
    /// p50, p99, p999 of the paced phase, from each payment's scheduled start.
    paced_ms: [Option<f64>; 3],
    core_spends_per_sec: f64,
    ratio: f64,
}

impl Summary {
    /// The summary's lines; the last is exactly `payments/s = N`.
    fn lines(&self) -> Vec<String> {
        let [p50, p99, p999] = self.paced_ms.map(stats::ms);
        vec![
            format!(
                "summary, suite {} ({}), {} cores, load generator on the same cores, durable log, HTTP/1.1:",
                self.suite, self.keys, self.n_cores
            ),
            format!(
                "  end to end: 1-in/1-out {:.1} payments/s, 4-in/4-out {:.1} payments/s",
                self.one_per_sec, self.four_per_sec
            ),
            format!(
                "  issuer CPU per payment: {:.3} ms (1-in/1-out), {:.3} ms (4-in/4-out)",
                self.one_cpu_ms, self.four_cpu_ms
            ),
            format!(
                "  latency at 70% of peak ({:.1} payments/s paced, from each scheduled start): p50 {p50} ms, p99 {p99} ms, p999 {p999} ms",
                self.paced_rate
            ),
            format!(
                "  ledger core: {:.0} durable spends/s",
                self.core_spends_per_sec
            ),
            format!(
                "  crypto-only ratio 1-in/1-out = {:.3} (information)",
                self.ratio
            ),
            format!("payments/s = {:.0}", self.one_per_sec),
        ]
    }
}

#[cfg(test)]
mod tests {
    // Paths in full: the bench target compiles this module without its tests.
    #[test]
    fn the_last_line_is_exactly_the_end_to_end_payments_per_second() {
        let summary = super::Summary {
            suite: protocol::crypto::SuiteId::Dhaes,
            keys: "Ed25519/X25519".to_owned(),
            n_cores: 2,
            one_per_sec: 1660.4,
            four_per_sec: 1581.0,
            one_cpu_ms: 0.72,
            four_cpu_ms: 0.8,
            paced_rate: 1162.3,
            paced_ms: [Some(3.07), Some(9.81), None],
            core_spends_per_sec: 102_739.0,
            ratio: 0.19,
        };
        let lines = summary.lines();
        assert_eq!(lines.last().map(String::as_str), Some("payments/s = 1660"));
        // Every figure the summary promises is there, before it.
        let text = lines.join("\n");
        for figure in [
            "1660.4", "1581.0", "0.720", "0.800", "9.81", "102739", "0.190",
        ] {
            assert!(text.contains(figure), "{figure} missing from\n{text}");
        }
        assert_eq!(
            lines.iter().filter(|l| l.starts_with("payments/s")).count(),
            1
        );
    }
}
