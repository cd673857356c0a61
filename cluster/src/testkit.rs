//! Balanced transactions for tests and the cluster's load driver: a coin
//! purchase (real money in, coins out) and a payment with refresh (coins
//! spent, fresh coins of the same value issued). They carry what the
//! sequencer checks (inputs, bodies, balance), not the protocol's sealed
//! identities or signatures.

use ledger::{
    Amount, CoinBody, CoinId, CoinSpec, Denomination, Event, IssueCause, KeyEpoch, PaymentOption,
    PurchaseId, SealedBankAccount, SealedIdentity, SignatureBytes, SpendCause, Timestamp, TxId,
};

use crate::wire::{CommitRequest, RequestId};

/// Value of every test coin, in minor units.
pub const TEST_COIN_MINOR: u64 = 100;
/// How long after its transaction a test coin expires.
pub const TEST_COIN_LIFETIME_SECS: u64 = 24 * 3600;

fn fresh_coins(n: usize, at: Timestamp) -> Vec<CoinBody> {
    (0..n)
        .map(|_| CoinBody {
            id: CoinId::random(),
            value: Amount::from_minor(TEST_COIN_MINOR),
            expiry: Timestamp(at.0 + TEST_COIN_LIFETIME_SECS),
            epoch: KeyEpoch(1),
        })
        .collect()
}

/// A purchase of `n` fresh coins of key epoch 1 at `at`, as the log
/// records one: a request transaction (`tx_request`), then the settlement
/// (`tx`) that issues the coins. The identity and bank account are
/// placeholders sealed to nobody.
pub fn issue_as(
    request: RequestId,
    tx: TxId,
    at: Timestamp,
    n: usize,
) -> ([CommitRequest; 2], Vec<CoinBody>) {
    let coins = fresh_coins(n, at);
    let purchase = PurchaseId::random();
    let amount = Amount::from_minor(TEST_COIN_MINOR * n as u64);
    let mut tx_request = *tx.as_bytes();
    tx_request[0] ^= 0xff;
    // A spec of n coins of TEST_COIN_MINOR; n is at most a few thousand.
    #[allow(clippy::expect_used)]
    let spec = CoinSpec::new(vec![Denomination {
        count: u32::try_from(n).expect("test coin counts fit u32"),
        value: Amount::from_minor(TEST_COIN_MINOR),
    }])
    .expect("a one-line spec");
    #[allow(clippy::expect_used)]
    let requested = Event::PurchaseRequested {
        purchase,
        purchaser: SealedIdentity::from_sealed_bytes(vec![0]).expect("short"),
        bank_account: SealedBankAccount::from_sealed_bytes(vec![0]).expect("short"),
        spec,
        amount,
        anonymous: true,
        authorization: SignatureBytes(vec![0; 8]),
    };
    let settled = vec![
        Event::PurchaseSettled { purchase, amount },
        Event::CoinsIssued {
            coins: coins.clone(),
            holder: None,
            cause: IssueCause::Purchase(purchase),
        },
    ];
    (
        [
            CommitRequest::new(
                request,
                TxId::from_bytes(tx_request),
                at,
                Vec::new(),
                &[requested],
            ),
            CommitRequest::new(request, tx, at, Vec::new(), &settled),
        ],
        coins,
    )
}

/// A payment with refresh of `coins` as transaction `tx` at `at`: they
/// are spent and as many fresh coins issued.
pub fn pay_as(
    request: RequestId,
    tx: TxId,
    at: Timestamp,
    coins: &[CoinBody],
) -> (CommitRequest, Vec<CoinBody>) {
    let fresh = fresh_coins(coins.len(), at);
    let events = vec![
        Event::CoinsSpent {
            coins: coins.to_vec(),
            cause: SpendCause::Payment(PaymentOption::Refresh),
        },
        Event::CoinsIssued {
            coins: fresh.clone(),
            holder: None,
            cause: IssueCause::Payment,
        },
    ];
    let inputs = coins.iter().map(|c| c.id).collect();
    (CommitRequest::new(request, tx, at, inputs, &events), fresh)
}

/// The time [`issue`] and [`pay`] date their transactions.
pub const TEST_TIME: Timestamp = Timestamp(1_700_000_000);

/// [`issue_as`] with a transaction id made from the request id.
pub fn issue(request: RequestId, n: usize) -> ([CommitRequest; 2], Vec<CoinBody>) {
    issue_as(request, tx_of(request), TEST_TIME, n)
}

/// [`pay_as`] with a transaction id made from the request id.
pub fn pay(request: RequestId, coins: &[CoinBody]) -> (CommitRequest, Vec<CoinBody>) {
    pay_as(request, tx_of(request), TEST_TIME, coins)
}

fn tx_of(request: RequestId) -> TxId {
    let mut bytes = [0u8; 16];
    bytes[8..].copy_from_slice(&request.0.to_be_bytes());
    TxId::from_bytes(bytes)
}
