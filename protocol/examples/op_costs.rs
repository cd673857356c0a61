//! CPU time of each public-key operation under each suite and RSA backend,
//! one thread, measured as this thread's CPU time (from
//! `/proc/thread-self/stat`), so that other tenants of a shared machine
//! disturb the figures less than wall time would.
//!
//! Run: `cargo run --release -p vc-protocol --example op_costs` (about a
//! minute). Prints a Markdown table.

use std::hint::black_box;
use std::time::Instant;

use vc_protocol::crypto::{RsaBackend, SecretKey, SuiteId};

const LABEL: &str = "vc/bench/op";
/// Each operation runs until it has used this much CPU (the kernel counts
/// in 10 ms ticks, so this bounds the rounding to 2 %).
const CPU_SECS_PER_OP: f64 = 0.5;

fn ticks_per_sec() -> f64 {
    // USER_HZ is 100 on every Linux this runs on.
    100.0
}

fn thread_cpu_secs() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/thread-self/stat") else {
        return 0.0;
    };
    // The command name (field 2) may hold spaces: fields count from after it.
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11).and_then(|f| f.parse().ok()).unwrap_or(0.0);
    let stime: f64 = fields.get(12).and_then(|f| f.parse().ok()).unwrap_or(0.0);
    (utime + stime) / ticks_per_sec()
}

/// Mean CPU and wall microseconds of `f`, run until it has used
/// [`CPU_SECS_PER_OP`] of CPU.
fn cost(mut f: impl FnMut()) -> (f64, f64) {
    f();
    let cpu0 = thread_cpu_secs();
    let wall0 = Instant::now();
    let mut n = 0u64;
    while thread_cpu_secs() - cpu0 < CPU_SECS_PER_OP {
        for _ in 0..16 {
            f();
        }
        n += 16;
    }
    let per = 1e6 / n as f64;
    (
        (thread_cpu_secs() - cpu0) * per,
        wall0.elapsed().as_secs_f64() * per,
    )
}

fn row(what: &str, (cpu, wall): (f64, f64)) {
    println!("| {what} | {cpu:.1} µs | {wall:.1} µs |");
}

#[allow(clippy::expect_used)]
fn main() {
    println!("| operation | CPU per op | wall per op |");
    println!("|---|---|---|");
    let body = [7u8; 200];
    let dhaes = SecretKey::generate_for(SuiteId::Dhaes, 0).expect("keygen");
    row(
        "dhaes: key generation (Ed25519 + X25519)",
        cost(|| {
            black_box(SecretKey::generate_for(SuiteId::Dhaes, 0).expect("keygen"));
        }),
    );
    let mut rsa_keys = Vec::new();
    for bits in [2048, 3072] {
        let der = SecretKey::generate(bits)
            .expect("keygen")
            .to_pkcs8_der()
            .expect("der");
        for backend in RsaBackend::available() {
            rsa_keys.push((
                bits,
                *backend,
                SecretKey::from_pkcs8_der_with(&der, *backend).expect("load"),
            ));
        }
    }
    let mut cases = vec![(SuiteId::Dhaes, "dhaes".to_owned(), dhaes)];
    for (bits, backend, key) in rsa_keys {
        cases.push((SuiteId::Aes256, format!("RSA-{bits} on {backend}"), key));
    }
    for (suite, name, key) in &cases {
        let public = key.public();
        let env = public.seal(*suite, LABEL, &body).expect("seal");
        let sig = key.sign(LABEL, &body);
        row(
            &format!("{name}: E* seal, 200 B"),
            cost(|| {
                black_box(public.seal(*suite, LABEL, black_box(&body)).expect("seal"));
            }),
        );
        row(
            &format!("{name}: E* open, 200 B"),
            cost(|| {
                black_box(key.open(LABEL, black_box(&env)).expect("open"));
            }),
        );
        row(
            &format!("{name}: S sign"),
            cost(|| {
                black_box(key.sign(LABEL, black_box(&body)));
            }),
        );
        row(
            &format!("{name}: S verify"),
            cost(|| {
                public
                    .verify(LABEL, black_box(&body), &sig)
                    .expect("verify");
            }),
        );
    }
}
