//! What the party commands share: coin specs and catalog lines from the
//! command line, bounded reading of TOML configuration files, the purse
//! passphrase (from `VC_PURSE_PASSPHRASE` or a terminal prompt), the
//! transport flags (`--issuer-cert`, `--insecure-http`), opening a purse and
//! its wallet, progress display on a terminal, and waiting for Ctrl-C or
//! SIGTERM.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use anyhow::{Context, bail, ensure};
use clap::Args;
use client::{ClientConfig, IssuerCa, Wallet};
use ledger::{Amount, BankAccount, CoinSpec, Denomination, ParticipantId};
use purse::{KdfParams, Passphrase, Purse, PurseKey};
use serde::de::DeserializeOwned;
use zeroize::Zeroizing;

/// Configuration files are small; a larger one is a mistake, not a config.
pub const CONFIG_FILE_BYTES_MAX: u64 = 64 * 1024;

/// Parses a coin spec written `COUNTxVALUE,...`, e.g. `2x2.50,1x1.25,3x2.00`.
pub fn parse_spec(text: &str) -> anyhow::Result<CoinSpec> {
    let mut lines = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (count, value) = part
            .split_once(['x', 'X'])
            .with_context(|| format!("`{part}` is not COUNTxVALUE (e.g. 2x2.50)"))?;
        let count: u32 = count
            .trim()
            .parse()
            .with_context(|| format!("`{count}` is not a coin count"))?;
        let value: Amount = value
            .trim()
            .parse()
            .with_context(|| format!("`{value}` is not an amount"))?;
        lines.push(Denomination { count, value });
    }
    ensure!(!lines.is_empty(), "an empty coin spec");
    CoinSpec::new(lines).context("not a valid coin spec")
}

/// Reads and parses a TOML file of at most [`CONFIG_FILE_BYTES_MAX`].
pub fn read_toml<T: DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    let len = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    if len > CONFIG_FILE_BYTES_MAX {
        bail!(
            "{} is {len} bytes, over the {CONFIG_FILE_BYTES_MAX}-byte limit of a configuration file",
            path.display()
        );
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// Where scripts put the purse passphrase.
pub const PASSPHRASE_ENV: &str = "VC_PURSE_PASSPHRASE";
/// The cost of deriving a new purse's key: unset or `recommended`, or
/// `insecure-fast` (tests and throw-away demos only).
pub const KDF_ENV: &str = "VC_PURSE_KDF";

/// The passphrase of this process's purses, asked for once.
static PASSPHRASE: OnceLock<Passphrase> = OnceLock::new();

/// Sets the passphrase of this process's purses (the demo's own), unless
/// one was already read.
pub fn use_passphrase(passphrase: Passphrase) {
    // A passphrase already read stays: the first one opened the purses.
    let _ = PASSPHRASE.set(passphrase);
}

/// The purse passphrase: `VC_PURSE_PASSPHRASE`, or asked on the terminal
/// (twice when `new`, to catch a typo in a passphrase nobody can recover).
/// Without either, an error naming the variable. Asked once per process.
pub fn passphrase(new: bool) -> anyhow::Result<&'static Passphrase> {
    if let Some(passphrase) = PASSPHRASE.get() {
        return Ok(passphrase);
    }
    let passphrase = match std::env::var(PASSPHRASE_ENV) {
        Ok(text) => Passphrase::new(text).context(PASSPHRASE_ENV)?,
        Err(std::env::VarError::NotUnicode(_)) => bail!("{PASSPHRASE_ENV} is not UTF-8"),
        Err(std::env::VarError::NotPresent) => {
            if !std::io::stdin().is_terminal() {
                bail!(
                    "the purse needs its passphrase: set {PASSPHRASE_ENV} \
                     (standard input is not a terminal to ask on)"
                );
            }
            let mut first = prompt_hidden("purse passphrase")?;
            if new {
                let again = prompt_hidden("the same passphrase again")?;
                ensure!(*first == *again, "the two passphrases differ");
            }
            Passphrase::new(std::mem::take(&mut *first)).context("the purse passphrase")?
        }
    };
    Ok(PASSPHRASE.get_or_init(|| passphrase))
}

/// The cost of a new purse's key derivation ([`KDF_ENV`]).
pub fn kdf_params() -> anyhow::Result<KdfParams> {
    match std::env::var(KDF_ENV).as_deref() {
        Err(std::env::VarError::NotPresent) | Ok("recommended") => Ok(KdfParams::RECOMMENDED),
        Ok("insecure-fast") => {
            tracing::warn!("purse key derivation at the insecure test cost ({KDF_ENV})");
            Ok(KdfParams::INSECURE_FAST)
        }
        _ => bail!("{KDF_ENV} must be `recommended` or `insecure-fast`"),
    }
}

/// A key for a new purse: this process's passphrase, [`kdf_params`]'s cost.
pub fn new_purse_key() -> anyhow::Result<PurseKey> {
    let bar = spinner("deriving the purse key from its passphrase");
    let key = PurseKey::derive_new(passphrase(true)?, kdf_params()?);
    finish(bar);
    key.context("deriving the purse key")
}

/// Opens the purse at `path` with this process's passphrase.
pub fn open_purse(path: &Path) -> anyhow::Result<Purse> {
    let passphrase = passphrase(false)?;
    Purse::open(path, passphrase).with_context(|| format!("opening the purse {}", path.display()))
}

/// Reads a line from the terminal (standard input) with echo off, asking
/// on standard error.
fn prompt_hidden(label: &str) -> anyhow::Result<Zeroizing<String>> {
    use rustix::termios::{LocalModes, OptionalActions, tcgetattr, tcsetattr};
    use std::io::{BufRead, Write};
    let stdin = std::io::stdin();
    let mut stderr = std::io::stderr();
    write!(stderr, "{label}: ")?;
    stderr.flush()?;
    let saved = tcgetattr(&stdin).context("reading the terminal's settings")?;
    let mut quiet = saved.clone();
    quiet.local_modes.remove(LocalModes::ECHO);
    tcsetattr(&stdin, OptionalActions::Now, &quiet).context("turning the echo off")?;
    let mut line = Zeroizing::new(String::new());
    let read = stdin.lock().read_line(&mut line);
    // Echo back on before anything else can fail.
    let restored = tcsetattr(&stdin, OptionalActions::Now, &saved);
    writeln!(stderr)?;
    read.context("reading the passphrase")?;
    restored.context("turning the echo back on")?;
    let len = line.trim_end_matches(['\n', '\r']).len();
    line.truncate(len);
    Ok(line)
}

/// How a party command reaches the issuer and merchant servers: HTTPS
/// trusting only the issuer's TLS authority, or plain HTTP when told so.
#[derive(Debug, Clone, Default, Args)]
pub struct TransportArgs {
    /// The issuer's TLS authority certificate (the issuer's `tls-ca.pem`):
    /// the one root trusted, for the issuer's gateway and for every
    /// merchant server (their certificates are issued by it).
    #[arg(long, global = true)]
    pub issuer_cert: Option<PathBuf>,
    /// Speak plain HTTP without TLS: for loopback tests and demos only.
    /// Anyone on the path reads and changes every message.
    #[arg(long, global = true)]
    pub insecure_http: bool,
}

impl TransportArgs {
    /// The client configuration: `--insecure-http`, else the certificate
    /// from `--issuer-cert` or, failing that, `configured` (a path from the
    /// party's configuration file).
    pub fn client_config(&self, configured: Option<&Path>) -> anyhow::Result<ClientConfig> {
        if self.insecure_http {
            return Ok(ClientConfig::default());
        }
        let Some(path) = self.issuer_cert.as_deref().or(configured) else {
            bail!(
                "no issuer certificate to check TLS against: pass --issuer-cert FILE (the \
                 issuer's tls-ca.pem), or --insecure-http for plain HTTP on loopback"
            );
        };
        let ca = IssuerCa::read_pem(path)
            .with_context(|| format!("reading the issuer certificate {}", path.display()))?;
        Ok(ClientConfig::pinned(ca))
    }
}

/// Opens the purse at `path` and a wallet over it; `issuer_url`, if given,
/// replaces the gateway address the purse's issuer record holds.
pub fn open_wallet(
    path: &Path,
    issuer_url: Option<&str>,
    client: ClientConfig,
) -> anyhow::Result<(Arc<Purse>, Wallet)> {
    let purse = open_purse(path)?;
    if let Some(url) = issuer_url {
        let mut info = purse
            .issuer()?
            .context("the purse has no issuer record: run `purse init` first")?;
        if info.gateway_url != url {
            info.gateway_url = url.to_owned();
            purse.set_issuer(&info)?;
        }
    }
    let purse = Arc::new(purse);
    let wallet = Wallet::open(purse.clone(), client)?;
    Ok((purse, wallet))
}

/// A participant id from the command line.
/// `--rsa-bits`: the size of a new RSA key (2048 or 3072).
pub fn parse_rsa_bits(s: &str) -> Result<usize, String> {
    match s {
        "2048" => Ok(2048),
        "3072" => Ok(3072),
        _ => Err("RSA keys are 2048 or 3072 bits".into()),
    }
}

/// The size of a new key of `suite`: `--rsa-bits` if given, else the
/// default. Under a suite whose keys are not RSA the option is refused,
/// not ignored: an operator who asked for RSA-3072 must not get X25519
/// keys without a word.
pub fn rsa_bits_for(
    suite: protocol::crypto::SuiteId,
    given: Option<usize>,
) -> anyhow::Result<usize> {
    match (suite.key_kind(), given) {
        (protocol::crypto::KeyKind::Rsa, given) => {
            Ok(given.unwrap_or(protocol::crypto::RSA_BITS_DEFAULT))
        }
        (_, None) => Ok(protocol::crypto::RSA_BITS_DEFAULT),
        (_, Some(_)) => bail!(
            "--rsa-bits applies to the RSA suites (aes256, tdes); suite {suite} has no RSA keys"
        ),
    }
}

pub fn parse_participant(s: &str) -> Result<ParticipantId, ledger::IdError> {
    ParticipantId::new(s)
}

/// A bank account number from the command line.
pub fn parse_account(s: &str) -> Result<BankAccount, ledger::IdError> {
    BankAccount::new(s)
}

/// Stops the issuer's actors; returns once its files are closed, so the
/// process may exit and an auditor may read its log at once.
pub fn stop_issuer(runtime: gateway::IssuerRuntime) -> anyhow::Result<()> {
    runtime.try_stop().context("stopping the issuer")
}

/// A progress bar of `len` steps on stderr, only when stderr is a terminal
/// (a pipe or a log file gets no control characters).
pub fn progress_bar(len: u64, what: &str) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(len);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {elapsed}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_owned());
    Some(bar)
}

/// A spinner on stderr for an operation of unknown length, only when
/// stderr is a terminal.
pub fn spinner(what: &str) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_message(what.to_owned());
    bar.enable_steady_tick(std::time::Duration::from_millis(100));
    Some(bar)
}

/// Clears a progress display, if there is one.
pub fn finish(bar: Option<indicatif::ProgressBar>) {
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
}

/// Blocks until Ctrl-C or SIGTERM.
pub fn wait_for_stop_signal() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the signal listener")?;
    runtime
        .block_on(stop_signal())
        .context("listening for Ctrl-C and SIGTERM")
}

#[cfg(unix)]
async fn stop_signal() -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r,
        _ = term.recv() => Ok(()),
    }
}

#[cfg(not(unix))]
async fn stop_signal() -> std::io::Result<()> {
    tokio::signal::ctrl_c().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::crypto::SuiteId;

    #[test]
    fn the_papers_spec_parses_to_its_total() {
        let spec = parse_spec("2x2.50, 1x1.25,3X2.00").expect("spec");
        assert_eq!(spec.total().expect("total"), Amount::from_minor(1225));
        assert_eq!(spec.n_coins(), 6);
    }

    #[test]
    fn malformed_specs_are_refused_with_the_culprit_named() {
        for bad in ["", "2", "x2.50", "2x", "-1x2.50", "2xabc", "2x2.50,,x"] {
            let e = parse_spec(bad).expect_err(bad);
            assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn an_oversized_config_file_is_refused_before_it_is_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("big.toml");
        let bytes = usize::try_from(CONFIG_FILE_BYTES_MAX).expect("small") + 1;
        std::fs::write(&path, "a".repeat(bytes)).expect("write");
        let e = read_toml::<toml::Table>(&path).expect_err("too big");
        assert!(e.to_string().contains("limit"), "{e}");
    }

    #[test]
    fn rsa_bits_is_refused_under_a_suite_without_rsa_keys_rather_than_ignored() {
        let err = rsa_bits_for(SuiteId::Dhaes, Some(3072)).expect_err("refused");
        assert!(err.to_string().contains("--rsa-bits"), "{err}");
        assert_eq!(rsa_bits_for(SuiteId::Dhaes, None).expect("bits"), 2048);
        assert_eq!(
            rsa_bits_for(SuiteId::Aes256, Some(3072)).expect("bits"),
            3072
        );
        assert_eq!(rsa_bits_for(SuiteId::Tdes, None).expect("bits"), 2048);
    }
}
