//! `cargo bench -p varietycash --bench issuer -- [--quick] [...]`: the
//! `varietycash bench` command (src/cli/bench.rs) as a bench target, so it
//! builds with the bench profile and runs without the rest of the CLI.
//! Takes the same options; `cargo bench` adds `--bench`, which is ignored.

use std::process::ExitCode;

use clap::Parser;

#[path = "../src/cli/bench.rs"]
mod bench;

#[derive(Debug, Parser)]
#[command(name = "bench", about = "VarietyCash issuer benchmark")]
struct Cli {
    #[command(flatten)]
    args: bench::BenchArgs,
    /// Added by `cargo bench`; ignored.
    #[arg(long = "bench", hide = true)]
    cargo_bench: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match bench::run(cli.args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("bench: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::from(2)
        }
    }
}
