//! Privacy: with identities and bank accounts sealed by the protocol crate's
//! real sealer (RSA-OAEP under the user-index key), the log file, the
//! coin-status file, the accounts file and an auditor-style report contain
//! no identity or account in the clear, while the user index, the one place
//! allowed to open them, does (which shows the byte search can find them).

use ledger::{
    Amount, BalanceId, BankAccount, Batch, CoinBody, CoinId, CoinSpec, Event, EventStore,
    IssueCause, KeyEpoch, ParticipantId, PaymentOption, PublicKeyDer, PurchaseId, RedbStore, Role,
    SealedBankAccount, SealedIdentity, SignatureBytes, SpendCause, Timestamp, TxId,
};
use projections::{
    Accounts, AccountsModel, CoinStatus, CoinStatusModel, UnsealError, Unsealer, UserIndex,
    UserIndexModel,
};
use protocol::crypto::{IdentityUnsealer, SecretKey, SuiteId};

/// The issuer's adapter: protocol's unsealer behind the projections' trait.
struct ProtocolUnsealer(IdentityUnsealer);

impl Unsealer for ProtocolUnsealer {
    fn unseal_identity(&self, sealed: &SealedIdentity) -> Result<ParticipantId, UnsealError> {
        self.0
            .unseal_identity(sealed)
            .map_err(|_| UnsealError::Undecryptable)
    }

    fn unseal_account(&self, sealed: &SealedBankAccount) -> Result<BankAccount, UnsealError> {
        self.0
            .unseal_account(sealed)
            .map_err(|_| UnsealError::Undecryptable)
    }
}

fn coin(n: u8, value: u64) -> CoinBody {
    CoinBody {
        id: CoinId::from_bytes([n; 16]),
        value: Amount::from_minor(value),
        expiry: Timestamp(5_000),
        epoch: KeyEpoch(1),
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn log_coin_status_accounts_and_audit_report_hold_no_identity_in_the_clear() {
    let dir = tempfile::tempdir().expect("tempdir");
    let unsealer = IdentityUnsealer::new(SecretKey::generate(2048).expect("rsa key"));
    let sealer = unsealer
        .sealer(SuiteId::Aes256)
        .expect("an rsa key serves aes256");
    let merchant = ParticipantId::new("alice.liddell@wonderland.example").expect("id");
    let buyer = ParticipantId::new("bob.marley-1945@kingston.example").expect("id");
    let merchant_account = BankAccount::new("021000021-4455667788").expect("account");
    let buyer_account = BankAccount::new("026009593-1122334455").expect("account");
    let secrets = [
        merchant.as_str(),
        buyer.as_str(),
        merchant_account.as_str(),
        buyer_account.as_str(),
    ];

    let log_path = dir.path().join("log.redb");
    let log = RedbStore::open(&log_path).expect("log");
    let balance = BalanceId::from_bytes([4; 16]);
    let purchase = PurchaseId::from_bytes([5; 16]);
    let append = |events: Vec<Event>| {
        log.append(&[Batch {
            tx: TxId::random(),
            at: ledger::Timestamp::now(),
            events,
        }])
        .expect("append")
    };
    append(vec![
        Event::Registered {
            participant: sealer.seal_identity(&merchant),
            public_key: PublicKeyDer(vec![1; 32]),
            cert_expiry: Timestamp(9_000),
        },
        Event::Registered {
            participant: sealer.seal_identity(&buyer),
            public_key: PublicKeyDer(vec![2; 32]),
            cert_expiry: Timestamp(9_000),
        },
    ]);
    append(vec![
        Event::EnrollmentRequested {
            participant: sealer.seal_identity(&merchant),
            role: Role::Merchant,
            bank_account: sealer.seal_account(&merchant_account),
            signature: SignatureBytes(vec![3; 64]),
        },
        Event::Enrolled {
            participant: sealer.seal_identity(&merchant),
            role: Role::Merchant,
            balance: Some(balance),
        },
    ]);
    append(vec![Event::EpochOpened {
        epoch: KeyEpoch(1),
        coins_expire_at: Timestamp(5_000),
        grace_ends_at: Timestamp(6_000),
    }]);
    append(vec![Event::PurchaseRequested {
        purchase,
        purchaser: sealer.seal_identity(&buyer),
        bank_account: sealer.seal_account(&buyer_account),
        spec: CoinSpec::single(Amount::from_minor(100)).expect("spec"),
        amount: Amount::from_minor(300),
        anonymous: false,
        authorization: SignatureBytes(vec![6; 64]),
    }]);
    append(vec![
        Event::PurchaseSettled {
            purchase,
            amount: Amount::from_minor(300),
        },
        Event::CoinsIssued {
            coins: vec![coin(1, 100), coin(2, 100), coin(3, 100)],
            holder: Some(sealer.seal_identity(&buyer)),
            cause: IssueCause::Purchase(purchase),
        },
    ]);
    append(vec![
        Event::CoinsSpent {
            coins: vec![coin(1, 100)],
            cause: SpendCause::Payment(PaymentOption::Aggregate),
        },
        Event::Aggregated {
            balance,
            amount: Amount::from_minor(100),
        },
    ]);
    append(vec![
        Event::AggregateWithdrawn {
            balance,
            amount: Amount::from_minor(100),
        },
        Event::Redeemed {
            amount: Amount::from_minor(100),
            bank_account: sealer.seal_account(&merchant_account),
        },
    ]);
    append(vec![
        Event::CoinsRevoked {
            coins: vec![coin(2, 100), coin(3, 100)],
        },
        Event::CoinsIssued {
            coins: vec![coin(4, 200)],
            holder: Some(sealer.seal_identity(&buyer)),
            cause: IssueCause::Refund,
        },
    ]);

    let coins = CoinStatus::open(dir.path().join("coins.redb"), CoinStatusModel).expect("open");
    let accounts = Accounts::open(dir.path().join("accounts.redb"), AccountsModel).expect("open");
    let users = UserIndex::open(
        dir.path().join("users.redb"),
        UserIndexModel::new(ProtocolUnsealer(unsealer)),
    )
    .expect("open");
    coins.catch_up(&log).expect("coins");
    accounts.catch_up(&log).expect("accounts");
    users.catch_up(&log).expect("users");

    // The user index opened every seal.
    assert_eq!(
        users.unspent_coins_of(&buyer).expect("coins"),
        vec![coin(4, 200)]
    );
    assert_eq!(
        users.bank_account_of(&merchant).expect("account"),
        Some(merchant_account.clone())
    );
    assert_eq!(users.balance_of(&merchant).expect("balance"), Some(balance));
    assert_eq!(
        users.purchaser_of(&purchase).expect("purchaser"),
        Some(buyer.clone())
    );
    let disclosure = users
        .who_withdrew(&coin(4, 0).id, "district-court", "case 7")
        .expect("known");
    assert_eq!(disclosure.participant, buyer);
    append(vec![disclosure.event]);
    coins.catch_up(&log).expect("coins");
    accounts.catch_up(&log).expect("accounts");
    users.catch_up(&log).expect("users");

    // An auditor's view: every event, the books, the coin totals.
    let records = log.read(ledger::Seq(1), usize::MAX).expect("read");
    let report = format!(
        "{:#?}\n{:#?}\n{:#?}\n{:#?}\n{:#?}",
        records.iter().map(|r| &r.record).collect::<Vec<_>>(),
        accounts.summary().expect("summary"),
        accounts.conservation().expect("conservation"),
        coins.unspent_totals().expect("totals"),
        coins.epoch_info(KeyEpoch(1)).expect("epoch"),
    );
    accounts
        .conservation()
        .expect("report")
        .check()
        .expect("conserved");

    drop((coins, accounts, users, log));
    let read = |name: &str| std::fs::read(dir.path().join(name)).expect("read file");
    let (log_bytes, coin_bytes, account_bytes, user_bytes) = (
        read("log.redb"),
        read("coins.redb"),
        read("accounts.redb"),
        read("users.redb"),
    );
    for secret in secrets {
        assert!(!contains(&log_bytes, secret), "log holds {secret}");
        assert!(!contains(&coin_bytes, secret), "coin status holds {secret}");
        assert!(!contains(&account_bytes, secret), "accounts hold {secret}");
        assert!(!report.contains(secret), "report shows {secret}");
    }
    // Positive control: the user index does hold them, so the search works.
    assert!(contains(&user_bytes, buyer.as_str()));
    assert!(contains(&user_bytes, merchant_account.as_str()));
}
