//! Replay speed: builds a redb log of `VC_BENCH_EVENTS` events (default 10
//! million) of realistic transactions (purchases, payments with refresh,
//! redemptions, change, signed-shape checkpoints), then audits it with
//! `run_audit` and prints events per second. Run with
//! `cargo bench -p vc-replay --bench replay_speed`.

use std::time::Instant;

use ledger::RawEventStore;
use ledger::{
    Amount, Batch, Checkpoint, CoinBody, CoinId, Event, EventStore, IssueCause, KeyEpoch,
    PaymentOption, PurchaseId, RedbOptions, RedbStore, SealedBankAccount, Sharing, SignatureBytes,
    SpendCause, Timestamp, TxId,
};
use vc_replay::{AuditOptions, Outcome, run_audit};

/// Events appended per redb commit while building the log.
const BUILD_EVENTS_PER_COMMIT: usize = 8192;

/// The generated issuer's first transaction time (2026-01-01T00:00:00Z).
const BENCH_START_SECS: u64 = 1_767_225_600;

struct Generator {
    next: u64,
    /// The issuer's clock: one transaction per second of log time.
    now: Timestamp,
    wallet: std::collections::VecDeque<CoinBody>,
    account: SealedBankAccount,
}

impl Generator {
    fn id(&mut self) -> [u8; 16] {
        self.next += 1;
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&self.next.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_le_bytes());
        out[8..].copy_from_slice(&self.next.to_le_bytes());
        out
    }

    fn coin(&mut self, minor: u64) -> CoinBody {
        CoinBody {
            id: CoinId::from_bytes(self.id()),
            value: Amount::from_minor(minor),
            expiry: Timestamp(4_000_000_000),
            epoch: KeyEpoch(1),
        }
    }

    fn batch(&mut self, events: Vec<Event>) -> Batch {
        let at = self.now;
        self.now = self.now.plus_secs(1);
        Batch {
            tx: TxId::from_bytes(self.id()),
            at,
            events,
        }
    }

    /// One cycle: a purchase settled with four coins, a payment with
    /// refresh, a change and a redemption.
    fn cycle(&mut self, out: &mut Vec<Batch>) {
        let purchase = PurchaseId::from_bytes(self.id());
        let amount = Amount::from_minor(1000);
        let spec = ledger::CoinSpec::new(vec![ledger::Denomination {
            count: 4,
            value: Amount::from_minor(250),
        }])
        .expect("spec");
        let request = self.batch(vec![Event::PurchaseRequested {
            purchase,
            purchaser: ledger::SealedIdentity::from_sealed_bytes(vec![1; 48]).expect("short"),
            bank_account: self.account.clone(),
            spec,
            amount,
            anonymous: true,
            authorization: SignatureBytes(vec![7; 256]),
        }]);
        out.push(request);
        let coins: Vec<CoinBody> = (0..4).map(|_| self.coin(250)).collect();
        self.wallet.extend(coins.iter().copied());
        let settle = self.batch(vec![
            Event::PurchaseSettled { purchase, amount },
            Event::CoinsIssued {
                coins,
                holder: None,
                cause: IssueCause::Purchase(purchase),
            },
        ]);
        out.push(settle);
        let paid: Vec<CoinBody> = self.wallet.drain(..2).collect();
        let fresh = self.coin(paid.iter().map(|c| c.value.minor_units()).sum());
        self.wallet.push_back(fresh);
        let pay = self.batch(vec![
            Event::CoinsSpent {
                coins: paid,
                cause: SpendCause::Payment(PaymentOption::Refresh),
            },
            Event::CoinsIssued {
                coins: vec![fresh],
                holder: None,
                cause: IssueCause::Payment,
            },
        ]);
        out.push(pay);
        let whole = self.wallet.pop_front().expect("the wallet holds coins");
        let halves = [
            self.coin(whole.value.minor_units() / 2),
            self.coin(whole.value.minor_units() - whole.value.minor_units() / 2),
        ];
        self.wallet.extend(halves);
        let change = self.batch(vec![
            Event::CoinsSpent {
                coins: vec![whole],
                cause: SpendCause::Change,
            },
            Event::CoinsIssued {
                coins: halves.to_vec(),
                holder: None,
                cause: IssueCause::Change,
            },
        ]);
        out.push(change);
        // Three out for four bought: outstanding e-money grows by a coin a
        // cycle, as it does while an issuer gains users.
        let redeemed: Vec<CoinBody> = self.wallet.drain(..3).collect();
        let value = redeemed.iter().map(|c| c.value.minor_units()).sum();
        let redeem = self.batch(vec![
            Event::CoinsSpent {
                coins: redeemed,
                cause: SpendCause::Redeem,
            },
            Event::Redeemed {
                amount: Amount::from_minor(value),
                bank_account: self.account.clone(),
            },
        ]);
        out.push(redeem);
    }
}

fn main() {
    let target_events: u64 = std::env::var("VC_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        // An unoptimized build (e.g. `cargo test --benches`) gets a small log.
        .unwrap_or(if cfg!(debug_assertions) {
            100_000
        } else {
            10_000_000
        });
    let dir = tempfile::tempdir().expect("tempdir");
    // VC_BENCH_LOG keeps the log between runs: built once, audited often.
    let path = std::env::var_os("VC_BENCH_LOG")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| dir.path().join("bench-log.redb"));
    let built = Instant::now();
    if !path.exists() {
        let store = RedbStore::open_with(
            &path,
            RedbOptions {
                sharing: Sharing::Exclusive,
                verify_integrity_on_open: false,
            },
        )
        .expect("open log");
        let mut generator = Generator {
            next: 0,
            now: Timestamp(BENCH_START_SECS),
            wallet: std::collections::VecDeque::new(),
            account: SealedBankAccount::from_sealed_bytes(vec![3; 48]).expect("short"),
        };
        let opened = generator.batch(vec![Event::EpochOpened {
            epoch: KeyEpoch(1),
            coins_expire_at: Timestamp(4_000_000_000),
            grace_ends_at: Timestamp(4_100_000_000),
        }]);
        store.append(&[opened]).expect("append");
        let mut written: u64 = 1;
        while written < target_events {
            let mut batches = Vec::new();
            let mut n = 0;
            while n < BUILD_EVENTS_PER_COMMIT {
                generator.cycle(&mut batches);
                n = batches.iter().map(|b| b.events.len()).sum();
            }
            store.append(&batches).expect("append");
            written += n as u64;
            // A checkpoint of the head per commit, shaped like the issuer's
            // (the bench checks hashes, not signatures: RSA is not replay).
            let head = store.head().expect("head");
            let checkpoint = generator.batch(vec![Event::Checkpoint(Checkpoint {
                seq: head.last_seq,
                hash: head.last_hash,
                signature: SignatureBytes(vec![0; 256]),
            })]);
            store.append(&[checkpoint]).expect("append");
            written += 1;
        }
    }
    let build_secs = built.elapsed().as_secs_f64();
    // The two halves of an audit, apart: reading the stored records, and
    // the auditor's checks over records already in memory.
    let phases = std::env::var("VC_BENCH_PHASES").unwrap_or_else(|_| "all".into());
    let (read_secs, check_secs) = if phases == "end-to-end" {
        (f64::NAN, f64::NAN)
    } else {
        let store = RedbStore::open_read_only(&path, Sharing::Exclusive).expect("open");
        let started = Instant::now();
        let mut records = Vec::new();
        loop {
            let chunk = store
                .read_raw(ledger::Seq(records.len() as u64 + 1), 65_536)
                .expect("read");
            if chunk.is_empty() {
                break;
            }
            records.extend(chunk);
        }
        let read_secs = started.elapsed().as_secs_f64();
        let started = Instant::now();
        let mut auditor = vc_replay::Auditor::new(None);
        for record in &records {
            auditor.feed(record).expect("genuine");
        }
        (read_secs, started.elapsed().as_secs_f64())
    };
    let cpu_before = process_cpu_secs();
    let main_before = main_thread_cpu_secs();
    let mut opts = AuditOptions::new(&path);
    // VC_BENCH_CHUNK: records per read (the default otherwise).
    if let Some(chunk) = std::env::var("VC_BENCH_CHUNK")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        opts.read_chunk_records = chunk;
    }
    // VC_BENCH_INTEGRITY=1: through redb's integrity check, as the CLI does.
    opts.verify_integrity = std::env::var_os("VC_BENCH_INTEGRITY").is_some();
    let report = run_audit(opts).expect("audit");
    let cpu_secs = process_cpu_secs() - cpu_before;
    // run_audit replays on the calling thread and reads on one it spawns.
    let replay_secs = main_thread_cpu_secs() - main_before;
    assert_eq!(report.outcome, Outcome::Holds, "{}", report.to_text());
    let secs = report.elapsed_ms as f64 / 1000.0;
    let events = report.records_read_this_run;
    let per_sec = |s: f64| events as f64 / s.max(1e-9);
    println!("built or opened {events} events in {build_secs:.1} s");
    if phases != "end-to-end" {
        println!("read raw records only: {:.0} events/s", per_sec(read_secs));
        println!("auditor checks only:   {:.0} events/s", per_sec(check_secs));
    }
    println!(
        "run_audit end to end:  {:.0} events/s ({secs:.2} s wall, {cpu_secs:.2} s cpu over its two threads, {:.0} events per cpu-second)",
        per_sec(secs),
        per_sec(cpu_secs)
    );
    println!(
        "  of which replay thread {replay_secs:.2} s cpu, reading thread {:.2} s cpu: the slower stage alone allows {:.0} events/s",
        cpu_secs - replay_secs,
        per_sec(replay_secs.max(cpu_secs - replay_secs))
    );
}

/// CPU time the main thread has used, from /proc (0 elsewhere).
fn main_thread_cpu_secs() -> f64 {
    let path = format!("/proc/self/task/{}/stat", std::process::id());
    stat_cpu_secs(&std::fs::read_to_string(path).unwrap_or_default())
}

/// CPU time (user + system) this process has used, from /proc (0 elsewhere).
/// On a shared machine wall time depends on the neighbours; CPU time less so.
fn process_cpu_secs() -> f64 {
    stat_cpu_secs(&std::fs::read_to_string("/proc/self/stat").unwrap_or_default())
}

/// utime + stime of a /proc `stat` line, in seconds (0 if unparsable).
fn stat_cpu_secs(stat: &str) -> f64 {
    // Fields after the command name, which is in parentheses: utime and
    // stime are the 12th and 13th of them, in clock ticks (100 per second).
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}
