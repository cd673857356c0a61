//! Costs of the primitives the issuer pays per request: HPKE seal and open,
//! Ed25519 sign and verify (`dhaes`); RSA-OAEP open and seal, RSA-PSS sign
//! and verify (2048 and 3072 bits, each RSA backend), the hybrid envelope;
//! session `e_K` / `mac_K`, and mint tags, under every suite.
//! Run: `cargo bench -p vc-protocol --bench crypto` (about two minutes).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ledger::{Amount, Coin, CoinBody, CoinId, KeyEpoch, Timestamp};
use vc_protocol::crypto::{KeyShare, RsaBackend, SecretKey, SessionKey, SuiteId};
use vc_protocol::mint::Mint;

const LABEL: &str = "vc/bench";

fn dhaes(c: &mut Criterion) {
    let key = SecretKey::generate_for(SuiteId::Dhaes, 0).expect("keygen");
    let public = key.public();
    let mut group = c.benchmark_group("dhaes");
    let short = [7u8; 48];
    let env = public.seal(SuiteId::Dhaes, LABEL, &short).expect("seal");
    group.bench_function("hpke_seal_48B", |b| {
        b.iter(|| public.seal(SuiteId::Dhaes, LABEL, black_box(&short)))
    });
    group.bench_function("hpke_open_48B", |b| {
        b.iter(|| key.open(LABEL, black_box(&env)))
    });
    let long = vec![7u8; 4096];
    let env_long = public.seal(SuiteId::Dhaes, LABEL, &long).expect("seal");
    group.bench_function("hpke_open_4KiB", |b| {
        b.iter(|| key.open(LABEL, black_box(&env_long)))
    });
    let sig = key.sign(LABEL, &short);
    group.bench_function("ed25519_sign", |b| {
        b.iter(|| key.sign(LABEL, black_box(&short)))
    });
    group.bench_function("ed25519_verify", |b| {
        b.iter(|| public.verify(LABEL, black_box(&short), &sig))
    });
    group.finish();
}

fn rsa(c: &mut Criterion) {
    for (bits, backend) in [2048, 3072]
        .into_iter()
        .flat_map(|bits| RsaBackend::available().iter().map(move |b| (bits, *b)))
    {
        let der = SecretKey::generate(bits)
            .expect("keygen")
            .to_pkcs8_der()
            .expect("der");
        let key = SecretKey::from_pkcs8_der_with(&der, backend).expect("load");
        let public = key.public();
        let mut group = c.benchmark_group(format!("rsa{bits}_{backend}"));
        group.sample_size(20);
        let short = [7u8; 48];
        let env = public.seal(SuiteId::Aes256, LABEL, &short).expect("seal");
        group.bench_function("oaep_seal_48B", |b| {
            b.iter(|| public.seal(SuiteId::Aes256, LABEL, black_box(&short)))
        });
        group.bench_function("oaep_open_48B", |b| {
            b.iter(|| key.open(LABEL, black_box(&env)))
        });
        let sig = key.sign(LABEL, &short);
        group.bench_function("pss_sign", |b| {
            b.iter(|| key.sign(LABEL, black_box(&short)))
        });
        group.bench_function("pss_verify", |b| {
            b.iter(|| public.verify(LABEL, black_box(&short), &sig))
        });
        if bits == 2048 {
            let long = vec![7u8; 4096];
            for suite in [SuiteId::Aes256, SuiteId::Tdes] {
                let env = public.seal(suite, LABEL, &long).expect("seal");
                group.bench_function(format!("hybrid_open_4KiB_{suite}"), |b| {
                    b.iter(|| key.open(LABEL, black_box(&env)))
                });
            }
        }
        group.finish();
    }
}

fn session(c: &mut Criterion) {
    for suite in SuiteId::ALL {
        let key = SessionKey::combine(suite, &KeyShare::random(), &KeyShare::random());
        let mut group = c.benchmark_group(format!("session_{suite}"));
        let small = [1u8; 64];
        let tag = key.mac(LABEL, &small);
        group.throughput(Throughput::Bytes(small.len() as u64));
        group.bench_function("mac_64B", |b| b.iter(|| key.mac(LABEL, black_box(&small))));
        group.bench_function("verify_mac_64B", |b| {
            b.iter(|| key.verify_mac(LABEL, black_box(&small), &tag))
        });
        let body = vec![2u8; 1024];
        let ct = key.encrypt(LABEL, &body);
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function("encrypt_1KiB", |b| {
            b.iter(|| key.encrypt(LABEL, black_box(&body)))
        });
        group.bench_function("decrypt_1KiB", |b| {
            b.iter(|| key.decrypt(LABEL, black_box(&ct)))
        });
        group.finish();
    }
}

fn mint(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    for suite in SuiteId::ALL {
        let mut mint =
            Mint::create(&dir.path().join(format!("mint-{suite}")), suite).expect("mint");
        mint.open_epoch(KeyEpoch(1)).expect("epoch");
        let body = CoinBody {
            id: CoinId::random(),
            value: Amount::from_minor(250),
            expiry: Timestamp(1_900_000_000),
            epoch: KeyEpoch(1),
        };
        let coin = Coin {
            body,
            tag: mint.tag(&body).expect("tag"),
        };
        let mut group = c.benchmark_group(format!("mint_{suite}"));
        group.bench_function("tag", |b| b.iter(|| mint.tag(black_box(&body))));
        group.bench_function("check", |b| b.iter(|| mint.check(black_box(&coin))));
        group.finish();
    }
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = dhaes, rsa, session, mint
}
criterion_main!(benches);
