//! Revoking a key epoch over HTTPS with the real binary. The issuer's mint
//! key file is stolen; the forger tags coins of its own and copies of an
//! honest holder's coins (their bodies are in the log). The operator's
//! `issuer epoch revoke 1` stops the epoch's coins at once; the forger's
//! own coins are worth nothing (never issued), its copy of an honest coin
//! takes that coin's value and no more; alice learns of the revocation
//! from the issuer's public list (`GET /v1/epochs/revoked`) and recoups
//! the rest with `purse recoup` (no epoch named), and the issuer never pays out more than the epoch owed. The
//! audit accounts for the revocation and the recoups.

use crate::util;

use client::{ClientConfig, IssuerCa, IssuerClient};
use ledger::{Amount, Coin, CoinBody, CoinId, CoinSpec, Denomination, KeyEpoch};
use protocol::flows::payment::{PayeeOutcome, SelfPayment};
use protocol::mint::Mint;
use protocol::wire::RejectReason;
use protocol::wire::encode;
use protocol::wire::payment::PaymentIssuance1;
use util::process::{alice_holding_4_x_2_50, audit_stage, ok, run, serve_new_issuer, terminate};

/// Hands `coins` to the issuer as a recoup (a refresh to oneself) signed by
/// the purse at `purse_file`: the value of fresh coins, or the refusal.
fn recoup_directly(
    dir: &std::path::Path,
    url: &str,
    purse_file: &str,
    coins: Vec<Coin>,
) -> Result<Amount, RejectReason> {
    let purse = purse::Purse::open(dir.join(purse_file), &util::passphrase()).expect("purse");
    let profile = purse.profile().expect("profile");
    let sk = profile.secret_key().expect("key");
    let info = purse.issuer().expect("issuer").expect("issuer record");
    let lines = coins
        .iter()
        .map(|c| Denomination {
            count: 1,
            value: c.value(),
        })
        .collect();
    let (awaiting, request) = SelfPayment::refresh(
        profile.suite,
        &info.key().expect("issuer key"),
        &sk,
        &info.issuer,
        &profile.participant,
        coins,
        CoinSpec::new(lines).expect("spec"),
    )
    .expect("request");
    let ca = IssuerCa::read_pem(&dir.join("iss").join("tls-ca.pem")).expect("ca");
    let client = IssuerClient::new(url, ClientConfig::pinned(ca)).expect("client");
    let answer: PaymentIssuance1 = client
        .http()
        .post_encoded("/v1/validate", &encode(&request))
        .expect("answer");
    match awaiting.on_issuance1(&sk, &answer).expect("opens") {
        PayeeOutcome::Coins { coins, .. } => {
            Ok(Amount::checked_sum(coins.iter().map(Coin::value)).expect("sum"))
        }
        PayeeOutcome::Rejected(r) => Err(r.reason),
        PayeeOutcome::Receipt(_) => panic!("a refresh answered with a receipt"),
    }
}

fn alice_coins(dir: &std::path::Path) -> Vec<Coin> {
    let purse = purse::Purse::open(dir.join("alice.purse"), &util::passphrase()).expect("purse");
    purse
        .coins()
        .expect("coins")
        .iter()
        .map(|c| c.coin)
        .collect()
}

#[test]
fn a_revoked_epoch_pays_its_honest_holders_and_never_more_than_it_owed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let (issuer, ip) = serve_new_issuer(dir);
    let url = format!("https://127.0.0.1:{ip}");
    alice_holding_4_x_2_50(dir, &url);
    // The forger: a registered participant of its own.
    ok(
        dir,
        &[
            "purse",
            "init",
            "--purse",
            "mallory.purse",
            "--id",
            "mallory",
            "--issuer",
            &url,
        ],
    );
    ok(dir, &["purse", "register", "--purse", "mallory.purse"]);

    // The stolen key: the forger tags a coin never issued, and a copy of
    // one of alice's coins (whose body the log shows).
    let stolen = Mint::open(&dir.join("iss").join("mint.key")).expect("the mint file");
    let honest = alice_coins(dir);
    assert_eq!(honest.len(), 4);
    let tag = |body: CoinBody| Coin {
        body,
        tag: stolen.tag(&body).expect("tag"),
    };
    let invented = tag(CoinBody {
        id: CoinId::random(),
        value: Amount::from_minor(100_000),
        ..honest[0].body
    });
    let copied = tag(honest[0].body);
    assert_eq!(copied, honest[0], "a stolen key makes the very same coin");

    let ca = IssuerCa::read_pem(&dir.join("iss").join("tls-ca.pem")).expect("ca");
    let public = IssuerClient::new(&url, ClientConfig::pinned(ca)).expect("client");
    let listed = || public.revoked_epochs().expect("revoked epochs").epochs;
    assert_eq!(listed(), Vec::<KeyEpoch>::new());
    let nothing = ok(dir, &["purse", "recoup", "--purse", "alice.purse"]);
    assert!(
        nothing.contains("no coin of a revoked key epoch"),
        "{nothing}"
    );

    let revoked = ok(dir, &["issuer", "epoch", "revoke", "1", "--dir", "iss"]);
    assert!(revoked.contains("key epoch 1 revoked"), "{revoked}");
    assert!(revoked.contains("10.00"), "{revoked}");
    let again = ok(dir, &["issuer", "epoch", "revoke", "1", "--dir", "iss"]);
    assert!(again.contains("key epoch 1 revoked"), "{again}");

    // Anyone can learn that the epoch is revoked.
    assert_eq!(listed(), vec![KeyEpoch(1)]);

    // At once: a coin of the epoch buys nothing any more (a change).
    let change = run(
        dir,
        &["purse", "change", "1x2.50", "--purse", "alice.purse"],
    );
    assert!(!change.status.success(), "{change:?}");

    // The forger's invented coin was never issued: refused, whatever its tag.
    assert_eq!(
        recoup_directly(dir, &url, "mallory.purse", vec![invented]),
        Err(RejectReason::AlreadySpent)
    );
    // Its copy of alice's coin wins the race for that coin's 2.50, no more.
    assert_eq!(
        recoup_directly(dir, &url, "mallory.purse", vec![copied]),
        Ok(Amount::from_minor(250))
    );
    assert_eq!(
        recoup_directly(dir, &url, "mallory.purse", vec![copied]),
        Err(RejectReason::AlreadySpent)
    );

    // Alice's recoup: refused while it holds the coin the forger took (the
    // purse marks it spent), then the rest comes back as fresh coins. The
    // purse finds the revoked epoch on its own.
    let first = run(dir, &["purse", "recoup", "--purse", "alice.purse"]);
    assert!(!first.status.success(), "{first:?}");
    let second = ok(dir, &["purse", "recoup", "--purse", "alice.purse"]);
    assert!(second.contains("recouped 7.50 of key epoch 1"), "{second}");
    let coins = alice_coins(dir);
    let epochs: Vec<KeyEpoch> = coins.iter().map(|c| c.body.epoch).collect();
    assert!(epochs.contains(&KeyEpoch(2)), "{epochs:?}");
    // Nothing of the epoch is owed any more: a third recoup finds no coin.
    let third = ok(
        dir,
        &["purse", "recoup", "--epoch", "1", "--purse", "alice.purse"],
    );
    assert!(third.contains("recouped 0.00"), "{third}");
    let fourth = ok(dir, &["purse", "recoup", "--purse", "alice.purse"]);
    assert!(
        fourth.contains("no coin of a revoked key epoch"),
        "{fourth}"
    );

    terminate(issuer);
    let audit = audit_stage(dir);
    assert!(audit.contains("epoch_revoked"), "{audit}");
    assert!(audit.contains("revoked"), "{audit}");
}
