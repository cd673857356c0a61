//! Measures payments per second through the `Issuer` handle (the actor
//! path): one purchase of `N_PAYMENTS` coins, then every coin paid to a
//! merchant with aggregate, `IN_FLIGHT` at a time. The payee's and payer's
//! envelopes are built before the clock starts, so the figure is the
//! issuer's: two RSA decryptions, a signature and a durable commit each.
//!
//!     cargo run -p vc-actors --release --example throughput

use std::sync::Arc;
use std::time::{Duration, Instant};

use ledger::{Amount, BankAccount, CoinSpec, Denomination, ParticipantId, Role, Timestamp};
use protocol::crypto::SecretKey;
use protocol::flows::{
    PaymentPayee, PaymentPayer, PurchaseClient, PurchaseUpdate, RegistrationClient,
    enrollment_request,
};
use protocol::wire::payment::{PDesc, PaymentOutcome, VOption};
use protocol::wire::purchase::WDesc;
use vc_actors::SimulatedBank;
use vc_actors::{Issuer, IssuerConfig};

const N_PAYMENTS: u32 = 1000;
const IN_FLIGHT: usize = 64;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    actix_rt::System::new().block_on(run())
}

async fn join(
    issuer: &Issuer,
    bank: &SimulatedBank,
    id: &ParticipantId,
    sk: &SecretKey,
    account: &BankAccount,
    role: Role,
) -> Result<(), Box<dyn std::error::Error>> {
    let (client, req) = RegistrationClient::start(id.clone(), sk);
    let cert = issuer.register(req).await?;
    client.on_certificate(&issuer.public_key(), cert, Timestamp::now())?;
    bank.open_account(account, Amount::from_minor(10_000_000))?;
    let req = enrollment_request(
        issuer.core().suite(),
        sk,
        &issuer.public_key(),
        id.clone(),
        role,
        account.clone(),
        Timestamp::now(),
    )?;
    issuer.request_enrollment(req).await?;
    issuer.approve_enrollment(id.clone(), role).await?;
    Ok(())
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let bank = Arc::new(SimulatedBank::open(
        dir.path().join("bank.redb"),
        Duration::ZERO,
    )?);
    let mut config = IssuerConfig::new(dir.path().join("issuer"));
    config.n_shards = 16;
    let (suite, rsa_bits) = (config.suite, config.rsa_bits);
    let issuer = Issuer::start(config, bank.clone())?;
    let (alice, shop) = (ParticipantId::new("alice")?, ParticipantId::new("shop")?);
    let (sk_a, sk_s) = (
        SecretKey::generate_for(suite, rsa_bits)?,
        SecretKey::generate_for(suite, rsa_bits)?,
    );
    let (acct_a, acct_s) = (BankAccount::new("a-1")?, BankAccount::new("s-1")?);
    join(&issuer, &bank, &alice, &sk_a, &acct_a, Role::CoinPurchaser).await?;
    join(&issuer, &bank, &shop, &sk_s, &acct_s, Role::Merchant).await?;
    let suite = issuer.core().suite();
    let (state, w1) = PurchaseClient::start(
        suite,
        &sk_a,
        alice.clone(),
        &issuer.public_key(),
        issuer.core().now(),
    )?;
    let w2 = issuer.wrequest1(w1).await?;
    let spec = CoinSpec::new(vec![Denomination {
        count: N_PAYMENTS,
        value: Amount::from_minor(1),
    }])?;
    let w_desc = WDesc {
        amount: spec.total()?,
        spec,
        bank_account: acct_a,
        anonymous: true,
    };
    let (awaiting, w3) = state.on_wrequest2(&sk_a, &issuer.id(), &w2, w_desc)?;
    let PurchaseUpdate::Issued { coins, .. } =
        awaiting.on_issuance1(&issuer.wrequest3(w3).await?)?
    else {
        return Err("purchase did not settle".into());
    };
    let mut requests = Vec::with_capacity(coins.len());
    for coin in coins {
        let (payee, invoice) = PaymentPayee::invoice(
            shop.clone(),
            alice.clone(),
            issuer.id(),
            PDesc::new("bench")?,
            coin.value(),
            None,
        );
        let (_payer, send) = PaymentPayer::pay(
            suite,
            &issuer.public_key(),
            &issuer.id(),
            &alice,
            &invoice,
            vec![coin],
            Timestamp::now(),
        )?;
        requests.push(
            payee
                .on_send_coins(suite, &issuer.public_key(), &sk_s, send, VOption::Aggregate)?
                .1,
        );
    }
    let started = Instant::now();
    let mut paid = 0usize;
    let mut queue = requests.into_iter();
    loop {
        let wave: Vec<_> = queue
            .by_ref()
            .take(IN_FLIGHT)
            .map(|req| {
                let issuer = issuer.clone();
                actix_rt::spawn(async move { issuer.validate(req).await })
            })
            .collect();
        if wave.is_empty() {
            break;
        }
        for task in wave {
            if matches!(task.await??.outcome, PaymentOutcome::Receipt(_)) {
                paid += 1;
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{paid} payments in {secs:.2} s: {:.0} payments/s ({} cores)",
        paid as f64 / secs,
        std::thread::available_parallelism()
            .map(usize::from)
            .unwrap_or(1)
    );
    let totals = issuer.core().audit_conservation()?;
    println!(
        "conservation from the log: outstanding {} + aggregates {} = real in {} - real out {}",
        totals.outstanding, totals.aggregates, totals.real_in, totals.real_out
    );
    Ok(())
}
