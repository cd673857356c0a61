//! Helpers shared by the purse's integration tests: a profile, coins, and a
//! funded purse in a temporary directory.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ledger::{Amount, Coin, CoinBody, CoinId, KeyEpoch, ParticipantId, Tag, Timestamp};
use protocol::crypto::{RSA_BITS_DEFAULT, SecretKey, SuiteId};
use vc_purse::{
    Completion, Destination, IssuerInfo, KdfParams, NewTransaction, Passphrase, Purse, PurseKey,
    PurseProfile, Step, TxKind,
};

pub const NOW: Timestamp = Timestamp(1_000_000);

/// Real RSA keys, generated once per test binary (generation is the slow part).
fn keys() -> &'static (SecretKey, SecretKey) {
    static KEYS: OnceLock<(SecretKey, SecretKey)> = OnceLock::new();
    KEYS.get_or_init(|| {
        (
            SecretKey::generate(RSA_BITS_DEFAULT).expect("participant key"),
            SecretKey::generate(RSA_BITS_DEFAULT).expect("issuer key"),
        )
    })
}

pub fn issuer_secret_key() -> &'static SecretKey {
    &keys().1
}

pub fn profile() -> PurseProfile {
    PurseProfile::from_secret_key(
        ParticipantId::new("alice").expect("valid id"),
        SuiteId::Aes256,
        &keys().0,
    )
    .expect("profile")
}

pub fn issuer() -> IssuerInfo {
    IssuerInfo {
        issuer: ParticipantId::new("issuer").expect("valid id"),
        public_key: keys().1.public().to_ledger(),
        gateway_url: "http://127.0.0.1:8080".into(),
    }
}

pub fn purse_path(dir: &Path) -> PathBuf {
    dir.join("purse.redb")
}

/// The passphrase of every test purse.
pub fn passphrase() -> Passphrase {
    Passphrase::new("correct horse battery staple").expect("passphrase")
}

/// A fresh key for a new test purse, at the cheap test cost.
pub fn new_key() -> PurseKey {
    PurseKey::derive_new(&passphrase(), KdfParams::INSECURE_FAST).expect("purse key")
}

pub fn new_purse(dir: &Path) -> Purse {
    Purse::create(purse_path(dir), &profile(), Some(&issuer()), new_key()).expect("create purse")
}

/// A coin of `minor` cents with a random serial and tag, valid until far after [`NOW`].
pub fn coin(minor: u64) -> Coin {
    let mut tag = [0u8; 16];
    getrandom::fill(&mut tag).expect("randomness");
    Coin {
        body: CoinBody {
            id: CoinId::random(),
            value: Amount::from_minor(minor),
            expiry: NOW.plus_secs(86_400),
            epoch: KeyEpoch(1),
        },
        tag: Tag(tag),
    }
}

pub fn cents(minor: u64) -> Amount {
    Amount::from_minor(minor)
}

/// Puts coins of these values in the purse through a journaled purchase.
pub fn fund(purse: &Purse, values: &[u64]) -> Vec<Coin> {
    let coins: Vec<Coin> = values.iter().map(|&v| coin(v)).collect();
    let total = Amount::checked_sum(coins.iter().map(Coin::value)).expect("small");
    let tx = purse
        .begin(NewTransaction {
            kind: TxKind::Purchase,
            amount: total,
            reserve: vec![],
            step: Step::Request,
            to: Destination::Issuer,
            message: b"wrequest3".to_vec(),
            secrets: vec![],
            context: vec![],
            now: NOW,
        })
        .expect("begin purchase");
    purse
        .complete(
            tx,
            Completion {
                received: coins.clone(),
                ..Completion::default()
            },
        )
        .expect("complete purchase");
    coins
}

pub fn new_tx(kind: TxKind, amount: Amount, reserve: &[Coin]) -> NewTransaction {
    NewTransaction {
        kind,
        amount,
        reserve: reserve.iter().map(Coin::id).collect(),
        step: Step::Request,
        to: Destination::Issuer,
        message: format!("{} request", kind.name()).into_bytes(),
        secrets: vec![],
        context: vec![],
        now: NOW,
    }
}
