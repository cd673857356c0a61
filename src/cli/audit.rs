//! `varietycash audit`: the auditor's command line over `replay`.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use protocol::crypto::PublicKey;

use super::common::TransportArgs;

/// Replay an issuer's event log and prove that cash was conserved; and/or
/// read card systems' records and report the cards whose value does not
/// add up.
///
/// Exit status: 0 every rule holds; 1 a rule is broken (the report names the
/// first violating record, the transaction, the rule and the amounts), or a
/// card does not add up; 2 the audit could not be carried out (or the log is
/// empty: nothing to audit).
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// The issuer's log: a redb file (a copy, or the live file
    /// read-only; never written: a file a crashed writer left unclean is
    /// audited through a repaired temporary copy), or a PostgreSQL URL
    /// (`postgres://auditor:password@host:port/db`), read in read-only
    /// transactions; give it a role that may only read the log.
    #[arg(
        long,
        value_name = "FILE|postgres://…",
        required_unless_present = "card_records"
    )]
    pub log: Option<PathBuf>,
    /// A card system's directory (`varietycash card --dir`): its LUS,
    /// collection and agency records and card images are read (no keys
    /// needed, nothing written), and every card whose loads, unloads and
    /// purchases do not add up is reported. May be given more than once.
    #[arg(long, value_name = "DIR")]
    pub card_records: Vec<PathBuf>,
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
    /// Judge the log as of this time (seconds since the Unix epoch) instead
    /// of this machine's clock: a log dated more than five minutes after
    /// "now" is reported. For audits of simulations run on a moved clock.
    #[arg(long, value_name = "UNIX_SECS")]
    pub now: Option<u64>,
    /// The issuer's latest signed head (its file `signed-head.txt`, or the
    /// URL of its gateway's `/v1/log/head`): the log must reach it with the
    /// same hash, so a log cut behind it fails.
    #[arg(long, value_name = "FILE|URL")]
    pub expect_head: Option<String>,
    /// Accept up to N records past the last signed checkpoint (auditing a
    /// live issuer, whose newest records await their checkpoint). Default:
    /// none; every record must be covered by a signature.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub allow_unsigned_tail: u64,
    /// The bank's statement: the simulated bank's export (`varietycash
    /// bank export`), a camt.053 file (`*.xml`) or a directory of them (a
    /// file exchange's inbox). Every settled purchase, redemption and
    /// returned debit must match a bank entry, and every bank entry the
    /// log. Whole-log audits only.
    #[arg(long, value_name = "FILE|DIR")]
    pub bank_statement: Option<PathBuf>,
    /// Skip redb's integrity check of the file (every page checksum): for a
    /// log its writer has open, which the check cannot lock.
    #[arg(long)]
    pub skip_integrity_check: bool,
    /// How `--expect-head URL` reaches the issuer's gateway.
    #[command(flatten)]
    pub transport: TransportArgs,
}

/// Largest signed head read from a file or a URL.
const SIGNED_HEAD_BYTES_MAX: u64 = 16 * 1024;

/// Reads the issuer's signed head from a file or an `https://` URL (plain
/// `http://` with `--insecure-http`), over the parties' client: TLS pinned
/// to the issuer's authority (`--issuer-cert`), the answer bounded.
fn read_expected_head(
    source: &str,
    transport: &TransportArgs,
) -> anyhow::Result<ledger::Checkpoint> {
    let text = if let Some((scheme, rest)) = source.split_once("://") {
        let (host, path) = match rest.find('/') {
            Some(at) => rest.split_at(at),
            None => (rest, "/v1/log/head"),
        };
        let mut config = transport.client_config(None)?;
        config.response_bytes_max = SIGNED_HEAD_BYTES_MAX as usize;
        let client = client::client::HttpClient::new(&format!("{scheme}://{host}"), config)
            .with_context(|| format!("the signed head's URL {source}"))?;
        client
            .get_text(path)
            .with_context(|| format!("fetching the signed head from {source}"))?
    } else {
        let len = std::fs::metadata(source)
            .with_context(|| format!("reading the signed head {source}"))?
            .len();
        anyhow::ensure!(
            len <= SIGNED_HEAD_BYTES_MAX,
            "the signed head {source} is {len} bytes, more than a signed head can be"
        );
        std::fs::read_to_string(source)
            .with_context(|| format!("reading the signed head {source}"))?
    };
    ledger::Checkpoint::parse_published_head(&text)
        .with_context(|| format!("reading the signed head from {source}"))
}

pub fn run(args: AuditArgs) -> anyhow::Result<ExitCode> {
    // A damaged log file may make the storage engine panic: the auditor
    // catches that and reports it as `log_unreadable` at its record, so the
    // default hook's message and backtrace would only be noise.
    std::panic::set_hook(Box::new(|info| {
        tracing::debug!(%info, "caught inside the audit");
    }));
    let mut exit = 0u8;
    if args.log.is_some() {
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
        exit = report.exit_code();
    }
    for dir in &args.card_records {
        let report = card_bridge::audit::audit_card_records(dir)
            .with_context(|| format!("reading the card records in {}", dir.display()))?;
        let mut out = std::io::stdout().lock();
        if args.json {
            writeln!(out, "{}", card_records_json(&report)?)?;
        } else {
            write!(out, "{}", card_records_text(dir, &report))?;
        }
        if report.cards_not_adding_up().next().is_some() {
            exit = exit.max(1);
        }
    }
    Ok(ExitCode::from(exit))
}

/// The card records' report as JSON, with card and PSAM ids in hex as the
/// text report and the card files name them (their serde form is the raw
/// bytes the card system's records store).
fn card_records_json(report: &card_bridge::audit::CardRecordsReport) -> anyhow::Result<String> {
    let mut value = serde_json::to_value(report)?;
    ids_in_hex(&mut value);
    Ok(serde_json::to_string(&value)?)
}

/// Card and PSAM ids (arrays of bytes named `card` or `psam`) as hex strings.
fn ids_in_hex(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(fields) => {
            for (name, field) in fields.iter_mut() {
                let bytes = field.as_array().and_then(|items| {
                    items
                        .iter()
                        .map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
                        .collect::<Option<Vec<u8>>>()
                });
                match bytes {
                    Some(bytes) if name == "card" || name == "psam" => {
                        *field = serde_json::Value::String(hex::encode(bytes));
                    }
                    _ => ids_in_hex(field),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(ids_in_hex),
        _ => {}
    }
}

/// The card records' report as text: one line per card, then what does not
/// add up, then the refused attempts.
fn card_records_text(
    dir: &std::path::Path,
    report: &card_bridge::audit::CardRecordsReport,
) -> String {
    use std::fmt::Write as _;
    let mut t = String::new();
    let _ = writeln!(t, "card records in {}", dir.display());
    for c in &report.cards {
        let s = &c.standing;
        let _ = write!(
            t,
            "  card {}: loaded {}, unloaded {}, purchases collected {}, open loads {}, open unloads {}",
            c.card, s.loaded, s.unloaded, s.purchases_collected, s.loads_open, s.unloads_open
        );
        if let Some(b) = c.image_balance {
            let _ = write!(t, ", image holds {b}");
        }
        let _ = writeln!(t);
    }
    let bad: Vec<_> = report.cards_not_adding_up().collect();
    if bad.is_empty() {
        let _ = writeln!(t, "every card adds up");
    }
    for c in bad {
        for p in &c.problems {
            let _ = writeln!(t, "  DOES NOT ADD UP: card {}: {}", c.card, problem_text(p));
        }
    }
    for r in &report.refused_claims {
        let _ = writeln!(
            t,
            "  refused claim: card {} NT {} ({:?} of {}, claimed balance {}): {}",
            r.card, r.nt, r.direction, r.amount, r.claimed_balance, r.reason
        );
    }
    for r in &report.refused_purchases {
        let _ = writeln!(
            t,
            "  refused purchase: card {} NT {} of {}: {}",
            r.card, r.nt, r.amount, r.reason
        );
    }
    t
}

fn problem_text(p: &card_bridge::audit::CardProblem) -> String {
    use card_bridge::audit::CardProblem;
    match p {
        CardProblem::Overspent { by } => {
            format!("unloads and purchases exceed its loads by {by}")
        }
        CardProblem::AgencyDisagrees {
            nt,
            direction,
            amount,
        } => format!(
            "the agency holds {direction:?} NT {nt} of {amount} finished; the LUS's log does not"
        ),
        CardProblem::ImageAboveHistory {
            balance,
            bound_minor,
        } => format!(
            "its image holds {balance}; its history allows at most {bound_minor} (minor units)"
        ),
        CardProblem::ImageUnreadable { error } => format!("its image is unreadable: {error}"),
        CardProblem::CollectedTotalDisagrees {
            running,
            in_batches,
        } => format!(
            "the collection server's total of its purchases is {running}; the batches it collected add up to {in_batches}"
        ),
        _ => format!("{p:?}"),
    }
}

/// Runs the audit the arguments describe, with a progress bar on a terminal.
/// A log a crashed writer left unclean cannot be opened read-only; it is
/// copied to a temporary directory, the copy repaired and audited, and the
/// report says so. The file given is never written.
pub fn audit(args: &AuditArgs) -> anyhow::Result<replay::AuditReport> {
    let log = args.log.as_deref().context("no log to audit (--log)")?;
    let issuer_key = match &args.issuer_key {
        Some(path) => Some(
            PublicKey::read_spki(path)
                .with_context(|| format!("reading the issuer's public key {}", path.display()))?,
        ),
        None => None,
    };
    let issuer_key = issuer_key.as_ref();
    let expect_head = args
        .expect_head
        .as_deref()
        .map(|source| read_expected_head(source, &args.transport))
        .transpose()?;
    let expect_head = expect_head.as_ref();
    let bank_statement = match &args.bank_statement {
        Some(path) => Some(super::bank::read_statement(path)?),
        None => None,
    };
    let bank_statement = bank_statement.as_ref();
    if let Some(url) = log.to_str().filter(|s| pg_store::url::is_postgres_url(s)) {
        let shown = pg_store::url::redacted(url);
        let store = pg_store::PostgresStore::open_read_only(url)
            .with_context(|| format!("opening the log in {shown}"))?;
        let mut opts = audit_options(
            args,
            Path::new(&shown),
            issuer_key,
            expect_head,
            bank_statement,
        );
        opts.verify_integrity = false;
        return with_progress(opts, |opts| replay::audit_store(&store, opts))
            .with_context(|| format!("auditing {shown}"));
    }
    match audit_log(args, log, issuer_key, expect_head, bank_statement) {
        Err(replay::AuditError::OpenLog {
            source: ledger::StoreError::NeedsRepair,
            ..
        }) => {}
        other => return other.with_context(|| format!("auditing {}", log.display())),
    }
    let scratch = tempfile::tempdir().context("a temporary directory for a repaired copy")?;
    let copy = scratch.path().join("log.redb");
    ledger::RedbStore::repaired_copy(log, &copy).with_context(|| {
        format!(
            "{} was not closed cleanly; repairing a copy of it failed",
            log.display()
        )
    })?;
    let mut report = audit_log(args, &copy, issuer_key, expect_head, bank_statement)
        .with_context(|| format!("auditing a repaired copy of {}", log.display()))?;
    report.log = log.display().to_string();
    report.notes.push(
        "the log was not closed cleanly by its writer (a crash): a copy of it was repaired \
         (redb keeps every committed transaction) and audited; the file itself was not written"
            .to_string(),
    );
    Ok(report)
}

/// One audit of the redb log at `log` with the options `args` gives.
fn audit_log(
    args: &AuditArgs,
    log: &Path,
    issuer_key: Option<&PublicKey>,
    expect_head: Option<&ledger::Checkpoint>,
    bank_statement: Option<&replay::BankStatement>,
) -> Result<replay::AuditReport, replay::AuditError> {
    let opts = audit_options(args, log, issuer_key, expect_head, bank_statement);
    with_progress(opts, replay::run_audit)
}

/// The replay's options for the log named `log` (shown in the report).
fn audit_options(
    args: &AuditArgs,
    log: &Path,
    issuer_key: Option<&PublicKey>,
    expect_head: Option<&ledger::Checkpoint>,
    bank_statement: Option<&replay::BankStatement>,
) -> replay::AuditOptions {
    let mut opts = replay::AuditOptions::new(log);
    opts.now = args.now.map(ledger::Timestamp);
    opts.allow_unsigned_tail = args.allow_unsigned_tail;
    opts.verify_integrity = !args.skip_integrity_check;
    opts.bank_statement = bank_statement.cloned();
    opts.expect_head = expect_head.cloned();
    if let Some(key) = issuer_key {
        let key = key.clone();
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
    opts
}

/// Runs `audit` with a progress bar on a terminal.
fn with_progress(
    mut opts: replay::AuditOptions,
    audit: impl FnOnce(replay::AuditOptions) -> Result<replay::AuditReport, replay::AuditError>,
) -> Result<replay::AuditReport, replay::AuditError> {
    let bar = std::io::stderr().is_terminal().then(progress_bar);
    if let Some(bar) = &bar {
        let bar = bar.clone();
        opts.progress = Some(Box::new(move |p: replay::Progress| {
            bar.set_length(p.head_seq.0);
            bar.set_position(p.seq.0);
        }));
    }
    let report = audit(opts);
    // Cleared before the report is printed, whether the audit ended at the
    // head, at a violation or on an error.
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    report
}

/// The bar a long replay shows on a terminal: records audited of the log's
/// records, the rate and the time left.
fn progress_bar() -> ProgressBar {
    let bar = ProgressBar::new(0);
    // The template is a constant: it parses, and if a future indicatif
    // refused it the bar would keep its default look rather than fail.
    if let Ok(style) = ProgressStyle::with_template(
        "audit {bar:40} {human_pos}/{human_len} records ({per_sec:0}, {eta} left)",
    ) {
        bar.set_style(style);
    }
    bar
}

#[cfg(test)]
mod card_json_tests {
    use super::ids_in_hex;

    #[test]
    fn card_and_psam_ids_print_in_hex_and_nothing_else_changes() {
        let mut value = serde_json::json!({
            "cards": [{"card": [0, 0, 0, 0, 0, 0, 0, 225], "nt": 3, "bound": [1, 2]}],
            "refused_purchases": [{"card": [0, 0, 0, 0, 0, 0, 0, 226], "psam": [1, 2, 3, 4]}],
        });
        ids_in_hex(&mut value);
        assert_eq!(value["cards"][0]["card"], "00000000000000e1");
        assert_eq!(value["cards"][0]["bound"], serde_json::json!([1, 2]));
        assert_eq!(value["refused_purchases"][0]["card"], "00000000000000e2");
        assert_eq!(value["refused_purchases"][0]["psam"], "01020304");
    }
}
