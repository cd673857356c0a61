//! Who may set what, over real loopback HTTP: one test per row of
//! `docs/AUTHORIZATION.md` that a participant could abuse. Each test has an
//! attacker who is a registered, enrolled participant (or nobody at all)
//! name someone else's account, identity, order or option, and checks that
//! the issuer or the merchant server refuses it and that the honest
//! participant is still served afterwards.

use crate::util;

use std::time::Duration;

use client::{
    ClientConfig, ClientError, ErrorCode, IssuerClient, MerchantClient, PurchaseOutcome,
    ServerConfig, Wallet, WalletError,
};
use ledger::testkit::ManualClock;
use ledger::{Amount, BankAccount, Coin, CoinSpec, ParticipantId, Role, Timestamp};
use protocol::crypto::{KeyShare, SecretKey};
use protocol::flows::{
    PayeeOutcome, PayerOutcome, PaymentPayee, PaymentPayer, PurchaseClient, PurchaseUpdate,
    RegistrationClient, enrollment_request,
};
use protocol::wire::RejectReason;
use protocol::wire::labels;
use protocol::wire::payment::{PDesc, PaymentOutcome, SendCoins, VOption};
use protocol::wire::purchase::{PurchaseOutcome as WirePurchaseOutcome, WDesc, WRequest1};

use util::{
    client_of, enrolled_tea_shop, issuer, join_wallet, key, purse_for, serve_shared_issuer, spec,
};

/// A participant driven by hand (no purse), with one bank account per role.
struct Manual {
    id: ParticipantId,
    sk: &'static SecretKey,
    accounts: Vec<(Role, BankAccount)>,
}

impl Manual {
    fn account(&self, role: Role) -> &BankAccount {
        &self
            .accounts
            .iter()
            .find(|(r, _)| *r == role)
            .expect("enrolled for the role")
            .1
    }
}

/// Registers `name` with key `key_idx` and enrolls it, approved, for each
/// role with an account of its own (`acct-NAME-ROLE`, 1,000.00).
fn join_manual(client: &IssuerClient, name: &str, key_idx: usize, roles: &[Role]) -> Manual {
    let core = &issuer().core;
    let id = ParticipantId::new(name).expect("id");
    let sk = key(key_idx);
    let (registration, request) = RegistrationClient::start(id.clone(), sk);
    let cert = client.register(&request).expect("registered");
    registration
        .on_certificate(&core.public_key(), cert, Timestamp::now())
        .expect("certificate checks");
    let mut accounts = Vec::new();
    for role in roles {
        let account = BankAccount::new(format!("acct-{name}-{role}")).expect("account");
        client
            .open_bank_account(&account, Amount::from_minor(100_000))
            .expect("bank account");
        let enrollment = enrollment_request(
            core.suite(),
            sk,
            &core.public_key(),
            id.clone(),
            *role,
            account.clone(),
            Timestamp::now(),
        )
        .expect("enrollment request");
        client.enroll(&enrollment).expect("enrollment recorded");
        client.approve_enrollment(&id, *role).expect("approved");
        accounts.push((*role, account));
    }
    Manual { id, sk, accounts }
}

/// Buys `spec` for `who` over HTTP, debiting its purchaser account; polls
/// until settled and acknowledges.
fn buy(client: &IssuerClient, who: &Manual, spec: CoinSpec) -> Vec<Coin> {
    let (coins, ack) = settled_purchase(client, who, spec);
    client.purchase_ack(&ack).expect("ack");
    coins
}

/// `payer` pays `coins` to `payee` (an invoice made by hand): the payee's
/// state and the SendCoins an eavesdropper on plain HTTP would see.
fn send_coins(
    payer: &Manual,
    payee: &ParticipantId,
    coins: Vec<Coin>,
) -> (PaymentPayee, SendCoins) {
    let core = &issuer().core;
    let amount = Amount::checked_sum(coins.iter().map(Coin::value)).expect("sum");
    let (payee_state, invoice) = PaymentPayee::invoice(
        payee.clone(),
        payer.id.clone(),
        core.id().clone(),
        PDesc::new("authorization".to_owned()).expect("p-desc"),
        amount,
        None,
    );
    let (_payer, send) = PaymentPayer::pay(
        core.suite(),
        &core.public_key(),
        core.id(),
        &payer.id,
        &invoice,
        coins,
        Timestamp::now(),
    )
    .expect("send coins");
    (payee_state, send)
}

fn refused_code(e: &ClientError) -> Option<ErrorCode> {
    e.code()
}

// Row "WRequest3 / W-DESC bank account": an enrolled purchaser names another
// participant's account; the issuer refuses with a signed statement and
// debits nobody. Its own account still works.
#[test]
fn a_purchase_debits_only_the_account_enrolled_for_the_purchaser() {
    let gateway = serve_shared_issuer(&ServerConfig::loopback());
    let client = client_of(&gateway);
    let dir = tempfile::tempdir().expect("tempdir");
    let victim_purse = purse_for(&client, "victim-buy", 0, &gateway.url(), dir.path());
    let victim = Wallet::open(victim_purse, ClientConfig::default()).expect("wallet");
    let victim_account = join_wallet(&victim, &client, &[Role::CoinPurchaser]);
    let thief_purse = purse_for(&client, "thief-buy", 2, &gateway.url(), dir.path());
    let thief = Wallet::open(thief_purse, ClientConfig::default()).expect("wallet");
    let thief_account = join_wallet(&thief, &client, &[Role::CoinPurchaser]);
    let victim_before = client.bank_balance(&victim_account).expect("balance");

    let stolen = thief.buy(spec(&[(2, 500)]), victim_account.clone(), false);
    let reason = match stolen {
        Ok(PurchaseOutcome::Rejected(r)) => r.reason,
        Err(WalletError::Rejected(r)) => r.reason,
        other => panic!("a purchase from another's account was not refused: {other:?}"),
    };
    assert_eq!(reason, RejectReason::AccountNotEnrolled);
    assert_eq!(
        client.bank_balance(&victim_account).expect("balance"),
        victim_before,
        "the victim's account was debited"
    );
    let PurchaseOutcome::Issued(coins) = thief
        .buy(spec(&[(2, 500)]), thief_account.clone(), false)
        .expect("own account")
    else {
        panic!("the purchaser's own account did not settle");
    };
    assert_eq!(coins.len(), 2);
    gateway.stop().expect("gateway stops");
}

// Row "ValidationRequest / ID_PY, V-DESC": an eavesdropper who saw the
// payer's SendCoins submits it first as the payee, with another coin spec or
// another option (aggregate instead of refresh), signed with its own key.
// The issuer refuses before committing anything; the payee's own request
// then gets its coins. Under its own id, the thief meets P3.
#[test]
fn a_validation_is_accepted_only_from_the_payee_it_names() {
    let core = issuer().core.clone();
    let gateway = serve_shared_issuer(&ServerConfig::loopback());
    let client = client_of(&gateway);
    let carol = join_manual(&client, "carol-payee-auth", 0, &[Role::CoinPurchaser]);
    let dave = join_manual(&client, "dave-payee-auth", 1, &[Role::Merchant]);
    let mallory = join_manual(&client, "mallory-payee-auth", 2, &[Role::Merchant]);
    let coins = buy(&client, &carol, spec(&[(2, 100)]));
    let (dave_state, send) = send_coins(&carol, &dave.id, coins.clone());

    let spoilers = [
        VOption::Refresh {
            spec: spec(&[(4, 50)]),
        },
        VOption::Aggregate,
    ];
    for option in spoilers {
        let (_state, spoiled) = dave_state
            .clone()
            .on_send_coins(
                core.suite(),
                &core.public_key(),
                mallory.sk,
                send.clone(),
                option,
            )
            .expect("anyone can build the request");
        let e = client.validate(&spoiled).expect_err("not dave's signature");
        assert_eq!(refused_code(&e), Some(ErrorCode::Refused), "{e}");
    }
    for coin in &coins {
        assert!(
            core.unspent_coin(&coin.id()).is_some(),
            "a coin was spent by a request dave never made"
        );
    }
    // Under her own identity the coins are not hers (P3).
    let (thief_state, _) = PaymentPayee::invoice(
        mallory.id.clone(),
        carol.id.clone(),
        core.id().clone(),
        PDesc::new("authorization".to_owned()).expect("p-desc"),
        Amount::from_minor(200),
        None,
    );
    let (_state, diverted) = thief_state
        .on_send_coins(
            core.suite(),
            &core.public_key(),
            mallory.sk,
            send.clone(),
            VOption::Aggregate,
        )
        .expect("request");
    let answer = client.validate(&diverted).expect("a signed refusal");
    assert!(matches!(
        answer.outcome,
        PaymentOutcome::Rejected(ref r) if r.reason == RejectReason::PayeeMismatch
    ));

    let option = VOption::Refresh {
        spec: spec(&[(1, 200)]),
    };
    let (awaiting, request) = dave_state
        .on_send_coins(core.suite(), &core.public_key(), dave.sk, send, option)
        .expect("dave's request");
    let issuance = client.validate(&request).expect("validated");
    match awaiting.on_issuance1(dave.sk, &issuance).expect("opens") {
        PayeeOutcome::Coins { coins, ack } => {
            assert_eq!(coins.len(), 1);
            client.validate_ack(&ack).expect("ack");
        }
        other => panic!("dave was not paid: {other:?}"),
    }
    gateway.stop().expect("gateway stops");
}

// Row "ValidationRequest / V-DESC Redeem account" on a repeat: a redeem is
// committed to the redeemer's account; a repeat of it (same payee, TID_PY
// and coins) naming the participant's other enrolled account is answered
// with the receipt and credits nothing more, anywhere.
#[test]
fn a_repeated_redeem_credits_the_original_account_only() {
    let core = issuer().core.clone();
    let gateway = serve_shared_issuer(&ServerConfig::loopback());
    let client = client_of(&gateway);
    let erin = join_manual(
        &client,
        "erin-redeem-repeat",
        0,
        &[Role::CoinPurchaser, Role::Redeemer, Role::Merchant],
    );
    let coins = buy(&client, &erin, spec(&[(1, 300)]));
    let redeem_to = erin.account(Role::Redeemer).clone();
    let other = erin.account(Role::Merchant).clone();
    let (redeem_before, other_before) = (
        client.bank_balance(&redeem_to).expect("balance"),
        client.bank_balance(&other).expect("balance"),
    );
    let (state, send) = send_coins(&erin, &erin.id, coins);
    for account in [redeem_to.clone(), other.clone(), redeem_to.clone()] {
        let (awaiting, request) = state
            .on_send_coins(
                core.suite(),
                &core.public_key(),
                erin.sk,
                send.clone(),
                VOption::Redeem {
                    bank_account: account,
                },
            )
            .expect("request");
        let issuance = client.validate(&request).expect("a receipt, every time");
        assert!(matches!(
            awaiting.on_issuance1(erin.sk, &issuance).expect("checks"),
            PayeeOutcome::Receipt(_)
        ));
    }
    assert_eq!(
        client.bank_balance(&redeem_to).expect("balance"),
        redeem_before
            .checked_add(Amount::from_minor(300))
            .expect("sum"),
        "the redeem is credited once, to its own account"
    );
    assert_eq!(
        client.bank_balance(&other).expect("balance"),
        other_before,
        "the repeat's account got money"
    );
    gateway.stop().expect("gateway stops");
}

// Row "POST /order/{tid}/pay / SendCoins": anyone who knows an order id
// posts a corrupted SendCoins first. The merchant does not keep the
// validation the issuer refused, so the honest payer's SendCoins then pays
// the order, without a merchant restart.
#[test]
fn a_corrupted_send_coins_does_not_block_the_order() {
    let core = issuer().core.clone();
    let gateway = serve_shared_issuer(&ServerConfig::loopback());
    let client = client_of(&gateway);
    let dir = tempfile::tempdir().expect("tempdir");
    let (shop_purse, shop) =
        enrolled_tea_shop(&client, "shop-corrupt", 1, &gateway.url(), dir.path());
    let alice_purse = purse_for(&client, "alice-corrupt", 0, &gateway.url(), dir.path());
    let alice = Wallet::open(alice_purse.clone(), ClientConfig::default()).expect("wallet");
    let account = join_wallet(&alice, &client, &[Role::CoinPurchaser]);
    alice
        .buy(spec(&[(1, 250)]), account, false)
        .expect("bought");

    let merchant = MerchantClient::new(&shop.url(), ClientConfig::default()).expect("client");
    let invoice = merchant.invoice("tea", alice.id()).expect("invoice");
    // Two corruptions the issuer refuses: an envelope that opens to
    // garbage, and one under another step's label.
    let garbage = [
        core.public_key()
            .seal(core.suite(), labels::PAY_SEND_COINS, b"not coins")
            .expect("seal"),
        core.public_key()
            .seal(core.suite(), labels::PAY_VALIDATION, b"not coins")
            .expect("seal"),
    ];
    for enc_c1 in garbage {
        let e = merchant
            .pay(&invoice.tid_py, &SendCoins { enc_c1 })
            .expect_err("refused");
        assert_eq!(refused_code(&e), Some(ErrorCode::Refused), "{e}");
    }
    assert!(
        shop_purse.in_flight().expect("journal").is_empty(),
        "the merchant kept a refused validation"
    );
    let paid = alice
        .pay_invoice(&shop.url(), &invoice)
        .expect("the honest payment goes through");
    assert!(matches!(paid, PayerOutcome::Paid { .. }));
    assert_eq!(
        alice.resume().expect("resume").unfinished,
        0,
        "nothing left in the payer's journal"
    );
    shop.stop().expect("shop stops");
    gateway.stop().expect("gateway stops");
}

// Item "a refused coin spec": a spec with more coins than one transaction
// may issue is refused by the wallet before anything is journaled or sent;
// the purse has nothing stuck to resume, and the error says why.
#[test]
fn a_coin_spec_the_issuer_would_refuse_is_refused_before_it_is_journaled() {
    let gateway = serve_shared_issuer(&ServerConfig::loopback());
    let client = client_of(&gateway);
    let dir = tempfile::tempdir().expect("tempdir");
    let purse = purse_for(&client, "frank-spec", 0, &gateway.url(), dir.path());
    let frank = Wallet::open(purse.clone(), ClientConfig::default()).expect("wallet");
    let account = join_wallet(&frank, &client, &[Role::CoinPurchaser]);
    let too_many = u32::try_from(ledger::constants::COINS_PER_TX_MAX).expect("fits") + 1;
    let e = frank
        .buy(spec(&[(too_many, 1)]), account.clone(), false)
        .expect_err("refused");
    assert!(matches!(e, WalletError::Invalid { .. }), "{e}");
    assert!(
        e.to_string().contains("more coins than one transaction"),
        "unclear error: {e}"
    );
    assert!(purse.in_flight().expect("journal").is_empty());
    assert_eq!(frank.resume().expect("resume").unfinished, 0);
    let PurchaseOutcome::Issued(_) = frank
        .buy(spec(&[(2, 100)]), account, false)
        .expect("a spec the issuer takes")
    else {
        panic!("purchase did not settle");
    };
    gateway.stop().expect("gateway stops");
}

// Row "WRequest1 / ID_CP": a purchase session is opened only for the
// approved purchaser who signed the request; a copy of a request opens no
// second session; a stale request is refused.
#[test]
fn purchase_sessions_are_opened_only_for_their_signed_purchaser() {
    let core = issuer().core.clone();
    let gateway = serve_shared_issuer(&ServerConfig::loopback());
    let client = client_of(&gateway);
    let gina = join_manual(&client, "gina-w1", 0, &[Role::CoinPurchaser]);
    let mallory = join_manual(&client, "mallory-w1", 2, &[Role::CoinPurchaser]);

    // Mallory names gina, signing with her own key.
    let (_, forged) = PurchaseClient::start(
        core.suite(),
        mallory.sk,
        gina.id.clone(),
        &core.public_key(),
        core.now(),
    )
    .expect("wrequest1");
    let e = client.wrequest1(&forged).expect_err("not gina's signature");
    assert_eq!(refused_code(&e), Some(ErrorCode::Refused), "{e}");
    // A stale request, correctly signed (a replay from long ago).
    let (_, stale) = PurchaseClient::start(
        core.suite(),
        gina.sk,
        gina.id.clone(),
        &core.public_key(),
        Timestamp(core.now().0 - 3_600),
    )
    .expect("wrequest1");
    let e = client.wrequest1(&stale).expect_err("stale");
    assert_eq!(refused_code(&e), Some(ErrorCode::Refused), "{e}");
    // Anyone may register; only an approved purchaser gets a session.
    let walk_in = join_manual(&client, "walk-in-w1", 2, &[]);
    let (_, unenrolled) = PurchaseClient::start(
        core.suite(),
        walk_in.sk,
        walk_in.id.clone(),
        &core.public_key(),
        core.now(),
    )
    .expect("wrequest1");
    let e = client.wrequest1(&unenrolled).expect_err("not a purchaser");
    assert_eq!(refused_code(&e), Some(ErrorCode::NotEnrolled), "{e}");
    // Nobody at all: garbage under the right label.
    let nobody = WRequest1 {
        envelope: core
            .public_key()
            .seal(
                core.suite(),
                labels::PURCHASE_1,
                KeyShare::random().as_bytes(),
            )
            .expect("seal"),
    };
    assert!(client.wrequest1(&nobody).is_err());

    // Gina's own request, sent three times: one handle, so one session
    // (the handle is the session's key in the store).
    let (state, w1) = PurchaseClient::start(
        core.suite(),
        gina.sk,
        gina.id.clone(),
        &core.public_key(),
        core.now(),
    )
    .expect("wrequest1");
    let handles: Vec<_> = (0..3)
        .map(|_| client.wrequest1(&w1).expect("wrequest2").purchase)
        .collect();
    assert!(handles.iter().all(|h| *h == handles[0]));
    // And it still works: the last copy's answer opens the same session.
    let w2 = client.wrequest1(&w1).expect("wrequest2");
    let w_desc = WDesc {
        amount: Amount::from_minor(100),
        spec: spec(&[(1, 100)]),
        bank_account: gina.account(Role::CoinPurchaser).clone(),
        anonymous: false,
    };
    let (_awaiting, w3) = state
        .on_wrequest2(gina.sk, core.id(), &w2, w_desc)
        .expect("wrequest3");
    let issuance = client.wrequest3(&w3).expect("accepted");
    assert!(!matches!(
        issuance.outcome,
        WirePurchaseOutcome::Rejected(_)
    ));
    gateway.stop().expect("gateway stops");
}

/// A GET of `path`, sent from source address `from` (any 127.0.0.0/8
/// address is this machine), and its answer.
fn get_from(from: std::net::Ipv4Addr, to: std::net::SocketAddr, path: &str) -> util::RawResponse {
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").into_bytes();
    exchange_from(from, to, &request)
}

/// Sends `request` from source address `from` and reads the answer.
fn exchange_from(
    from: std::net::Ipv4Addr,
    to: std::net::SocketAddr,
    request: &[u8],
) -> util::RawResponse {
    use std::io::Write as _;
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    socket
        .bind(&std::net::SocketAddr::from((from, 0)).into())
        .expect("bind the source address");
    socket.connect(&to.into()).expect("connect");
    let mut stream: std::net::TcpStream = socket.into();
    stream.write_all(request).expect("send");
    let bytes = util::read_all(&mut stream, Duration::from_secs(10));
    util::parse_response(&bytes).expect("an HTTP answer")
}

// Row "GET /item/{sku}/invoice": invoices cost the merchant an RSA
// signature and a place among its open orders for an hour. 2,000 GETs from
// one client get at most its share of open orders (refused before any
// signature); an honest payer from another address still gets an invoice
// and pays it.
#[test]
fn one_client_cannot_take_the_merchants_open_orders() {
    use client::constants::ORDERS_OPEN_PER_CLIENT_MAX;
    let gateway = serve_shared_issuer(&ServerConfig::loopback());
    let client = client_of(&gateway);
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, shop) = enrolled_tea_shop(&client, "shop-flood", 1, &gateway.url(), dir.path());
    let alice_purse = purse_for(&client, "alice-flood", 0, &gateway.url(), dir.path());
    let alice = Wallet::open(alice_purse, ClientConfig::default()).expect("wallet");
    let account = join_wallet(&alice, &client, &[Role::CoinPurchaser]);
    alice
        .buy(spec(&[(1, 250)]), account, false)
        .expect("bought");

    let flooder = std::net::Ipv4Addr::new(127, 0, 0, 1);
    let (mut n_invoiced, mut n_refused) = (0, 0);
    for _ in 0..2_000 {
        let answer = get_from(flooder, shop.addr(), "/item/tea/invoice?payer=flood");
        match answer.status {
            200 => n_invoiced += 1,
            429 => n_refused += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(n_invoiced, ORDERS_OPEN_PER_CLIENT_MAX);
    assert_eq!(n_refused, 2_000 - ORDERS_OPEN_PER_CLIENT_MAX);

    let honest = std::net::Ipv4Addr::new(127, 0, 0, 2);
    let path = format!("/item/tea/invoice?payer={}", alice.id().as_str());
    let answer = get_from(honest, shop.addr(), &path);
    assert_eq!(answer.status, 200);
    let invoice: protocol::wire::payment::Invoice =
        protocol::wire::decode(&answer.body).expect("an invoice");
    let paid = alice.pay_invoice(&shop.url(), &invoice).expect("paid");
    assert!(matches!(paid, PayerOutcome::Paid { .. }));
    shop.stop().expect("shop stops");
    gateway.stop().expect("gateway stops");
}

/// What a refused request tells its sender: status, code and message.
fn told(e: &ClientError) -> (u16, Option<ErrorCode>, String) {
    match e {
        ClientError::Refused { status, body, .. } => {
            (*status, Some(body.code), body.message.as_str().to_owned())
        }
        other => panic!("not a typed refusal: {other}"),
    }
}

// Rows "… / id" for a stranger: an enrollment, a refund, a WRequest1 and a
// ValidationRequest naming a registered participant, or an id nobody
// registered, each signed by a key that is not the named one's, get the
// very same answer: a stranger learns nothing of who is registered.
#[test]
fn a_stranger_learns_nothing_of_who_is_registered() {
    let core = issuer().core.clone();
    let gateway = serve_shared_issuer(&ServerConfig::loopback());
    let client = client_of(&gateway);
    let hugo = join_manual(
        &client,
        "hugo-oracle",
        0,
        &[Role::CoinPurchaser, Role::Merchant],
    );
    let coins = buy(&client, &hugo, spec(&[(1, 100)]));
    let stranger = key(2);
    let nobody = ParticipantId::new("nobody-oracle").expect("id");
    let account = BankAccount::new("acct-stranger-oracle").expect("account");

    let mut answers = Vec::new();
    for id in [&hugo.id, &nobody] {
        let enrollment = enrollment_request(
            core.suite(),
            stranger,
            &core.public_key(),
            id.clone(),
            Role::Redeemer,
            account.clone(),
            Timestamp::now(),
        )
        .expect("request");
        let enrolled = told(&client.enroll(&enrollment).expect_err("enrollment"));
        let (_, refund) = protocol::flows::RefundClient::start(
            core.suite(),
            stranger,
            &core.public_key(),
            core.id().clone(),
            id.clone(),
            Timestamp::now(),
        )
        .expect("request");
        let refunded = told(&client.refund(&refund).expect_err("refund"));
        let (_, wrequest1) = PurchaseClient::start(
            core.suite(),
            stranger,
            id.clone(),
            &core.public_key(),
            core.now(),
        )
        .expect("wrequest1");
        let purchased = told(&client.wrequest1(&wrequest1).expect_err("wrequest1"));
        let (payee, send) = send_coins(&hugo, id, coins.clone());
        let (_, validation) = payee
            .on_send_coins(
                core.suite(),
                &core.public_key(),
                stranger,
                send,
                VOption::Aggregate,
            )
            .expect("request");
        let validated = told(&client.validate(&validation).expect_err("validation"));
        answers.push([enrolled, refunded, purchased, validated]);
    }
    for (step, (known, unknown)) in answers[0].iter().zip(&answers[1]).enumerate() {
        assert_eq!(known, unknown, "step {step} tells who is registered");
        assert_eq!(known.0, 422, "step {step}: {known:?}");
    }
    assert!(
        core.unspent_coin(&coins[0].id()).is_some(),
        "hugo's coin is untouched"
    );
    gateway.stop().expect("gateway stops");
}

// Row "RegisterRequest / ID" (reserved ids): nobody is certified under a
// name of the issuer or one of its services, in any case or look-alike
// spelling, whatever key asks; an ordinary name next to them still is.
#[test]
fn ids_that_name_the_issuer_or_its_services_are_refused_at_registration() {
    let core = issuer().core.clone();
    let gateway = serve_shared_issuer(&ServerConfig::loopback());
    let client = client_of(&gateway);
    for name in [
        "issuer",
        "Issuer",
        "ISSUER",
        "1ssuer",
        "the-issuer",
        "operator",
        "0perator",
        "admin",
        "Admin2",
        "bank",
        "the_bank",
        "user-index",
        "UserIndex",
        "card-agency",
        "auditor",
    ] {
        let id = ParticipantId::new(name).expect("id");
        let (_, request) = RegistrationClient::start(id.clone(), key(2));
        let e = client.register(&request).expect_err(name);
        assert_eq!(
            refused_code(&e),
            Some(ErrorCode::IdentityTaken),
            "{name}: {e}"
        );
        assert!(e.to_string().contains("reserved"), "{name}: {e}");
        assert!(core.participant(&id).expect("registry").is_none(), "{name}");
    }
    let id = ParticipantId::new("bankside-tea").expect("id");
    let (_, request) = RegistrationClient::start(id, key(2));
    client
        .register(&request)
        .expect("an ordinary name is registered");
    gateway.stop().expect("gateway stops");
}

// Rows "RegisterRequest / ID, PK" and "EnrollmentRequest / ID, role, bank
// account": an identity is registered once, with the key that proves
// possession; only that key enrolls it; an enrolled role's account is the
// one first asked for (a later request cannot change it).
#[test]
fn an_identity_its_enrollments_and_their_accounts_belong_to_its_key() {
    let core = issuer().core.clone();
    let gateway = serve_shared_issuer(&ServerConfig::loopback());
    let client = client_of(&gateway);
    let hugo = join_manual(&client, "hugo-identity", 0, &[Role::CoinPurchaser]);
    let mallory = join_manual(&client, "mallory-identity", 2, &[Role::CoinPurchaser]);

    // Hugo's identity under mallory's key.
    let (_, taken) = RegistrationClient::start(hugo.id.clone(), mallory.sk);
    let e = client.register(&taken).expect_err("taken");
    assert_eq!(refused_code(&e), Some(ErrorCode::IdentityTaken), "{e}");
    // A new identity with mallory's key but hugo's proof of possession.
    let (_, mut forged) =
        RegistrationClient::start(ParticipantId::new("nobody-identity").expect("id"), hugo.sk);
    forged.public_key = mallory.sk.public();
    let e = client.register(&forged).expect_err("no proof");
    assert_eq!(refused_code(&e), Some(ErrorCode::Refused), "{e}");

    // An enrollment for hugo signed by mallory, to mallory's account.
    let as_hugo = enrollment_request(
        core.suite(),
        mallory.sk,
        &core.public_key(),
        hugo.id.clone(),
        Role::Redeemer,
        mallory.account(Role::CoinPurchaser).clone(),
        Timestamp::now(),
    )
    .expect("request");
    let e = client.enroll(&as_hugo).expect_err("not hugo's signature");
    assert_eq!(refused_code(&e), Some(ErrorCode::Refused), "{e}");
    // Hugo himself asks again for his approved role with another account:
    // the answer is the enrollment he has, and purchases still debit only
    // the first account.
    let again = enrollment_request(
        core.suite(),
        hugo.sk,
        &core.public_key(),
        hugo.id.clone(),
        Role::CoinPurchaser,
        mallory.account(Role::CoinPurchaser).clone(),
        Timestamp::now(),
    )
    .expect("request");
    client.enroll(&again).expect("answered");
    let participant = core
        .participant(&hugo.id)
        .expect("registry")
        .expect("registered");
    let enrolled = participant
        .enrolled(Role::CoinPurchaser)
        .expect("still enrolled");
    assert_eq!(&enrolled.bank_account, hugo.account(Role::CoinPurchaser));
    gateway.stop().expect("gateway stops");
}

// Row "RefundRequest / ID_CH": only the holder's key asks for its refund.
#[test]
fn a_refund_is_only_for_the_holder_who_signed_it() {
    let core = issuer().core.clone();
    let gateway = serve_shared_issuer(&ServerConfig::loopback());
    let client = client_of(&gateway);
    let ivy = join_manual(&client, "ivy-refund", 0, &[Role::CoinPurchaser]);
    let mallory = join_manual(&client, "mallory-refund", 2, &[Role::CoinPurchaser]);
    let coins = buy(&client, &ivy, spec(&[(1, 100)]));
    let (_, forged) = protocol::flows::RefundClient::start(
        core.suite(),
        mallory.sk,
        &core.public_key(),
        core.id().clone(),
        ivy.id.clone(),
        Timestamp::now(),
    )
    .expect("request");
    let e = client.refund(&forged).expect_err("not ivy's signature");
    assert_eq!(refused_code(&e), Some(ErrorCode::Refused), "{e}");
    assert!(
        core.unspent_coin(&coins[0].id()).is_some(),
        "ivy's coin was revoked by a request she never made"
    );
    gateway.stop().expect("gateway stops");
}

// WRequest1 carries its time, so a journaled one goes stale: a purchase
// resumed long after its WRequest1 was journaled signs it afresh (nothing
// that commits was sent) instead of being refused on every resume.
#[test]
fn a_purchase_resumed_after_its_wrequest1_went_stale_is_signed_afresh() {
    let core = issuer().core.clone();
    let gateway = serve_shared_issuer(&ServerConfig::loopback());
    let client = client_of(&gateway);
    let dir = tempfile::tempdir().expect("tempdir");
    let purse = purse_for(&client, "jack-stale", 0, &gateway.url(), dir.path());
    let clock = std::sync::Arc::new(ManualClock::at(core.now()));
    let jack = Wallet::open(purse.clone(), ClientConfig::default())
        .expect("wallet")
        .with_clock(clock.clone());
    let account = join_wallet(&jack, &client, &[Role::CoinPurchaser]);
    // Jack's clock goes an hour slow: his WRequest1 is stale when it arrives.
    clock.set(Timestamp(core.now().0 - 3_600));
    let e = jack
        .buy(spec(&[(1, 100)]), account, false)
        .expect_err("stale");
    assert_eq!(e_code(&e), Some(ErrorCode::Refused), "{e}");
    assert_eq!(purse.in_flight().expect("journal").len(), 1);
    // The clock is right again; the journaled WRequest1 is still stale.
    clock.set(Timestamp(core.now().0));
    let report = jack.resume().expect("resumed");
    assert_eq!(report.unfinished, 0, "{report:?}");
    assert!(purse.in_flight().expect("journal").is_empty());
    gateway.stop().expect("gateway stops");
}

fn e_code(e: &WalletError) -> Option<ErrorCode> {
    match e {
        WalletError::Client(c) => c.code(),
        _ => None,
    }
}

// The same, while the merchant cannot reach the issuer: the corrupt
// SendCoins stays journaled (the issuer may yet answer it), and when the
// issuer is back the honest payer's first attempt finds it refused for good,
// drops it and pays with its own SendCoins in the same attempt.
#[test]
fn a_corrupted_send_coins_journaled_while_the_issuer_was_away_does_not_block_the_order() {
    let core = issuer().core.clone();
    let gateway = serve_shared_issuer(&ServerConfig::loopback());
    let client = client_of(&gateway);
    // The merchant reaches the issuer through a gateway of its own, which
    // the test stops and starts again on the same address.
    let shop_gateway =
        vc_gateway::serve_issuer(&ServerConfig::loopback(), issuer().handle()).expect("gateway");
    let shop_gateway_addr = shop_gateway.addr();
    let dir = tempfile::tempdir().expect("tempdir");
    let (shop_purse, shop) =
        enrolled_tea_shop(&client, "shop-away", 1, &shop_gateway.url(), dir.path());
    let alice_purse = purse_for(&client, "alice-away", 0, &gateway.url(), dir.path());
    let alice = Wallet::open(alice_purse, ClientConfig::default()).expect("wallet");
    let account = join_wallet(&alice, &client, &[Role::CoinPurchaser]);
    alice
        .buy(spec(&[(1, 250)]), account, false)
        .expect("bought");
    let merchant = MerchantClient::new(&shop.url(), ClientConfig::default()).expect("client");
    let invoice = merchant.invoice("tea", alice.id()).expect("invoice");

    shop_gateway.stop().expect("gateway stops");
    let garbage = core
        .public_key()
        .seal(core.suite(), labels::PAY_SEND_COINS, b"not coins")
        .expect("seal");
    let e = merchant
        .pay(&invoice.tid_py, &SendCoins { enc_c1: garbage })
        .expect_err("issuer away");
    assert_eq!(refused_code(&e), Some(ErrorCode::IssuerUnavailable), "{e}");
    assert_eq!(shop_purse.in_flight().expect("journal").len(), 1);

    let shop_gateway =
        vc_gateway::serve_issuer(&ServerConfig::new(shop_gateway_addr), issuer().handle())
            .expect("gateway again");
    let paid = alice
        .pay_invoice(&shop.url(), &invoice)
        .expect("paid at the first attempt");
    assert!(matches!(paid, PayerOutcome::Paid { .. }));
    assert!(shop_purse.in_flight().expect("journal").is_empty());
    shop.stop().expect("shop stops");
    shop_gateway.stop().expect("gateway stops");
    gateway.stop().expect("gateway stops");
}

// Row "POST /order/{tid}/pay" on cost: each SendCoins the issuer refuses
// cost the merchant a signature. One client posting them gets 429 after
// PAY_REFUSALS_PER_CLIENT_MAX in a window, before any work; a payer from
// another address still pays the order.
#[test]
fn one_client_posting_refused_send_coins_is_stopped_before_any_work() {
    use client::constants::PAY_REFUSALS_PER_CLIENT_MAX;
    let core = issuer().core.clone();
    let gateway = serve_shared_issuer(&ServerConfig::loopback());
    let client = client_of(&gateway);
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, shop) = enrolled_tea_shop(&client, "shop-refusals", 1, &gateway.url(), dir.path());
    let kate = join_manual(&client, "kate-refusals", 0, &[Role::CoinPurchaser]);
    let coins = buy(&client, &kate, spec(&[(1, 250)]));
    let merchant = MerchantClient::new(&shop.url(), ClientConfig::default()).expect("client");
    let invoice = merchant.invoice("tea", &kate.id).expect("invoice");
    let path = format!("/order/{}/pay", invoice.tid_py);

    let flooder = std::net::Ipv4Addr::new(127, 0, 0, 1);
    let garbage = protocol::wire::encode(&SendCoins {
        enc_c1: core
            .public_key()
            .seal(core.suite(), labels::PAY_SEND_COINS, b"not coins")
            .expect("seal"),
    });
    let post = |body: &[u8]| util::post_request(&path, client::media::POSTCARD, body);
    let statuses: Vec<u16> = (0..40)
        .map(|_| exchange_from(flooder, shop.addr(), &post(&garbage)).status)
        .collect();
    let n_refused = PAY_REFUSALS_PER_CLIENT_MAX as usize;
    assert!(
        statuses[..n_refused].iter().all(|s| *s == 422),
        "{statuses:?}"
    );
    assert!(
        statuses[n_refused..].iter().all(|s| *s == 429),
        "{statuses:?}"
    );

    let (payer, send) = PaymentPayer::pay(
        core.suite(),
        &core.public_key(),
        core.id(),
        &kate.id,
        &invoice,
        coins,
        Timestamp::now(),
    )
    .expect("send coins");
    let honest = std::net::Ipv4Addr::new(127, 0, 0, 2);
    let answer = exchange_from(honest, shop.addr(), &post(&protocol::wire::encode(&send)));
    assert_eq!(answer.status, 200);
    let result: protocol::wire::payment::PaymentResult =
        protocol::wire::decode(&answer.body).expect("a payment result");
    assert!(matches!(
        payer.on_result(&result).expect("checks"),
        PayerOutcome::Paid { .. }
    ));
    shop.stop().expect("shop stops");
    gateway.stop().expect("gateway stops");
}

// The same attack on a real merchant server: the eavesdropper takes the
// payer's SendCoins off the wire to the shop and submits it to the issuer
// first, in the shop's name, with an aggregate or another coin spec. The
// issuer refuses it; the payer's POST then pays the order and the shop gets
// its refreshed coins.
#[test]
fn a_spoiled_validation_leaves_the_merchants_real_one_to_succeed() {
    use protocol::wire::payment::{VDesc, ValidationBody, ValidationKind, ValidationRequest};
    let core = issuer().core.clone();
    let gateway = serve_shared_issuer(&ServerConfig::loopback());
    let client = client_of(&gateway);
    let dir = tempfile::tempdir().expect("tempdir");
    let (shop_purse, shop) =
        enrolled_tea_shop(&client, "shop-spoiled", 1, &gateway.url(), dir.path());
    let lena = join_manual(&client, "lena-spoiled", 0, &[Role::CoinPurchaser]);
    let mallory = join_manual(&client, "mallory-spoiled", 2, &[Role::Merchant]);
    let coins = buy(&client, &lena, spec(&[(1, 250)]));
    let merchant = MerchantClient::new(&shop.url(), ClientConfig::default()).expect("client");
    let invoice = merchant.invoice("tea", &lena.id).expect("invoice");
    let (payer, send) = PaymentPayer::pay(
        core.suite(),
        &core.public_key(),
        core.id(),
        &lena.id,
        &invoice,
        coins.clone(),
        Timestamp::now(),
    )
    .expect("send coins");

    for option in [
        VOption::Aggregate,
        VOption::Refresh {
            spec: spec(&[(2, 125)]),
        },
    ] {
        let v_desc = VDesc {
            amount: invoice.amount,
            option,
        };
        let k_py = KeyShare::random();
        let signature = mallory.sk.sign(
            labels::PAY_VALIDATION_SIGNATURE,
            &ValidationBody::signed_bytes(
                &invoice.id_py,
                &invoice.id_pa,
                &k_py,
                &invoice.tid_py,
                ValidationKind::Payment,
                &v_desc,
                &send.enc_c1,
            ),
        );
        let body = ValidationBody {
            id_py: invoice.id_py.clone(),
            id_pa: invoice.id_pa.clone(),
            k_py,
            tid_py: invoice.tid_py,
            kind: ValidationKind::Payment,
            v_desc,
            enc_c1: send.enc_c1.clone(),
            signature,
        };
        let spoiled = ValidationRequest {
            envelope: core
                .public_key()
                .seal(
                    core.suite(),
                    labels::PAY_VALIDATION,
                    &protocol::wire::encode(&body),
                )
                .expect("seal"),
        };
        let e = client
            .validate(&spoiled)
            .expect_err("not the shop's signature");
        assert_eq!(refused_code(&e), Some(ErrorCode::Refused), "{e}");
    }
    assert!(core.unspent_coin(&coins[0].id()).is_some(), "nothing spent");

    let result = merchant.pay(&invoice.tid_py, &send).expect("answered");
    assert!(matches!(
        payer.on_result(&result).expect("checks"),
        PayerOutcome::Paid {
            receipt_verified: true
        }
    ));
    assert_eq!(
        shop_purse
            .balance()
            .expect("balance")
            .holdings()
            .expect("sum"),
        Amount::from_minor(250)
    );
    shop.stop().expect("shop stops");
    gateway.stop().expect("gateway stops");
}

/// WRequest1..3 for `who` and polls until the coins come; the coins and
/// the ack are handed back, the ack not sent (the purchase holds its session until it is).
fn settled_purchase(
    client: &IssuerClient,
    who: &Manual,
    spec: CoinSpec,
) -> (Vec<Coin>, protocol::wire::purchase::PurchaseIssuance2) {
    let core = &issuer().core;
    let (state, w1) = PurchaseClient::start(
        core.suite(),
        who.sk,
        who.id.clone(),
        &core.public_key(),
        core.now(),
    )
    .expect("wrequest1");
    let w2 = client.wrequest1(&w1).expect("wrequest2");
    let w_desc = WDesc {
        amount: spec.total().expect("total"),
        spec,
        bank_account: who.account(Role::CoinPurchaser).clone(),
        anonymous: false,
    };
    let (awaiting, w3) = state
        .on_wrequest2(who.sk, core.id(), &w2, w_desc)
        .expect("wrequest3");
    let mut issuance = client.wrequest3(&w3).expect("issuance1");
    // Polled until a deadline, not a count: a busy machine settles late.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        match awaiting.on_issuance1(&issuance).expect("issuance1 checks") {
            PurchaseUpdate::Issued { coins, ack } => return (coins, ack),
            PurchaseUpdate::Pending => {
                std::thread::sleep(Duration::from_millis(20));
                issuance = client.purchase_poll(&awaiting.poll()).expect("poll");
            }
            PurchaseUpdate::Rejected(r) => panic!("purchase rejected: {r:?}"),
        }
    }
    panic!("purchase never settled");
}

// Row "WRequest1" on room: one approved purchaser cannot fill the session
// store. Sessions not begun (no WRequest3) give way to new ones; begun
// purchases hold at most PURCHASE_SESSIONS_PER_PURCHASER_MAX slots until
// acknowledged.
#[test]
fn one_purchaser_cannot_fill_the_purchase_sessions() {
    use actors::PURCHASE_SESSIONS_PER_PURCHASER_MAX as SLOTS;
    let core = issuer().core.clone();
    let gateway = serve_shared_issuer(&ServerConfig::loopback());
    let client = client_of(&gateway);
    let mia = join_manual(&client, "mia-slots", 0, &[Role::CoinPurchaser]);
    let start = || {
        PurchaseClient::start(
            core.suite(),
            mia.sk,
            mia.id.clone(),
            &core.public_key(),
            core.now(),
        )
        .expect("wrequest1")
    };

    // Three times the slots of WRequest1 never followed by a WRequest3:
    // every one is answered, the oldest giving way.
    let (first_state, first_w1) = start();
    let first_w2 = client.wrequest1(&first_w1).expect("wrequest2");
    for _ in 1..3 * SLOTS {
        client.wrequest1(&start().1).expect("wrequest2");
    }
    let w_desc = WDesc {
        amount: Amount::from_minor(100),
        spec: spec(&[(1, 100)]),
        bank_account: mia.account(Role::CoinPurchaser).clone(),
        anonymous: false,
    };
    let (_, stale_w3) = first_state
        .on_wrequest2(mia.sk, core.id(), &first_w2, w_desc)
        .expect("wrequest3");
    let e = client
        .wrequest3(&stale_w3)
        .expect_err("its session gave way");
    assert_eq!(refused_code(&e), Some(ErrorCode::UnknownPurchase), "{e}");

    // Begun purchases, not acknowledged, hold every slot.
    let acks: Vec<_> = (0..SLOTS)
        .map(|_| settled_purchase(&client, &mia, spec(&[(1, 100)])).1)
        .collect();
    let (_, w1) = start();
    let e = client.wrequest1(&w1).expect_err("every slot holds money");
    assert_eq!(refused_code(&e), Some(ErrorCode::Overloaded), "{e}");
    // An acknowledged purchase frees its slot.
    client.purchase_ack(&acks[0]).expect("ack");
    client.wrequest1(&w1).expect("a slot again");
    for ack in &acks[1..] {
        client.purchase_ack(ack).expect("ack");
    }
    gateway.stop().expect("gateway stops");
}
