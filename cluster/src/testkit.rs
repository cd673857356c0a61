//! Balanced transactions for tests and the cluster's load driver: a coin
//! purchase (real money in, coins out) and a payment with refresh (coins
//! spent, fresh coins of the same value issued). They carry what the
//! sequencer checks (inputs, bodies, balance), not the protocol's sealed
//! identities or signatures.

use ledger::{
    Amount, CoinBody, CoinId, Event, IssueCause, KeyEpoch, PaymentOption, PurchaseId, SpendCause,
    Timestamp, TxId,
};

use crate::wire::{CommitRequest, RequestId};

/// Value of every test coin, in minor units.
pub const TEST_COIN_MINOR: u64 = 100;
/// Expiry of every test coin: far in the future.
pub const TEST_COIN_EXPIRY: Timestamp = Timestamp(4_000_000_000);

fn fresh_coins(n: usize) -> Vec<CoinBody> {
    (0..n)
        .map(|_| CoinBody {
            id: CoinId::random(),
            value: Amount::from_minor(TEST_COIN_MINOR),
            expiry: TEST_COIN_EXPIRY,
            epoch: KeyEpoch(1),
        })
        .collect()
}

/// A settled purchase of `n` fresh coins as transaction `tx`.
pub fn issue_as(request: RequestId, tx: TxId, n: usize) -> (CommitRequest, Vec<CoinBody>) {
    let coins = fresh_coins(n);
    let purchase = PurchaseId::random();
    let events = vec![
        Event::PurchaseSettled {
            purchase,
            amount: Amount::from_minor(TEST_COIN_MINOR * n as u64),
        },
        Event::CoinsIssued {
            coins: coins.clone(),
            holder: None,
            cause: IssueCause::Purchase(purchase),
        },
    ];
    let request = CommitRequest::new(request, tx, Timestamp(1), Vec::new(), &events);
    (request, coins)
}

/// A payment with refresh of `coins` as transaction `tx`: they are spent
/// and as many fresh coins issued.
pub fn pay_as(request: RequestId, tx: TxId, coins: &[CoinBody]) -> (CommitRequest, Vec<CoinBody>) {
    let fresh = fresh_coins(coins.len());
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
    (
        CommitRequest::new(request, tx, Timestamp(1), inputs, &events),
        fresh,
    )
}

/// [`issue_as`] with a transaction id made from the request id.
pub fn issue(request: RequestId, n: usize) -> (CommitRequest, Vec<CoinBody>) {
    issue_as(request, tx_of(request), n)
}

/// [`pay_as`] with a transaction id made from the request id.
pub fn pay(request: RequestId, coins: &[CoinBody]) -> (CommitRequest, Vec<CoinBody>) {
    pay_as(request, tx_of(request), coins)
}

fn tx_of(request: RequestId) -> TxId {
    let mut bytes = [0u8; 16];
    bytes[8..].copy_from_slice(&request.0.to_be_bytes());
    TxId::from_bytes(bytes)
}
