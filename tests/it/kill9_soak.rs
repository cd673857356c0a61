//! A kill -9 soak: two purses keep paying a shop through
//! the real binary over loopback while the issuer is SIGKILLed at random
//! moments (before, during or after their payments) and restarted on the
//! same address; after each restart the purses resume what the kill cut
//! off. At the end the auditor passes the log (and the coin-status
//! projection), and every purse's coins agree with the issuer: each coin a
//! purse holds is unspent in the log, each coin it spent is spent there,
//! the unspent coins of the log are exactly those the purses hold, and the
//! outstanding e-money is what they hold together. The shop is never
//! restarted: a payment whose answer a kill cut off reaches it through its
//! own retry of the journaled validation.
//!
//! Bounded: `VC_SOAK_KILLS` kills (10 by default, for CI; `scripts/soak.sh`
//! runs 50). `VC_SOAK_SEED` replays a run's kill moments.

use crate::util;

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use purse::Purse;
use util::books;
use util::process::{
    SERVE_ISSUER, Stage, alice_and_a_bookshop, kill_hard, ok, spawn, terminate, wait_healthy,
};

const KILLS_DEFAULT: u32 = 10;
/// The latest moment of a kill after the payments start (a payment takes
/// ~50-100 ms here, so most kills land in the middle of one).
const KILL_WITHIN_MS: u64 = 150;
/// Coins each payer buys: more than the payments of the longest soak.
const COINS_EACH: u32 = 120;
const PRICE: &str = "0.10";
const PRICE_MINOR: u64 = 10;
/// A small deterministic generator for the kill moments.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// Creates, registers and enrolls a payer's purse and buys its coins.
fn payer(dir: &Path, name: &str, issuer_url: &str) -> String {
    let purse = format!("{name}.purse");
    let account = format!("ACH-{name}");
    // The stage made alice (and her account); bob is new.
    if !dir.join(&purse).exists() {
        ok(
            dir,
            &[
                "bank",
                "--dir",
                "iss",
                "open-account",
                &account,
                "100.00",
                "--issuer",
                issuer_url,
            ],
        );
        ok(
            dir,
            &[
                "purse", "init", "--purse", &purse, "--id", name, "--issuer", issuer_url,
            ],
        );
        ok(dir, &["purse", "register", "--purse", &purse]);
        ok(
            dir,
            &[
                "purse",
                "enroll",
                "purchaser",
                "--account",
                &account,
                "--purse",
                &purse,
            ],
        );
        ok(
            dir,
            &[
                "issuer",
                "enroll",
                "approve",
                name,
                "purchaser",
                "--dir",
                "iss",
            ],
        );
    }
    ok(
        dir,
        &[
            "purse",
            "buy",
            &format!("{COINS_EACH}x{PRICE}"),
            "--account",
            &account,
            "--purse",
            &purse,
        ],
    );
    purse
}

/// Waits for a payment process, whatever its end.
fn reap(mut child: Child) -> bool {
    child.wait().expect("reaped").success()
}

#[test]
fn the_issuer_killed_at_random_moments_during_payments_loses_nothing() {
    let kills = env_u64("VC_SOAK_KILLS").map_or(KILLS_DEFAULT, |k| k as u32);
    let seed = env_u64("VC_SOAK_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
            | 1
    });
    eprintln!("soak: {kills} kills, VC_SOAK_SEED={seed}");
    let mut rng = XorShift(seed);
    let started = Instant::now();

    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let Stage {
        mut issuer,
        shop,
        ip,
        shop_url,
    } = alice_and_a_bookshop(dir);
    let issuer_url = format!("https://127.0.0.1:{ip}");
    // The shop sells one cheap item, so each payment spends one coin.
    terminate(shop);
    let shop_listen = shop_url.trim_start_matches("https://").to_owned();
    let shop_port: u16 = shop_listen
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("shop port");
    let shop = spawn(
        dir,
        &[
            "merchant",
            "serve",
            "--purse",
            "shop.purse",
            "--listen",
            &shop_listen,
            "--item",
            &format!("tea={PRICE}"),
            // Both payers come from 127.0.0.1, and each payment a kill cut
            // off before its validation leaves its order open (the payer
            // took its coins back through the issuer).
            "--open-orders-per-client",
            "1000",
        ],
    );
    wait_healthy(shop_port);
    let payers = [
        payer(dir, "alice", &issuer_url),
        payer(dir, "bob", &issuer_url),
    ];
    let setup = started.elapsed();

    let mut paid_at_once = 0u32;
    let mut cut_off = 0u32;
    let mut restart_total = Duration::ZERO;
    for _ in 0..kills {
        let paying: Vec<Child> = payers
            .iter()
            .map(|p| spawn(dir, &["purse", "pay", &shop_url, "tea", "--purse", p]))
            .collect();
        std::thread::sleep(Duration::from_millis(rng.below(KILL_WITHIN_MS)));
        kill_hard(issuer);
        for child in paying {
            if reap(child) {
                paid_at_once += 1;
            } else {
                cut_off += 1;
            }
        }
        let restarting = Instant::now();
        issuer = spawn(dir, &SERVE_ISSUER);
        wait_healthy(ip);
        restart_total += restarting.elapsed();
        for p in &payers {
            books::resume(dir, p);
        }
    }
    let soak = started.elapsed() - setup;

    // One more payment each: the issuer still serves.
    for p in &payers {
        ok(dir, &["purse", "pay", &shop_url, "tea", "--purse", p]);
    }
    // A validation the last kill cut off after the issuer committed it is
    // still in the shop's journal: its payer, refused "already spent" when
    // it took its coins back, does not come back for it, and the shop's own
    // retry collects it. Two retry periods pass before the shop stops.
    std::thread::sleep(Duration::from_millis(
        2 * client::constants::MERCHANT_COLLECTION_RETRY_MS + 1_000,
    ));
    terminate(shop);
    terminate(issuer);

    let audit = ok(
        dir,
        &[
            "audit",
            "--log",
            "iss/log.redb",
            "--issuer-key",
            "iss/issuer.pub",
            "--coin-status",
            "iss/coin-status.redb",
        ],
    );
    assert!(audit.contains("AUDIT PASSED"), "{audit}");

    // Every purse agrees with the log, coin by coin.
    let held_minor: u64 = books::purses_agree_with_the_log(
        dir,
        &dir.join("iss/log.redb"),
        &["alice.purse", "bob.purse", "shop.purse"],
    )
    .values()
    .sum();
    // Alice's 4 × 2.50 and both payers' coins: every payment moved one
    // 0.10 coin to the shop, none was lost on the way.
    let bought_minor = 4 * 250 + 2 * u64::from(COINS_EACH) * PRICE_MINOR;
    assert_eq!(held_minor, bought_minor, "conservation across the purses");
    let shop_coins = Purse::open(dir.join("shop.purse"), &util::passphrase())
        .expect("shop purse")
        .balance()
        .expect("balance")
        .n_available;
    assert!(
        shop_coins as u32 >= paid_at_once + 2,
        "the shop holds every coin paid"
    );
    eprintln!(
        "soak: {kills} kills in {soak:?} ({:?} per kill; restarts {:?} on average), setup {setup:?}; {paid_at_once} payments completed before their kill, {cut_off} cut off by it and resumed, the shop holds {shop_coins} coins",
        soak / kills.max(1),
        restart_total / kills.max(1)
    );
}
