//! Measures how long an issuer holding 1,000,000 unspent coins takes to
//! restart from its files (the target: under 10 s). The coins are bought
//! through the real purchase flow (anonymous purchases of 1,024 coins each,
//! settled by the simulated bank), the coin-status projection and the
//! transaction index are caught up, the issuer is dropped, and
//! `IssuerCore::open` is timed: it loads the shards from the coin-status
//! projection and replays the log into its other state (the idempotency
//! table takes only what the transaction index has not applied).
//!
//!     cargo run -p vc-actors --release --example restart_million [N_COINS]

use std::sync::Arc;
use std::time::{Duration, Instant};

use ledger::{Amount, BankAccount, CoinSpec, Denomination, ParticipantId, Role, Timestamp};
use protocol::crypto::SecretKey;
use protocol::flows::{PurchaseClient, PurchaseUpdate, RegistrationClient, enrollment_request};
use protocol::wire::purchase::WDesc;
use vc_actors::SimulatedBank;
use vc_actors::{IssuerConfig, IssuerCore};

const COINS_PER_PURCHASE: u32 = 1024;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n_coins: u64 = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir()?;
    let config = || {
        let mut c = IssuerConfig::new(dir.path().join("issuer"));
        c.n_shards = 8;
        c
    };
    let bank = Arc::new(SimulatedBank::open(
        dir.path().join("bank.redb"),
        Duration::ZERO,
    )?);
    let core = IssuerCore::open(config(), bank.clone())?;

    let id = ParticipantId::new("buyer")?;
    let sk = SecretKey::generate_for(core.suite(), 2048)?;
    let account = BankAccount::new("acct-buyer")?;
    let (client, req) = RegistrationClient::start(id.clone(), &sk);
    client.on_certificate(&core.public_key(), core.register(&req)?, Timestamp::now())?;
    bank.open_account(&account, Amount::from_minor(u64::MAX / 4))?;
    let enroll = enrollment_request(
        core.suite(),
        &sk,
        &core.public_key(),
        id.clone(),
        Role::CoinPurchaser,
        account.clone(),
        Timestamp::now(),
    )?;
    core.request_enrollment(&enroll)?;
    core.approve_enrollment(&id, Role::CoinPurchaser)?;

    let started = Instant::now();
    let n_purchases = n_coins.div_ceil(u64::from(COINS_PER_PURCHASE));
    let spec = CoinSpec::new(vec![Denomination {
        count: COINS_PER_PURCHASE,
        value: Amount::from_minor(100),
    }])?;
    let mut bought = 0u64;
    for _ in 0..n_purchases {
        let (state, w1) = PurchaseClient::start(
            core.suite(),
            &sk,
            id.clone(),
            &core.public_key(),
            core.now(),
        )?;
        let w2 = core.wrequest1(&w1)?;
        let w_desc = WDesc {
            spec: spec.clone(),
            amount: spec.total()?,
            bank_account: account.clone(),
            anonymous: true,
        };
        let (awaiting, w3) = state.on_wrequest2(&sk, core.id(), &w2, w_desc)?;
        let issuance = core.wrequest3(&w3)?;
        match awaiting.on_issuance1(&issuance)? {
            PurchaseUpdate::Issued { coins, ack } => {
                core.purchase_issuance2(&ack)?;
                bought += coins.len() as u64;
            }
            other => return Err(format!("purchase did not settle: {other:?}").into()),
        }
    }
    let bought_secs = started.elapsed().as_secs_f64();
    let checkpointed = Instant::now();
    core.checkpoint_coin_status()?;
    let checkpoint_secs = checkpointed.elapsed().as_secs_f64();
    // As the housekeeper does beside it: the transaction index too.
    core.checkpoint_tx_index()?;
    let unspent_before = core.unspent_value();
    drop(core);

    let restarted = Instant::now();
    let core = IssuerCore::open(config(), bank)?;
    let restart_secs = restarted.elapsed().as_secs_f64();
    assert_eq!(
        core.unspent_value(),
        unspent_before,
        "the restarted issuer lost coins"
    );
    assert!(
        core.shards_booted_from_checkpoint(),
        "shards did not boot from coin status"
    );
    core.audit_conservation()?;
    let log_bytes = std::fs::metadata(dir.path().join("issuer").join("log.redb"))?.len();
    println!(
        "{bought} coins bought in {n_purchases} purchases in {bought_secs:.1} s; \
         coin status caught up in {checkpoint_secs:.1} s; log {:.1} MiB",
        log_bytes as f64 / (1024.0 * 1024.0)
    );
    println!(
        "restart with {bought} unspent coins (shards from coin status, log replayed): {restart_secs:.2} s; \
         committed transactions in memory after it: {}",
        core.n_committed_in_memory()
    );
    Ok(())
}
