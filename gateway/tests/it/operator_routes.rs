//! Operator routes answer only requests signed by a listed operator key:
//! for each `/admin` route, a request that is unsigned, signed by an
//! unlisted key, signed with a broken signature, signed for another route,
//! stale, or replayed is refused with a typed 401/403 and changes nothing;
//! then the same action, properly signed, works once. The peer's address
//! plays no part: every request here comes from loopback, and loopback
//! alone authorizes nothing. `/metrics` answers only its bearer token.

#![allow(clippy::expect_used)]

use crate::util;

use std::sync::OnceLock;

use client::api::{
    ApproveEnrollment, BankBalanceQuery, EraseEpoch, OpenBankAccount, OpenEpoch, RefuseEnrollment,
    RevokeEpoch, SetStanding,
};
use client::media::{ERROR, POSTCARD};
use client::operator::now_micros;
use client::{ClientConfig, ErrorBody, ErrorCode, OperatorKey, ServerConfig, Wallet};
use ledger::{Amount, BankAccount, ParticipantId, Role, Standing};
use protocol::wire::{WireMessage, decode, encode};

use util::{
    issuer, operator_key, post_request, purse_for, raw_exchange, scrape_token, serve_shared_issuer,
};

/// A key the servers of this binary do not list.
fn stranger_key() -> &'static OperatorKey {
    static KEY: OnceLock<OperatorKey> = OnceLock::new();
    KEY.get_or_init(|| OperatorKey::generate().expect("keygen"))
}

fn log_head() -> u64 {
    ledger::EventStore::head(issuer().core.store().as_ref())
        .expect("log head")
        .last_seq
        .0
}

/// POSTs `body` to `route`; the status and, for a refusal, its code.
fn post(addr: std::net::SocketAddr, route: &str, body: &[u8]) -> (u16, Option<ErrorCode>) {
    let resp = raw_exchange(addr, &post_request(route, POSTCARD, body));
    let code = (resp.header("content-type") == Some(ERROR))
        .then(|| decode::<ErrorBody>(&resp.body).expect("typed error").code);
    (resp.status, code)
}

fn signed(key: &OperatorKey, route: &str, msg: &impl WireMessage, at: u64) -> Vec<u8> {
    encode(
        &key.sign_at(util::issuer_audience(), route, encode(msg), at)
            .expect("signed"),
    )
}

/// Every way of not being the operator, against `route` carrying `msg`:
/// each is refused with its status and code.
fn assert_only_the_operator_passes<M: WireMessage>(
    addr: std::net::SocketAddr,
    route: &str,
    msg: &M,
) {
    let now = now_micros();
    let window = client::constants::OPERATOR_REQUEST_WINDOW_SECS * 1_000_000;
    let cases: Vec<(&str, Vec<u8>, u16, ErrorCode)> = vec![
        ("unsigned", encode(msg), 401, ErrorCode::Unauthenticated),
        (
            "signed by an unlisted key",
            signed(stranger_key(), route, msg, now),
            403,
            ErrorCode::Forbidden,
        ),
        (
            "wrongly signed",
            {
                let mut request = operator_key()
                    .sign_at(util::issuer_audience(), route, encode(msg), now)
                    .expect("signed");
                let mut sig = request.signature.as_bytes().to_vec();
                sig[10] ^= 1;
                request.signature = protocol::wire::BoundedBytes::new(sig).expect("sig");
                encode(&request)
            },
            401,
            ErrorCode::Unauthenticated,
        ),
        (
            "signed for another route",
            signed(operator_key(), "/admin/elsewhere", msg, now),
            403,
            ErrorCode::Forbidden,
        ),
        (
            "signed for another issuer listing the same operator key",
            encode(
                &operator_key()
                    .sign_at(
                        Some(client::KeyFingerprint([7; 32])),
                        route,
                        encode(msg),
                        now,
                    )
                    .expect("signed"),
            ),
            403,
            ErrorCode::Forbidden,
        ),
        (
            "signed for no server in particular",
            encode(
                &operator_key()
                    .sign_at(None, route, encode(msg), now)
                    .expect("signed"),
            ),
            403,
            ErrorCode::Forbidden,
        ),
        (
            "stale",
            signed(operator_key(), route, msg, now - window - 5_000_000),
            401,
            ErrorCode::Unauthenticated,
        ),
        (
            "from the future",
            signed(operator_key(), route, msg, now + window + 5_000_000),
            401,
            ErrorCode::Unauthenticated,
        ),
    ];
    for (what, body, status, code) in cases {
        assert_eq!(
            post(addr, route, &body),
            (status, Some(code)),
            "{route}: {what}"
        );
    }
}

/// The signed request works once; the same bytes again are refused.
fn assert_works_once<M: WireMessage>(addr: std::net::SocketAddr, route: &str, msg: &M) -> u16 {
    let body = signed(operator_key(), route, msg, now_micros());
    let (status, code) = post(addr, route, &body);
    assert!((200..300).contains(&status), "{route}: {status} {code:?}");
    assert_eq!(
        post(addr, route, &body),
        (401, Some(ErrorCode::Replayed)),
        "{route}: replayed"
    );
    status
}

#[test]
fn opening_a_bank_account_takes_the_operators_signature() {
    let gateway = serve_shared_issuer(&ServerConfig::loopback());
    let account = BankAccount::new("acct-operator-test").expect("account");
    let msg = OpenBankAccount {
        account: account.clone(),
        balance: Amount::from_minor(1_000_000),
    };
    assert_only_the_operator_passes(gateway.addr(), "/admin/bank/account", &msg);
    assert!(
        issuer().bank.balance(&account).is_err(),
        "a refused request opened the account"
    );
    assert_eq!(
        assert_works_once(gateway.addr(), "/admin/bank/account", &msg),
        204
    );
    assert_eq!(
        issuer().bank.balance(&account).expect("opened"),
        Amount::from_minor(1_000_000)
    );
}

#[test]
fn reading_a_balance_takes_the_operators_signature() {
    let gateway = serve_shared_issuer(&ServerConfig::loopback());
    let account = BankAccount::new("acct-balance-test").expect("account");
    issuer()
        .bank
        .open_account(&account, Amount::from_minor(4_200))
        .expect("opened");
    let msg = BankBalanceQuery { account };
    assert_only_the_operator_passes(gateway.addr(), "/admin/bank/balance", &msg);
    assert_eq!(
        assert_works_once(gateway.addr(), "/admin/bank/balance", &msg),
        200
    );
}

#[test]
fn opening_a_key_epoch_takes_the_operators_signature() {
    let gateway = serve_shared_issuer(&ServerConfig::loopback());
    let epoch = issuer().core.current_epoch().expect("an epoch").0;
    assert_only_the_operator_passes(gateway.addr(), "/admin/epoch/open", &OpenEpoch {});
    assert_eq!(issuer().core.current_epoch().expect("an epoch").0, epoch);
    assert_eq!(
        assert_works_once(gateway.addr(), "/admin/epoch/open", &OpenEpoch {}),
        200
    );
    assert!(issuer().core.current_epoch().expect("an epoch").0 > epoch);
}

// Revoking and erasing an epoch: strangers are refused before the epoch is
// looked at; the operator's request for an epoch that was never opened,
// or one still in its grace, is refused (422) and ends nothing.
#[test]
fn ending_a_key_epoch_takes_the_operators_signature() {
    let gateway = serve_shared_issuer(&ServerConfig::loopback());
    let (epoch, _) = issuer().core.current_epoch().expect("an epoch");
    let unknown = RevokeEpoch {
        epoch: ledger::KeyEpoch(9_999),
    };
    assert_only_the_operator_passes(gateway.addr(), "/admin/epoch/revoke", &unknown);
    assert_only_the_operator_passes(gateway.addr(), "/admin/epoch/erase", &EraseEpoch { epoch });
    for (route, body) in [
        (
            "/admin/epoch/revoke",
            signed(
                operator_key(),
                "/admin/epoch/revoke",
                &unknown,
                now_micros(),
            ),
        ),
        (
            "/admin/epoch/erase",
            signed(
                operator_key(),
                "/admin/epoch/erase",
                &EraseEpoch { epoch },
                now_micros(),
            ),
        ),
    ] {
        assert_eq!(post(gateway.addr(), route, &body).0, 422, "{route}");
    }
    assert!(issuer().core.epoch_ends().is_empty(), "no epoch ended");
}

#[test]
fn approving_an_enrollment_takes_the_operators_signature() {
    let gateway = serve_shared_issuer(&ServerConfig::loopback());
    let client = util::client_of(&gateway);
    let dir = tempfile::tempdir().expect("tempdir");
    let purse = purse_for(&client, "op-approve", 0, &gateway.url(), dir.path());
    let wallet = Wallet::open(purse, ClientConfig::default()).expect("wallet");
    wallet.register().expect("registered");
    let account = BankAccount::new("acct-op-approve").expect("account");
    wallet
        .request_enrollment(Role::Merchant, account)
        .expect("enrollment requested");
    let msg = ApproveEnrollment {
        id: ParticipantId::new("op-approve").expect("id"),
        role: Role::Merchant,
    };
    // The log head alone cannot tell: the housekeeper seals the shared
    // issuer's log on its timer. The enrollment's state can.
    let approved = || {
        issuer()
            .core
            .participant(&msg.id)
            .expect("registry")
            .expect("registered")
            .enrolled(Role::Merchant)
            .is_some()
    };
    let head = log_head();
    assert_only_the_operator_passes(gateway.addr(), "/admin/enroll/approve", &msg);
    assert!(!approved(), "a refused approval took effect");
    assert_eq!(
        assert_works_once(gateway.addr(), "/admin/enroll/approve", &msg),
        204
    );
    assert!(approved(), "the approval took effect");
    assert!(log_head() > head, "the approval is in the log");
}

#[test]
fn refusing_an_enrollment_and_suspending_take_the_operators_signature() {
    let gateway = serve_shared_issuer(&ServerConfig::loopback());
    let client = util::client_of(&gateway);
    let dir = tempfile::tempdir().expect("tempdir");
    let purse = purse_for(&client, "op-refuse", 0, &gateway.url(), dir.path());
    let wallet = Wallet::open(purse, ClientConfig::default()).expect("wallet");
    wallet.register().expect("registered");
    let account = BankAccount::new("acct-op-refuse").expect("account");
    wallet
        .request_enrollment(Role::Redeemer, account.clone())
        .expect("enrollment requested");
    let id = ParticipantId::new("op-refuse").expect("id");
    let refuse = RefuseEnrollment {
        id: id.clone(),
        role: Role::Redeemer,
    };
    let pending = || {
        issuer()
            .core
            .participant(&id)
            .expect("registry")
            .expect("registered")
            .enrollments
            .iter()
            .any(|e| e.role == Role::Redeemer)
    };
    assert_only_the_operator_passes(gateway.addr(), "/admin/enroll/refuse", &refuse);
    assert!(pending(), "a refused refusal took effect");
    assert_eq!(
        assert_works_once(gateway.addr(), "/admin/enroll/refuse", &refuse),
        204
    );
    assert!(!pending(), "the refusal took effect");
    let again = wallet
        .request_enrollment(Role::Redeemer, account)
        .expect_err("a refused enrollment asked again");
    assert!(matches!(
        again,
        client::WalletError::Client(ref e) if e.code() == Some(ErrorCode::EnrollmentRefused)
    ));

    let suspend = SetStanding {
        id: id.clone(),
        standing: Standing::Suspended,
    };
    let standing = || issuer().core.standing(&id).expect("registry");
    let route = "/admin/participant/standing";
    assert_only_the_operator_passes(gateway.addr(), route, &suspend);
    assert_eq!(
        standing(),
        Standing::Active,
        "a refused suspension took effect"
    );
    assert_eq!(assert_works_once(gateway.addr(), route, &suspend), 204);
    assert_eq!(standing(), Standing::Suspended);
}

#[test]
fn a_client_without_an_operator_key_cannot_call_operator_routes() {
    let gateway = serve_shared_issuer(&ServerConfig::loopback());
    let client =
        client::IssuerClient::new(&gateway.url(), ClientConfig::default()).expect("client");
    let account = BankAccount::new("acct-nokey").expect("account");
    assert!(matches!(
        client.bank_balance(&account),
        Err(client::ClientError::NoOperatorKey)
    ));
}

#[test]
fn metrics_answer_only_the_scrape_token() {
    let gateway = serve_shared_issuer(&ServerConfig::loopback());
    let get = |auth: Option<&str>| {
        let mut req = "GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n".to_owned();
        if let Some(value) = auth {
            req.push_str(&format!("Authorization: {value}\r\n"));
        }
        req.push_str("\r\n");
        raw_exchange(gateway.addr(), req.as_bytes())
    };
    let code = |resp: &util::RawResponse| decode::<ErrorBody>(&resp.body).expect("typed").code;
    let none = get(None);
    assert_eq!(
        (none.status, code(&none)),
        (401, ErrorCode::Unauthenticated)
    );
    let wrong = get(Some("Bearer 0123456789abcdef0123456789abcdef"));
    assert_eq!((wrong.status, code(&wrong)), (403, ErrorCode::Forbidden));
    let right = get(Some(&format!("Bearer {}", scrape_token().as_str())));
    assert_eq!(right.status, 200);
    assert!(String::from_utf8_lossy(&right.body).contains("vc_issuer_outstanding_emoney_minor"));

    // A server configured without a token shows its metrics to nobody.
    let bare =
        vc_gateway::serve_issuer(&ServerConfig::loopback(), issuer().handle()).expect("gateway");
    let mut req = format!(
        "GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\nAuthorization: Bearer {}\r\n\r\n",
        scrape_token().as_str()
    );
    let resp = raw_exchange(bare.addr(), std::mem::take(&mut req).as_bytes());
    assert_eq!((resp.status, code(&resp)), (403, ErrorCode::Forbidden));
}

#[test]
fn a_signed_request_replayed_after_the_gateway_restarts_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nonces = dir.path().join("operator-nonces");
    let serve = || {
        let mut config = ServerConfig::loopback();
        config.operators = std::sync::Arc::new(
            client::OperatorAuth::new(
                vec![("test operator".into(), operator_key().public())],
                client::NonceStore::File(nonces.clone()),
            )
            .expect("operator keys"),
        );
        vc_gateway::serve_issuer_with_bank(&config, issuer().handle(), issuer().bank.clone())
            .expect("gateway")
    };
    let account = BankAccount::new("acct-restart-test").expect("account");
    issuer()
        .bank
        .open_account(&account, Amount::from_minor(700))
        .expect("opened");
    let route = "/admin/bank/balance";
    let body = signed(
        operator_key(),
        route,
        &BankBalanceQuery { account },
        now_micros(),
    );
    let gateway = serve();
    assert_eq!(post(gateway.addr(), route, &body).0, 200);
    gateway.stop().expect("stops");
    let gateway = serve();
    assert_eq!(
        post(gateway.addr(), route, &body),
        (401, Some(ErrorCode::Replayed)),
        "a replay after a restart"
    );
}
