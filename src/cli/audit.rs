//! `varietycash audit`: the auditor's command line over `replay`.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use protocol::crypto::PublicKey;

/// Replay an issuer's event log and prove that cash was conserved.
///
/// Exit status: 0 every rule holds; 1 a rule is broken (the report names the
/// first violating record, the transaction, the rule and the amounts); 2 the
/// audit could not be carried out.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// The issuer's log (a redb file; a copy, or the live file read-only).
    #[arg(long)]
    pub log: PathBuf,
    /// The issuer's public key (SPKI PEM/DER) to verify checkpoint signatures.
    #[arg(long)]
    pub issuer_key: Option<PathBuf>,
    /// Resume from the checkpoint file an earlier audit wrote.
    #[arg(long)]
    pub from_checkpoint: Option<PathBuf>,
    /// Write the checkpoint file for the next, incremental audit.
    #[arg(long)]
    pub write_checkpoint: Option<PathBuf>,
    /// Print the report as JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Also write an HTML report with charts to this file.
    #[arg(long)]
    pub html: Option<PathBuf>,
    /// The issuer's coin-status projection (DIR/coin-status.redb): it must
    /// hold exactly the coins the replay finds unspent. The file is copied,
    /// never written.
    #[arg(long)]
    pub coin_status: Option<PathBuf>,
    /// The issuer's accounts projection, compared with the replay likewise.
    #[arg(long)]
    pub accounts: Option<PathBuf>,
}

pub fn run(args: AuditArgs) -> anyhow::Result<ExitCode> {
    let report = audit(&args)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", report.to_json())?;
    } else {
        write!(out, "{}", report.to_text())?;
    }
    if let Some(html) = &args.html {
        std::fs::write(html, report.to_html())
            .with_context(|| format!("writing the HTML report to {}", html.display()))?;
    }
    Ok(ExitCode::from(report.exit_code()))
}

/// Runs the audit the arguments describe, with a progress bar on a terminal.
pub fn audit(args: &AuditArgs) -> anyhow::Result<replay::AuditReport> {
    let mut opts = replay::AuditOptions::new(&args.log);
    if let Some(path) = &args.issuer_key {
        let key = PublicKey::read_spki(path)
            .with_context(|| format!("reading the issuer's public key {}", path.display()))?;
        opts.checkpoint_verifier = Some(Box::new(move |msg: &[u8], sig: &[u8]| {
            protocol::checkpoint::verify_signed_bytes(&key, msg, sig)
        }));
    }
    if let Some(path) = &args.coin_status {
        opts.projection_checks
            .push(Box::new(replay::CoinStatusFile(path.clone())));
    }
    if let Some(path) = &args.accounts {
        opts.projection_checks
            .push(Box::new(replay::AccountsFile(path.clone())));
    }
    opts.from_checkpoint = args.from_checkpoint.clone();
    opts.write_checkpoint = args.write_checkpoint.clone();
    if std::io::stderr().is_terminal() {
        opts.progress = Some(Box::new(|p: replay::Progress| {
            let pct = (p.seq.0 * 100).checked_div(p.head_seq.0).unwrap_or(100);
            eprint!("\raudit: {} / {} records ({pct}%)", p.seq.0, p.head_seq.0);
            if p.seq >= p.head_seq {
                eprintln!();
            }
        }));
    }
    replay::run_audit(opts).with_context(|| format!("auditing {}", args.log.display()))
}
