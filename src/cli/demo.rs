//! `varietycash demo`: runs what the system can do so far, end to end, on a
//! scratch directory, then audits the log it wrote.
//!
//! Until the issuer's actor cluster is wired in, the demo drives the parts
//! that exist with real keys, a real mint and a durable log: it mints coins
//! for a settled purchase, validates a payment with refresh and one with
//! aggregation (tags checked by the mint, inputs spent, outputs minted), signs
//! a checkpoint, and runs the auditor over the file, which verifies the chain,
//! the checkpoint signature and conservation of cash.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, ensure};
use clap::Args;
use ledger::{
    Amount, BalanceId, BankAccount, Batch, CoinBody, CoinId, CoinSpec, Denomination, Event,
    EventStore, GroupCommit, GroupCommitConfig, IssueCause, KeyEpoch, ParticipantId, PaymentOption,
    PurchaseId, RedbStore, SpendCause, Timestamp, TxId,
};
use protocol::crypto::{IdentitySealer, SecretKey, SuiteId};
use protocol::mint::Mint;

/// Run the system end to end on a scratch directory and audit the result.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where to put the issuer's files (default: a fresh temporary directory).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Cipher suite of the mint.
    #[arg(long, default_value = "aes256")]
    pub suite: SuiteId,
}

pub fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let scratch;
    let dir = match &args.dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            dir.clone()
        }
        None => {
            scratch = tempfile::tempdir()?;
            scratch.path().to_path_buf()
        }
    };
    println!("VarietyCash demo in {}", dir.display());

    let issuer_key = SecretKey::generate(2048).context("generating the issuer's RSA-2048 key")?;
    let issuer_pub = dir.join("issuer.pub");
    issuer_key.public().write_spki(&issuer_pub)?;
    let epoch = KeyEpoch(1);
    let mut mint = Mint::create(&dir.join("mint.keys"), args.suite)?;
    mint.open_epoch(epoch)?;
    println!(
        "issuer: RSA-2048 key, mint suite {}, {epoch} open",
        args.suite
    );

    let store = Arc::new(RedbStore::open(dir.join("issuer.log"))?);
    let log = GroupCommit::start(store.clone(), GroupCommitConfig::default())?;
    let now = Timestamp::now();
    let expiry = now.plus_secs(30 * 24 * 3600);
    log.submit_wait(Batch {
        tx: TxId::random(),
        events: vec![Event::EpochOpened {
            epoch,
            coins_expire_at: expiry,
            grace_ends_at: expiry.plus_secs(30 * 24 * 3600),
        }],
    })?;

    // A settled purchase of the paper's spec: (2, $2.50), (1, $1.25), (3, $2).
    let spec = CoinSpec::new(vec![
        Denomination {
            count: 2,
            value: "2.50".parse()?,
        },
        Denomination {
            count: 1,
            value: "1.25".parse()?,
        },
        Denomination {
            count: 3,
            value: "2.00".parse()?,
        },
    ])?;
    // WRequest3 accepted: the purchaser's identity and account are sealed to
    // the user-index key, so the log never holds them in the clear.
    let user_index_key = SecretKey::generate(2048).context("generating the user-index key")?;
    let sealer = IdentitySealer::new(user_index_key.public(), args.suite);
    let alice = ParticipantId::new("alice")?;
    let purchase = PurchaseId::random();
    let authorization = issuer_key.sign("vc/demo/authorization", purchase.as_bytes());
    log.submit_wait(Batch {
        tx: TxId::derive("vc/tx/purchase-requested", &[purchase.as_bytes()]),
        events: vec![Event::PurchaseRequested {
            purchase,
            purchaser: sealer.seal_identity(&alice),
            bank_account: sealer.seal_account(&BankAccount::new("ACH-001-12345")?),
            spec: spec.clone(),
            amount: spec.total()?,
            anonymous: true,
            authorization: authorization.to_ledger(),
        }],
    })?;
    let bought = mint_coins(&mint, &spec, expiry, epoch)?;
    log.submit_wait(Batch {
        tx: TxId::derive("vc/tx/purchase-settled", &[purchase.as_bytes()]),
        events: vec![
            Event::PurchaseSettled {
                purchase,
                amount: spec.total()?,
            },
            Event::CoinsIssued {
                coins: bought.iter().map(|c| c.body).collect(),
                holder: None,
                cause: IssueCause::Purchase(purchase),
            },
        ],
    })?;
    println!(
        "purchase settled: {} in {} coins",
        spec.total()?,
        spec.n_coins()
    );

    // Payment with refresh: the $2.50 coin is validated and the payee gets fresh coins.
    let paid = bought[0];
    mint.check(&paid)
        .context("the mint refuses a coin it minted")?;
    let fresh_spec = CoinSpec::new(vec![
        Denomination {
            count: 2,
            value: "1.00".parse()?,
        },
        Denomination {
            count: 2,
            value: "0.25".parse()?,
        },
    ])?;
    let fresh = mint_coins(&mint, &fresh_spec, expiry, epoch)?;
    let seq = log.submit_wait(Batch {
        tx: TxId::random(),
        events: vec![
            Event::CoinsSpent {
                coins: vec![paid.body],
                cause: SpendCause::Payment(PaymentOption::Refresh),
            },
            Event::CoinsIssued {
                coins: fresh.iter().map(|c| c.body).collect(),
                holder: None,
                cause: IssueCause::Payment,
            },
        ],
    })?;
    println!(
        "payment with refresh: {} validated, {} fresh coins issued (log {seq})",
        paid.value(),
        fresh.len()
    );

    // Payment with aggregation: two $2 coins into a merchant's balance.
    let aggregated: Vec<CoinBody> = bought[3..5].iter().map(|c| c.body).collect();
    for coin in &bought[3..5] {
        mint.check(coin)
            .context("the mint refuses a coin it minted")?;
    }
    let total = Amount::checked_sum(aggregated.iter().map(|c| c.value))?;
    log.submit_wait(Batch {
        tx: TxId::random(),
        events: vec![
            Event::CoinsSpent {
                coins: aggregated,
                cause: SpendCause::Payment(PaymentOption::Aggregate),
            },
            Event::Aggregated {
                balance: BalanceId::random(),
                amount: total,
            },
        ],
    })?;
    println!("payment with aggregation: {total} into a merchant balance");

    let head = store.head()?;
    let checkpoint =
        protocol::checkpoint::sign_checkpoint(&issuer_key, head.last_seq, head.last_hash);
    log.submit_wait(Batch {
        tx: TxId::random(),
        events: vec![Event::Checkpoint(checkpoint)],
    })?;
    drop(log);
    drop(store);
    println!("checkpoint signed at {}", head.last_seq);

    let report = super::audit::audit(&super::audit::AuditArgs {
        log: dir.join("issuer.log"),
        issuer_key: Some(issuer_pub),
        from_checkpoint: None,
        write_checkpoint: None,
        json: false,
        html: None,
    })?;
    print!("\n{}", report.to_text());
    ensure!(
        report.exit_code() == 0,
        "the audit of the demo's own log failed"
    );
    Ok(ExitCode::SUCCESS)
}

fn mint_coins(
    mint: &Mint,
    spec: &CoinSpec,
    expiry: Timestamp,
    epoch: KeyEpoch,
) -> anyhow::Result<Vec<ledger::Coin>> {
    spec.values()
        .map(|value| {
            let body = CoinBody {
                id: CoinId::random(),
                value,
                expiry,
                epoch,
            };
            Ok(ledger::Coin {
                body,
                tag: mint.tag(&body)?,
            })
        })
        .collect()
}
