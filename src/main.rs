//! `varietycash`: the one binary. Each subcommand is a thin shell over a
//! library crate; this file only parses arguments, sets up logging and maps
//! outcomes to exit codes.
//!
//! Exit codes: 0 success (for `audit`: every rule holds); 1 the command ran and
//! found a problem (for `audit`: a rule is broken); 2 an error stopped it;
//! 70 (`issuer serve`) a broken invariant stopped the issuer (fail-stop:
//! restart it, it recovers from its log).

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cli;

/// VarietyCash: an on-line electronic cash system (Bellare, Garay, Jutla, Yung 1998).
#[derive(Debug, Parser)]
#[command(name = "varietycash", version, about, long_about = None)]
struct Args {
    #[command(subcommand)]
    command: Command,
    /// Who does the RSA private-key operations of the aes256 and tdes
    /// suites: aws-lc (constant time, the default where built) or rsa (the
    /// pure-Rust fallback). Both give the same bytes on the wire.
    #[arg(long, global = true, value_name = "aws-lc|rsa")]
    rsa_backend: Option<protocol::crypto::RsaBackend>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run an issuer: create its files, serve its gateway (with the simulated bank), approve enrollments.
    Issuer(cli::issuer::IssuerArgs),
    /// A coin holder's purse: buy coins, pay merchants, change, redeem.
    Purse(cli::purse::PurseArgs),
    /// Run a shop: its purse, its enrollment, its merchant server.
    Merchant(cli::merchant::MerchantArgs),
    /// The simulated bank (inside the issuer's process), through its operator routes.
    Bank(cli::bank::BankArgs),
    /// Run the whole system on loopback (issuer, bank, merchant, two purses) over HTTP, then audit its log.
    Demo(cli::demo::DemoArgs),
    /// Replay an issuer's event log and prove that cash was conserved.
    Audit(cli::audit::AuditArgs),
    /// The issuer's log as a file: `log export` copies a log (PostgreSQL or redb) to a new redb file.
    Log(cli::log::LogArgs),
    /// Measure the issuer's payments per second against its own cryptography.
    Bench(cli::bench::BenchArgs),
    /// Stored-value cards: issue, load, unload, pay at a device, transfer to and from a purse, clear.
    Card(cli::card::CardArgs),
    /// The user index, its own service: its key pair, the issuer's deliveries, disclosures under dual control.
    Index(cli::index::IndexArgs),
    /// The issuer across machines: validator node keys, a validator's commit stream.
    Cluster(cli::cluster::ClusterArgs),
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Some(backend) = args.rsa_backend
        && let Err(err) = protocol::crypto::RsaBackend::set_process_default(backend)
    {
        let _ = writeln!(std::io::stderr(), "varietycash: {err}");
        return ExitCode::from(2);
    }
    let result = match args.command {
        Command::Issuer(a) => cli::issuer::run(a),
        Command::Purse(a) => cli::purse::run(a),
        Command::Merchant(a) => cli::merchant::run(a),
        Command::Bank(a) => cli::bank::run(a),
        Command::Demo(a) => cli::demo::run(a),
        Command::Audit(a) => cli::audit::run(a),
        Command::Log(a) => cli::log::run(a),
        Command::Bench(a) => cli::bench::run(a),
        Command::Card(a) => cli::card::run(a),
        Command::Index(a) => cli::index::run(a),
        Command::Cluster(a) => cli::cluster::run(a),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            // A closed stdout (e.g. piped into `head`) is not an error worth a message.
            if err
                .chain()
                .filter_map(|c| c.downcast_ref::<std::io::Error>())
                .any(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            {
                return ExitCode::SUCCESS;
            }
            let mut stderr = std::io::stderr().lock();
            let _ = writeln!(stderr, "varietycash: {err}");
            for cause in err.chain().skip(1) {
                let _ = writeln!(stderr, "  caused by: {cause}");
            }
            ExitCode::from(2)
        }
    }
}
