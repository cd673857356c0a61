//! The crypto ceiling: the issuer's cryptographic work for one payment with
//! refresh, and nothing else, in a loop on every core. Per payment: open the
//! ValidationRequest and the payer's `EncC_1` inside it (two RSA-OAEP
//! decryptions with the issuer's own key, read from its key file), check
//! each input coin's tag, tag each new coin, and build Issuance1 (RSA-OAEP
//! encryption of `K_I` to the payee, CTR over the coins, CMAC). The payee's
//! key is the issuer's public key: an encryption costs the same under any
//! key of the modulus size. The Issuance2 check (one CMAC, about a
//! microsecond) is left out. Requests are built before the clock starts;
//! opening one is stateless, so each thread cycles through its own.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use ledger::{Coin, CoinBody, CoinId, KeyEpoch, ParticipantId, Timestamp};
use protocol::crypto::{PublicKey, SecretKey, SuiteId};
use protocol::flows::issuer::{build_payment_issuance1, open_validation_request};
use protocol::flows::{PaymentPayee, PaymentPayer};
use protocol::mint::Mint;
use protocol::wire::payment::{PDesc, VOption, ValidationRequest};

use super::load::Mix;
use super::stats;

/// Requests each thread cycles through.
const REQUESTS_PER_THREAD: usize = 16;
/// The mint epoch of the ceiling's coins.
const CEILING_EPOCH: KeyEpoch = KeyEpoch(1);
/// Lifetime of the ceiling's coins, in seconds.
const COIN_LIFETIME_SECS: u64 = 24 * 3600;

/// What the ceiling measured.
pub struct CeilingReport {
    mix: Mix,
    n_threads: usize,
    n_payments: u64,
    elapsed: Duration,
    cpu_secs: f64,
    load_average: String,
}

impl CeilingReport {
    pub fn payments_per_sec(&self) -> f64 {
        self.n_payments as f64 / self.elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
    }

    /// CPU per payment of the crypto-only loop, in milliseconds.
    pub fn cpu_ms_per_payment(&self) -> f64 {
        if self.n_payments == 0 {
            return 0.0;
        }
        self.cpu_secs * 1000.0 / self.n_payments as f64
    }
}

impl fmt::Display for CeilingReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.elapsed.as_secs_f64().max(f64::MIN_POSITIVE);
        write!(
            f,
            "crypto-only {} on {} threads: {} payments in {:.1} s = {:.1} payments/s, {:.2} ms CPU per payment, CPU {:.2} cores busy; load average {}",
            self.mix.name(),
            self.n_threads,
            self.n_payments,
            secs,
            self.payments_per_sec(),
            self.cpu_ms_per_payment(),
            self.cpu_secs / secs,
            self.load_average
        )
    }
}

/// Everything the loop needs, shared by its threads.
struct Issuer {
    sk_i: SecretKey,
    pk_py: PublicKey,
    id_i: ParticipantId,
    mint: Mint,
}

fn new_body(value: ledger::Amount) -> CoinBody {
    CoinBody {
        id: CoinId::random(),
        value,
        expiry: Timestamp::now().plus_secs(COIN_LIFETIME_SECS),
        epoch: CEILING_EPOCH,
    }
}

/// A ValidationRequest with `mix.n_coins` freshly tagged coins, as a payee
/// would send it.
fn request(issuer: &Issuer, suite: SuiteId, mix: Mix) -> anyhow::Result<ValidationRequest> {
    let (amount, spec) = mix.amount_and_spec()?;
    let value = ledger::Amount::from_minor(super::setup::COIN_VALUE_MINOR);
    let coins = (0..mix.n_coins)
        .map(|_| {
            let body = new_body(value);
            Ok(Coin {
                body,
                tag: issuer.mint.tag(&body)?,
            })
        })
        .collect::<anyhow::Result<Vec<Coin>>>()?;
    let payer = ParticipantId::new("ceiling-payer")?;
    let pk_i = issuer.sk_i.public();
    let (payee, invoice) = PaymentPayee::invoice(
        ParticipantId::new("ceiling-payee")?,
        payer.clone(),
        issuer.id_i.clone(),
        PDesc::new("ceiling")?,
        amount,
        None,
    );
    let (_, send) = PaymentPayer::pay(
        suite,
        &pk_i,
        &issuer.id_i,
        &payer,
        &invoice,
        coins,
        Timestamp::now(),
    )?;
    // The bench's payee holds the issuer's key (`Issuer::pk_py`).
    let (_, request) =
        payee.on_send_coins(suite, &pk_i, &issuer.sk_i, send, VOption::Refresh { spec })?;
    Ok(request)
}

/// The issuer's crypto for one payment.
fn one_payment(issuer: &Issuer, request: &ValidationRequest) -> anyhow::Result<()> {
    let opened = open_validation_request(&issuer.sk_i, request, |_| Some(issuer.pk_py.clone()))?;
    for coin in &opened.coins {
        issuer.mint.check(coin)?;
    }
    let value = ledger::Amount::from_minor(super::setup::COIN_VALUE_MINOR);
    let fresh = (0..opened.coins.len())
        .map(|_| {
            let body = new_body(value);
            Ok(Coin {
                body,
                tag: issuer.mint.tag(&body)?,
            })
        })
        .collect::<anyhow::Result<Vec<Coin>>>()?;
    let answer = build_payment_issuance1(&opened, &issuer.pk_py, &issuer.id_i, fresh)?;
    std::hint::black_box(answer);
    Ok(())
}

/// Mean wall time and mean CPU time of this thread for `f` over `n` runs,
/// in milliseconds. On a shared machine the CPU time is the step's cost;
/// the wall time adds what other processes took meanwhile.
fn time_ms(n: u32, mut f: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<(f64, f64)> {
    let cpu_before = stats::thread_cpu_secs();
    let started = Instant::now();
    for _ in 0..n {
        f()?;
    }
    let per_run = 1000.0 / f64::from(n.max(1));
    Ok((
        started.elapsed().as_secs_f64() * per_run,
        (stats::thread_cpu_secs() - cpu_before) * per_run,
    ))
}

/// Runs of each step timed by [`step_costs`].
/// Enough runs that each step takes 0.2 s or more of CPU: /proc counts CPU
/// time in 10 ms ticks.
const STEP_RUNS_RSA_PRIVATE: u32 = 100;
const STEP_RUNS_RSA_PUBLIC: u32 = 2000;
/// Under `dhaes` a private-key operation costs tens of microseconds, as
/// much as a public one.
const STEP_RUNS_DHAES: u32 = 4000;
const STEP_RUNS_SYMMETRIC: u32 = 100_000;

/// The cost of each cryptographic step of one 1-in/1-out payment, timed
/// one at a time on one thread, as printable lines.
/// What [`step_costs`] measured, for the lines printed and for the
/// whole-payment crypto line (the clients' own RSA at the same key size).
pub struct StepCosts {
    pub lines: Vec<String>,
    /// CPU of one RSA-OAEP decryption (the payee's of `K_I` costs the same
    /// at the same modulus size), in milliseconds.
    pub rsa_decrypt_cpu_ms: f64,
    /// CPU of one RSA-OAEP encryption (SendCoins, ValidationRequest).
    pub rsa_encrypt_cpu_ms: f64,
}

pub fn step_costs(dir: &Path, suite: SuiteId, issuer_key: &Path) -> anyhow::Result<StepCosts> {
    std::fs::create_dir_all(dir)?;
    let sk_i = SecretKey::read_pkcs8(issuer_key)
        .with_context(|| format!("reading the issuer's key {}", issuer_key.display()))?;
    let pk_i = sk_i.public();
    let mut mint = Mint::create(&dir.join("mint-steps.key"), suite)?;
    mint.open_epoch(CEILING_EPOCH)?;
    let issuer = Issuer {
        pk_py: pk_i.clone(),
        sk_i,
        id_i: ParticipantId::new("issuer")?,
        mint,
    };
    let label = "vc/bench/step";
    let body = [7u8; 200];
    let envelope = pk_i.seal(suite, label, &body)?;
    let request = request(&issuer, suite, Mix::ONE_IN_ONE_OUT)?;
    let opened = open_validation_request(&issuer.sk_i, &request, |_| Some(issuer.pk_py.clone()))?;
    let coin = opened
        .coins
        .first()
        .copied()
        .context("the request carries a coin")?;
    let (runs_private, runs_public) = match suite.key_kind() {
        protocol::crypto::KeyKind::Rsa => (STEP_RUNS_RSA_PRIVATE, STEP_RUNS_RSA_PUBLIC),
        protocol::crypto::KeyKind::Ed25519X25519 => (STEP_RUNS_DHAES, STEP_RUNS_DHAES),
    };
    let load = stats::load_average();
    let mut lines = Vec::new();
    let mut line = |name: &str, (wall_ms, cpu_ms): (f64, f64)| {
        lines.push(format!(
            "  step {name}: {cpu_ms:.4} ms CPU ({wall_ms:.4} ms wall)"
        ));
        cpu_ms
    };
    let rsa_decrypt_cpu_ms = line(
        "E* open of one envelope (RSA-OAEP or HPKE; x2 per payment)",
        time_ms(runs_private, || {
            std::hint::black_box(issuer.sk_i.open(label, &envelope)?);
            Ok(())
        })?,
    );
    line(
        "open ValidationRequest + EncC_1 (both decryptions, decoding)",
        time_ms(runs_private, || {
            std::hint::black_box(open_validation_request(&issuer.sk_i, &request, |_| {
                Some(issuer.pk_py.clone())
            })?);
            Ok(())
        })?,
    );
    let rsa_encrypt_cpu_ms = line(
        "E* seal of 200 bytes (RSA-OAEP hybrid or HPKE; K_I to the payee)",
        time_ms(runs_public, || {
            std::hint::black_box(pk_i.seal(suite, label, &body)?);
            Ok(())
        })?,
    );
    line(
        "tag check of one coin",
        time_ms(STEP_RUNS_SYMMETRIC, || {
            issuer.mint.check(&coin)?;
            Ok(())
        })?,
    );
    line(
        "tag of one new coin",
        time_ms(STEP_RUNS_SYMMETRIC, || {
            std::hint::black_box(issuer.mint.tag(&coin.body)?);
            Ok(())
        })?,
    );
    line(
        "build Issuance1 (E* seal of K_I, CTR, CMAC)",
        time_ms(runs_public, || {
            std::hint::black_box(build_payment_issuance1(
                &opened,
                &issuer.pk_py,
                &issuer.id_i,
                vec![coin],
            )?);
            Ok(())
        })?,
    );
    lines.push(format!(
        "  (steps timed on one thread; load average {load})"
    ));
    Ok(StepCosts {
        lines,
        rsa_decrypt_cpu_ms,
        rsa_encrypt_cpu_ms,
    })
}

/// Runs the loop on `n_threads` threads for `duration`. `dir` holds the
/// ceiling's own mint file; `issuer_key` is the issuer's key file.
pub fn run(
    dir: &Path,
    suite: SuiteId,
    issuer_key: &Path,
    mix: Mix,
    duration: Duration,
    n_threads: usize,
) -> anyhow::Result<CeilingReport> {
    std::fs::create_dir_all(dir)?;
    let sk_i = SecretKey::read_pkcs8(issuer_key)
        .with_context(|| format!("reading the issuer's key {}", issuer_key.display()))?;
    let mint_path = dir.join(format!("mint-{}.key", mix.n_coins));
    let mut mint = Mint::create(&mint_path, suite)?;
    mint.open_epoch(CEILING_EPOCH)?;
    let issuer = Arc::new(Issuer {
        pk_py: sk_i.public(),
        sk_i,
        id_i: ParticipantId::new("issuer")?,
        mint,
    });
    let mut prepared = Vec::with_capacity(n_threads);
    for _ in 0..n_threads {
        let requests = (0..REQUESTS_PER_THREAD)
            .map(|_| request(&issuer, suite, mix))
            .collect::<anyhow::Result<Vec<_>>>()?;
        // Check once, outside the clock, that the loop does what it claims.
        one_payment(&issuer, &requests[0])?;
        prepared.push(requests);
    }
    let cpu_before = stats::process_cpu_secs();
    let started = Instant::now();
    let deadline = started + duration;
    let threads = prepared
        .into_iter()
        .map(|requests| {
            let issuer = issuer.clone();
            std::thread::spawn(move || -> anyhow::Result<u64> {
                let mut n = 0u64;
                for request in requests.iter().cycle() {
                    if Instant::now() >= deadline {
                        break;
                    }
                    one_payment(&issuer, request)?;
                    n += 1;
                }
                Ok(n)
            })
        })
        .collect::<Vec<_>>();
    let mut n_payments = 0;
    for thread in threads {
        n_payments += thread
            .join()
            .map_err(|_| anyhow::anyhow!("a ceiling thread panicked"))??;
    }
    let elapsed = started.elapsed();
    Ok(CeilingReport {
        mix,
        n_threads,
        n_payments,
        elapsed,
        cpu_secs: stats::process_cpu_secs() - cpu_before,
        load_average: stats::load_average(),
    })
}
