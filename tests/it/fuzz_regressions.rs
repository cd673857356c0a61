//! Replays the fuzzing corpus under plain `cargo test`: every committed seed
//! (`fuzz/seeds/<target>/`) and every crash reproducer the fuzzer found
//! (`fuzz/regressions/<target>/`) goes through the same entry points as the
//! cargo-fuzz targets (`fuzz/src/lib.rs`, included here by path), which
//! panic on a decoder panic or a failed round trip.
//!
//! With `VC_FUZZ_WRITE_SEEDS=1` the seed writer also runs the real flows in
//! memory (registration, enrollment, purchase, payments with every option, a
//! double spend, refund, coin status) and writes the messages they exchange,
//! the envelopes' opened bodies, real events and stored records, a real purse
//! and mint file, and card messages as the committed seeds.

#[allow(dead_code, clippy::expect_used)]
#[path = "../../fuzz/src/lib.rs"]
mod harness;

#[allow(unused_imports, clippy::expect_used)]
#[path = "../../protocol/tests/it/flow_support/mod.rs"]
mod flow_support;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use harness::Outcome;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn run(target: harness::EntryPoint, path: &Path) -> Outcome {
    let bytes = fs::read(path).expect("read a corpus file");
    let outcome = std::panic::catch_unwind(|| target(&bytes));
    match outcome {
        Ok(outcome) => outcome,
        Err(_) => panic!("{} panics the decoder", path.display()),
    }
}

// Every seed is decoded without a panic, and the seeds made from real
// messages mostly decode: a target whose seeds all fail would be fuzzing
// nothing but the first check of its decoder. Every input that once crashed
// a target now decodes or is refused with a typed error. (One test, so the
// file targets' scratch directory is removed when no one is using it.)
#[test]
fn every_seed_and_crash_reproducer_decodes_or_is_refused_without_panic() {
    for (name, target) in harness::TARGETS {
        let seeds = files_in(&fuzz_dir().join("seeds").join(name));
        assert!(!seeds.is_empty(), "target {name} has no committed seeds");
        let decoded = seeds
            .iter()
            .filter(|p| run(*target, p) == Outcome::Decoded)
            .count();
        assert!(
            decoded * 2 >= seeds.len(),
            "only {decoded} of {} seeds of {name} decode",
            seeds.len()
        );
        for path in files_in(&fuzz_dir().join("regressions").join(name)) {
            if let Outcome::Refused(reason) = run(*target, &path) {
                assert!(
                    !reason.is_empty(),
                    "{} refused without a reason",
                    path.display()
                );
            }
        }
    }
    let _ = fs::remove_dir_all(harness::scratch_dir());
}

// Every wire message type the flows exchange has a seed that decodes as
// that type.
#[test]
fn wire_seeds_cover_the_messages_of_every_flow() {
    let mut covered = BTreeSet::new();
    for path in files_in(&fuzz_dir().join("seeds").join("wire")) {
        let bytes = fs::read(&path).expect("read a seed");
        if harness::wire(&bytes) == Outcome::Decoded {
            let (name, _) = harness::WIRE_MESSAGES[usize::from(bytes[0])];
            covered.insert(name);
        }
    }
    for name in [
        "RegisterRequest",
        "Certificate",
        "EnrollmentRequest",
        "EnrollmentBody",
        "EnrollmentAnswer",
        "WRequest1",
        "WRequest1Body",
        "WRequest2",
        "WRequest3",
        "PurchasePoll",
        "PurchaseIssuance1",
        "IssuedCoins",
        "PurchaseIssuance2",
        "Invoice",
        "SendCoins",
        "SendCoinsBody",
        "ValidationRequest",
        "ValidationBody",
        "PaymentIssuance1",
        "PaymentIssuance2",
        "PaymentResult",
        "RefundRequest",
        "RefundBody",
        "RefundAnswer",
        "CoinStatusQuery",
        "CoinStatusAnswer",
    ] {
        assert!(covered.contains(name), "no wire seed decodes as {name}");
    }
}

// The seed writer; see the module docs. Without the variable it only checks
// that the flows still produce every message it would write.
#[test]
fn seed_writer_runs_the_real_flows() {
    let seeds = seeds::make_all();
    for (target, _) in harness::TARGETS {
        assert!(
            seeds.iter().any(|(t, _, _)| t == target),
            "the flows produced no seed for {target}"
        );
    }
    if std::env::var_os("VC_FUZZ_WRITE_SEEDS").is_some() {
        seeds::write(&fuzz_dir().join("seeds"), &seeds);
    }
}

mod seeds {
    //! Seeds from real flows, named `<what>-<n>` under their target.

    use std::collections::BTreeMap;
    use std::fs;
    use std::path::Path;

    use ledger::{Amount, CardId, Coin, CoinId, Event, Timestamp};
    use protocol::crypto::{Envelope, SecretKey, SuiteId};
    use protocol::flows::SelfPayment;
    use protocol::wire::payment::{SendCoins, VOption, ValidationBody, ValidationRequest};
    use protocol::wire::purchase::{IssuedCoins, WRequest1, WRequest2};
    use protocol::wire::refund::RefundRequest;
    use protocol::wire::{WireMessage, decode, encode};

    use super::flow_support::{World, account, keys, spec};
    use super::harness;

    /// (target, what, bytes)
    pub type Seed = (&'static str, String, Vec<u8>);

    pub fn write(dir: &Path, seeds: &[Seed]) {
        let mut counts: BTreeMap<(&str, &str), usize> = BTreeMap::new();
        for (target, what, bytes) in seeds {
            let n = counts.entry((target, what.as_str())).or_default();
            *n += 1;
            let target_dir = dir.join(target);
            fs::create_dir_all(&target_dir).expect("seed dir");
            fs::write(target_dir.join(format!("{what}-{n}")), bytes).expect("write seed");
        }
    }

    pub fn make_all() -> Vec<Seed> {
        let mut out = Vec::new();
        wire_and_crypto(&mut out);
        events(&mut out);
        purse_file(&mut out);
        key_files(&mut out);
        card(&mut out);
        out
    }

    fn wire_seed(out: &mut Vec<Seed>, name: &str, bytes: &[u8]) {
        let selector = harness::wire_selector(name).expect("a known message");
        let mut seed = vec![selector];
        seed.extend_from_slice(bytes);
        out.push(("wire", name.to_string(), seed));
    }

    fn crypto_seed(out: &mut Vec<Seed>, what: &str, selector: u8, bytes: &[u8]) {
        let mut seed = vec![selector];
        seed.extend_from_slice(bytes);
        out.push(("crypto", what.to_string(), seed));
    }

    /// Opens `env` with whichever key and label it was sealed under.
    fn open_any(env: &Envelope) -> Option<Vec<u8>> {
        keys().iter().find_map(|sk| {
            protocol::wire::labels::ALL
                .iter()
                .find_map(|label| sk.open(label, env).ok())
        })
    }

    fn body_seed<M: WireMessage>(out: &mut Vec<Seed>, env: &Envelope) -> Option<M> {
        let plain = open_any(env)?;
        let body = decode::<M>(&plain).ok()?;
        wire_seed(out, M::NAME, &plain);
        Some(body)
    }

    fn wire_and_crypto(out: &mut Vec<Seed>) {
        let mut w = World::new(SuiteId::Aes256);
        let coins = w.buy(&spec(&[(2, 250), (2, 100), (1, 50)]), false);
        let anonymous = w.buy(&spec(&[(1, 300)]), true);
        let by_value = |v: u64| -> Vec<Coin> {
            coins
                .iter()
                .filter(|c| c.value() == Amount::from_minor(v))
                .cloned()
                .collect()
        };
        let two_fifty = by_value(250);
        w.pay(
            two_fifty.clone(),
            VOption::Refresh {
                spec: spec(&[(5, 100)]),
            },
            true,
        );
        w.pay(by_value(100), VOption::Aggregate, false);
        w.pay(
            anonymous,
            VOption::Redeem {
                bank_account: account("222-bob"),
            },
            true,
        );
        // A double spend: the issuer's signed rejection reaches the payer.
        w.pay(two_fifty, VOption::Aggregate, true);
        let alice_sk = w.alice.sk.clone();
        let change = SelfPayment::change(
            w.suite,
            &w.issuer.pk(),
            &w.alice.sk,
            &w.issuer.id,
            &w.alice.id,
            by_value(50),
            spec(&[(2, 25)]),
        );
        if let Ok(started) = change {
            w.self_pay(&alice_sk, started);
        }
        w.refund();
        w.status(coins.iter().map(Coin::id).collect::<Vec<CoinId>>());

        let issued = IssuedCoins {
            coins: protocol::wire::CoinList::new(coins.clone()).expect("few coins"),
        };
        wire_seed(out, IssuedCoins::NAME, &encode(&issued));

        for rec in &w.wire.seen {
            wire_seed(out, rec.name, &rec.bytes);
            let envelope = match rec.name {
                "EnrollmentRequest" => {
                    decode::<protocol::wire::enrollment::EnrollmentRequest>(&rec.bytes)
                        .ok()
                        .map(|m| m.envelope)
                }
                "WRequest1" => decode::<WRequest1>(&rec.bytes).ok().map(|m| m.envelope),
                "WRequest2" => decode::<WRequest2>(&rec.bytes).ok().map(|m| m.envelope),
                "SendCoins" => decode::<SendCoins>(&rec.bytes).ok().map(|m| m.enc_c1),
                "ValidationRequest" => decode::<ValidationRequest>(&rec.bytes)
                    .ok()
                    .map(|m| m.envelope),
                "RefundRequest" => decode::<RefundRequest>(&rec.bytes).ok().map(|m| m.envelope),
                _ => None,
            };
            let Some(env) = envelope else { continue };
            crypto_seed(out, "envelope", 0, &env.to_bytes());
            match rec.name {
                "EnrollmentRequest" => {
                    if let Some(body) =
                        body_seed::<protocol::wire::enrollment::EnrollmentBody>(out, &env)
                    {
                        crypto_seed(out, "signature", 2, body.signature.as_bytes());
                    }
                }
                "WRequest1" => {
                    body_seed::<protocol::wire::purchase::WRequest1Body>(out, &env);
                }
                "WRequest2" => {
                    body_seed::<protocol::wire::purchase::WRequest2Body>(out, &env);
                }
                "SendCoins" => {
                    body_seed::<protocol::wire::payment::SendCoinsBody>(out, &env);
                }
                "ValidationRequest" => {
                    if let Some(body) = body_seed::<ValidationBody>(out, &env) {
                        crypto_seed(out, "envelope", 0, &body.enc_c1.to_bytes());
                        body_seed::<protocol::wire::payment::SendCoinsBody>(out, &body.enc_c1);
                    }
                }
                _ => {
                    body_seed::<protocol::wire::refund::RefundBody>(out, &env);
                }
            }
        }
        for sk in keys().iter().take(2) {
            crypto_seed(out, "spki", 1, &sk.public().to_spki_der());
        }
        crypto_seed(out, "mactag", 3, &[7u8; 16]);
        let pkcs8 = keys()[3].to_pkcs8_der().expect("pkcs8");
        crypto_seed(out, "pkcs8", 4, &pkcs8);
    }

    /// Events of every kind, from the ledger's own generator with a fixed
    /// seed, so rewriting the seeds gives the same files.
    fn sample_events() -> Vec<Event> {
        use proptest::strategy::{Strategy, ValueTree};
        use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
        let mut runner = TestRunner::new_with_rng(
            Config::default(),
            TestRng::deterministic_rng(RngAlgorithm::ChaCha),
        );
        (0..24)
            .map(|_| {
                ledger::testkit::arb_event()
                    .new_tree(&mut runner)
                    .expect("an event")
                    .current()
            })
            .collect()
    }

    fn events(out: &mut Vec<Seed>) {
        for ev in sample_events() {
            let mut seed = vec![0u8];
            seed.extend_from_slice(&ev.encode());
            out.push(("event", "event".into(), seed));
        }
        let batch = ledger::testkit::sample_batch(1, 4);
        let mut chain = vec![2u8];
        for (i, ev) in batch.events.iter().enumerate() {
            let len = u16::try_from(batch.events.len()).expect("few");
            let index = u16::try_from(i).expect("few");
            let value = harness::record_value(1, [3; 16], index, len, ev);
            let mut seed = vec![1u8];
            seed.extend_from_slice(&value);
            out.push(("event", "record".into(), seed));
            chain.push(1);
            chain.extend_from_slice(&u16::try_from(value.len()).expect("small").to_le_bytes());
            chain.extend_from_slice(&value);
        }
        out.push(("event", "chain".into(), chain.clone()));
        let mut resumed = vec![3u8];
        resumed.extend_from_slice(&7u64.to_le_bytes());
        resumed.extend_from_slice(&[9u8; 32]);
        resumed.extend_from_slice(&chain[1..]);
        out.push(("event", "resume".into(), resumed));
    }

    fn purse_file(out: &mut Vec<Seed>) {
        use purse::{Completion, Destination, NewTransaction, Purse, PurseProfile, Step, TxKind};
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("seed.purse");
        let w = World::new(SuiteId::Aes256);
        let profile =
            PurseProfile::from_secret_key(w.alice.id.clone(), SuiteId::Aes256, &keys()[1])
                .expect("profile");
        let issuer = purse::IssuerInfo {
            issuer: w.issuer.id.clone(),
            public_key: w.issuer.pk().to_ledger(),
            gateway_url: "http://127.0.0.1:8080".into(),
        };
        let p = Purse::create(&path, &profile, Some(&issuer), harness::fuzz_purse_key())
            .expect("purse");
        let mut world = w;
        let coins = world.buy(&spec(&[(2, 100), (1, 50)]), false);
        let now = Timestamp(1_900_000_000);
        let total = Amount::from_minor(250);
        let tx = p
            .begin(NewTransaction {
                kind: TxKind::Purchase,
                amount: total,
                reserve: Vec::new(),
                step: Step::Request,
                to: Destination::Issuer,
                message: vec![1, 2, 3],
                secrets: vec![purse::SessionSecret::new(vec![5; 32])],
                context: vec![9; 8],
                now,
            })
            .expect("begin");
        p.complete(
            tx,
            Completion {
                received: coins.clone(),
                ..Completion::default()
            },
        )
        .expect("complete");
        p.begin(NewTransaction {
            kind: TxKind::Pay,
            amount: coins[0].value(),
            reserve: vec![coins[0].id()],
            step: Step::Request,
            to: Destination::Payee("http://127.0.0.1:9000".into()),
            message: vec![4; 16],
            secrets: Vec::new(),
            context: Vec::new(),
            now,
        })
        .expect("begin pay");
        drop(p);
        let tables = harness::read_purse_tables(&path).expect("purse tables");
        out.push((
            "purse_file",
            "records".into(),
            harness::purse_records_input(&tables),
        ));
        // Each record alone, so the fuzzer mutates one decoder at a time.
        for record in tables.iter().filter(|(t, _, _)| *t > 0) {
            out.push((
                "purse_file",
                format!("table{}", record.0),
                harness::purse_records_input(std::slice::from_ref(record)),
            ));
        }
        // The head of a real purse file: the garbage-file decoder's start.
        let file = fs::read(&path).expect("purse file");
        let mut head = vec![0u8];
        head.extend_from_slice(&file[..file.len().min(4096)]);
        out.push(("purse_file", "file-head".into(), head));
    }

    fn key_files(out: &mut Vec<Seed>) {
        let dir = tempfile::tempdir().expect("tempdir");
        for suite in SuiteId::ALL {
            let path = dir.path().join(format!("{}.mint", suite.name()));
            let mut mint = protocol::mint::Mint::create(&path, suite).expect("mint");
            mint.open_epoch(ledger::KeyEpoch(1)).expect("epoch");
            mint.open_epoch(ledger::KeyEpoch(2)).expect("epoch");
            let file = fs::read(&path).expect("mint file");
            let mut raw = vec![0u8];
            raw.extend_from_slice(&file);
            out.push(("key_files", "mint".into(), raw));
            // Between the magic and the checksum: what selector 1 wraps.
            let mut body = vec![1u8];
            body.extend_from_slice(&file[8..file.len() - 32]);
            out.push(("key_files", "mint-body".into(), body));
        }
        let sk: &SecretKey = &keys()[3];
        let mut pk8 = vec![2u8];
        pk8.extend_from_slice(&sk.to_pkcs8_der().expect("pkcs8"));
        out.push(("key_files", "pkcs8".into(), pk8));
    }

    fn card(out: &mut Vec<Seed>) {
        use card_bridge::crypto::Mac;
        use card_bridge::wire::{
            CardProof, Direction, L1, L2, L3, Outcome, PsamId, PurchaseProof, PurchaseRequest,
            RejectProof,
        };
        let card = CardId::from_bytes([1, 2, 3, 4, 5, 6, 7, 8]);
        let mac = Mac::from_slice(&[0xa5; 8]).expect("8 bytes");
        let mac16 = Mac::from_slice(&[0x5a; 16]).expect("16 bytes");
        let amt = Amount::from_minor;
        let l1 = L1 {
            direction: Direction::Load,
            card,
            nt: 4,
            amount: amt(500),
            balance: amt(1200),
            balance_max: amt(50_000),
            last_nt: 3,
            last_outcome: Some(Outcome::Committed),
            r_sm: [7; 16],
            commitment: card_bridge::wire::reject_commitment(&card, 4, &[8; 16]),
            s1: mac,
        };
        let l2 = L2 {
            direction: Direction::Unload,
            card,
            nt: 4,
            amount: amt(500),
            r_lus: [9; 16],
            s2: mac16,
        };
        let l3 = L3 {
            direction: Direction::Load,
            card,
            nt: 4,
            amount: amt(500),
            new_balance: amt(1700),
            s3: mac,
        };
        let reject = RejectProof {
            direction: Direction::Load,
            card,
            nt: 4,
            r_sm_prime: [8; 16],
        };
        let psam = PsamId([9; 8]);
        let request = PurchaseRequest {
            psam,
            psam_nt: 11,
            card,
            amount: amt(125),
            r_psam: [6; 16],
            mac: mac16,
        };
        let proof = PurchaseProof {
            card,
            nt: 5,
            psam,
            psam_nt: 11,
            amount: amt(125),
            balance_after: amt(1575),
            r_psam: [6; 16],
            mac: mac16,
        };
        let mut push = |name: &str, bytes: Vec<u8>| {
            let selector = harness::CARD_MESSAGES
                .iter()
                .position(|(n, _)| *n == name)
                .expect("a card message");
            let mut seed = vec![u8::try_from(selector).expect("few")];
            seed.extend_from_slice(&bytes);
            out.push(("card_wire", name.to_string(), seed));
        };
        push("L1", card_bridge::wire::encode(&l1));
        push("L2", card_bridge::wire::encode(&l2));
        push("L3", card_bridge::wire::encode(&l3));
        push("RejectProof", card_bridge::wire::encode(&reject));
        for p in [
            CardProof::Completed(l3),
            CardProof::Rejected(reject),
            CardProof::Pending,
            CardProof::Unknown,
        ] {
            push("CardProof", card_bridge::wire::encode(&p));
        }
        push("PurchaseRequest", card_bridge::wire::encode(&request));
        push("PurchaseProof", card_bridge::wire::encode(&proof));
    }
}
