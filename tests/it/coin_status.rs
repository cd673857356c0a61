//! The coin status query over HTTPS with the real binary: a holder's purse
//! learns, signed by the issuer, which of its coins are unspent and which a
//! copy of it spent elsewhere; a stranger who knows the serials but not the
//! tags learns nothing; the route's own rate per source holds.

use crate::util;

use client::{ClientConfig, ErrorCode, IssuerCa, IssuerClient};
use protocol::wire::BoundedVec;
use protocol::wire::status::{CoinState, HeldCoinStatusQuery};
use util::process::{alice_and_a_bookshop, ok, run, terminate};

fn client(dir: &std::path::Path, ip: u16, attempts_max: u32) -> IssuerClient {
    let ca = IssuerCa::read_pem(&dir.join("iss").join("tls-ca.pem")).expect("ca");
    let config = ClientConfig {
        attempts_max,
        ..ClientConfig::pinned(ca)
    };
    IssuerClient::new(&format!("https://127.0.0.1:{ip}"), config).expect("client")
}

#[test]
fn a_holder_learns_its_coins_status_signed_and_a_stranger_learns_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let stage = alice_and_a_bookshop(dir);

    let fresh = ok(dir, &["purse", "status", "--purse", "alice.purse"]);
    assert_eq!(fresh.matches("issuer: unspent").count(), 4, "{fresh}");
    assert!(fresh.contains("signature verified"), "{fresh}");

    // A copy of the purse, then the original pays 5.00 (two 2.50 coins).
    std::fs::copy(dir.join("alice.purse"), dir.join("copy.purse")).expect("copy");
    ok(
        dir,
        &[
            "purse",
            "pay",
            &stage.shop_url,
            "book",
            "--purse",
            "alice.purse",
        ],
    );
    let copy = run(dir, &["purse", "status", "--purse", "copy.purse"]);
    let copy_out = String::from_utf8_lossy(&copy.stdout).into_owned();
    assert_eq!(copy.status.code(), Some(1), "{copy:?}");
    assert_eq!(copy_out.matches("issuer: SPENT").count(), 2, "{copy_out}");
    assert_eq!(copy_out.matches("issuer: unspent").count(), 2, "{copy_out}");

    // In-process: the holder's answer verifies under the issuer's key; the
    // same serials with other tags are all unknown.
    let purse = purse::Purse::open(dir.join("copy.purse"), &util::passphrase()).expect("purse");
    let coins: Vec<ledger::Coin> = purse
        .coins()
        .expect("coins")
        .iter()
        .map(|c| c.coin)
        .collect();
    drop(purse);
    let issuer = client(dir, stage.ip, 1);
    let pk_i = protocol::crypto::PublicKey::from_ledger(
        &issuer.descriptor().expect("descriptor").public_key,
    )
    .expect("key");
    let holder = HeldCoinStatusQuery {
        coins: BoundedVec::new(coins.clone()).expect("coins"),
    };
    let answer = issuer.held_coin_status(&holder).expect("answer");
    let entries =
        protocol::flows::verify_coin_status(&pk_i, &holder.serials().expect("serials"), &answer)
            .expect("signed by the issuer");
    assert_eq!(
        entries
            .iter()
            .filter(|e| e.state == CoinState::Spent)
            .count(),
        2
    );
    let mut forged = coins.clone();
    for coin in &mut forged {
        coin.tag = ledger::Tag([0; 16]);
    }
    let stranger = HeldCoinStatusQuery {
        coins: BoundedVec::new(forged).expect("coins"),
    };
    let answer = issuer.held_coin_status(&stranger).expect("answer");
    let entries =
        protocol::flows::verify_coin_status(&pk_i, &stranger.serials().expect("serials"), &answer)
            .expect("signed by the issuer");
    assert!(
        entries.iter().all(|e| e.state == CoinState::Unknown),
        "{entries:?}"
    );

    // The route's own rate: a burst of queries from one address is cut
    // off with 429 long before the gateway's general limit would.
    let mut limited = 0;
    for _ in 0..30 {
        match issuer.held_coin_status(&holder) {
            Ok(_) => {}
            Err(e) => {
                assert_eq!(e.code(), Some(ErrorCode::RateLimited), "{e}");
                limited += 1;
            }
        }
    }
    assert!(limited >= 10, "only {limited} of 30 rate limited");
    // Other routes of the same address are not limited by it.
    issuer.descriptor().expect("the descriptor still answers");

    terminate(stage.shop);
    terminate(stage.issuer);
}
