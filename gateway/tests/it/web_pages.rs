//! The browser-facing routes answer only whom they are for: the purse page
//! only its session (handed out once for the link `purse ui` prints),
//! under its own `Host`, and its forms only with the session's CSRF token
//! and its own `Origin`; the merchant's page only the session of its
//! one-time link; the issuer's dashboard only a session opened by a fresh
//! grant signed with a listed operator key, once. Every refusal is a 403
//! that sets no cookie and changes nothing.

#![allow(clippy::expect_used)]

use crate::util;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use client::merchant::{ClientLimits, serve_merchant_for_owner};
use client::operator::now_micros;
use client::purse_ui::{PurseUiConfig, serve_purse_ui};
use client::{
    CatalogItem, ClientConfig, CollectOption, MerchantConfig, OperatorKey, ServerConfig, Wallet,
};
use ledger::Role;
use protocol::wire::encode;
use vc_gateway::dashboard::{DASHBOARD_LOGIN_ROUTE, DashboardGrant};

use util::{
    RawResponse, client_of, join_wallet, operator_key, purse_for, raw_exchange, serve_shared_issuer,
};

fn get(addr: SocketAddr, path: &str, host: &str, cookie: Option<&str>) -> RawResponse {
    let cookie = cookie
        .map(|c| format!("Cookie: {c}\r\n"))
        .unwrap_or_default();
    raw_exchange(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n{cookie}Connection: close\r\n\r\n")
            .as_bytes(),
    )
}

fn post_form(
    addr: SocketAddr,
    path: &str,
    cookie: &str,
    origin: Option<&str>,
    form: &str,
) -> RawResponse {
    let origin = origin
        .map(|o| format!("Origin: {o}\r\n"))
        .unwrap_or_default();
    raw_exchange(
        addr,
        format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\n{origin}Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{form}",
            form.len()
        )
        .as_bytes(),
    )
}

/// The `name=value` of the cookie a response sets.
fn cookie_set(response: &RawResponse) -> Option<String> {
    response
        .header("set-cookie")
        .and_then(|c| c.split(';').next())
        .map(str::to_owned)
}

fn refused(response: &RawResponse, what: &str) {
    assert_eq!(response.status, 403, "{what}");
    assert_eq!(cookie_set(response), None, "{what}: no cookie");
}

#[test]
fn the_merchants_page_answers_only_its_one_time_link_and_then_its_session() {
    let gateway = serve_shared_issuer(&ServerConfig::loopback());
    let client = client_of(&gateway);
    let dir = tempfile::tempdir().expect("tempdir");
    let purse = purse_for(&client, "web-shop", 1, &gateway.url(), dir.path());
    let config = MerchantConfig {
        server: ServerConfig::loopback(),
        shop_name: "Shop".into(),
        catalog: vec![CatalogItem {
            sku: "tea".into(),
            title: "Tea".into(),
            price: ledger::Amount::from_minor(250),
            collect: None,
        }],
        collect: CollectOption::Refresh,
        client: ClientConfig::default(),
    };
    let (shop, link) =
        serve_merchant_for_owner(&config, purse, ClientLimits::default()).expect("shop");
    let addr = shop.addr();
    let host = addr.to_string();
    let login = &link[link.find("/merchant/login").expect("login path")..];

    refused(&get(addr, "/merchant", &host, None), "no cookie");
    refused(
        &get(addr, "/merchant/login?token=00", &host, None),
        "a wrong token",
    );
    let opened = get(addr, login, &host, None);
    assert_eq!(opened.status, 303);
    let cookie = cookie_set(&opened).expect("a session cookie");
    let set = opened.header("set-cookie").expect("set-cookie");
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    refused(&get(addr, login, &host, None), "the link a second time");
    refused(
        &get(addr, "/merchant", &host, Some("vc_merchant_session=00")),
        "another cookie",
    );
    let page = get(addr, "/merchant", &host, Some(&cookie));
    assert_eq!(page.status, 200);
    assert!(String::from_utf8_lossy(&page.body).contains("Takings"));
    assert!(
        page.header("content-security-policy")
            .is_some_and(|csp| csp.contains("default-src 'none'"))
    );
}

#[test]
fn the_dashboard_opens_only_for_a_fresh_operator_grant_and_once() {
    let gateway = serve_shared_issuer(&ServerConfig::loopback());
    let addr = gateway.addr();
    let host = addr.to_string();
    let grant = |key: &OperatorKey, route: &str, at: u64| {
        let signed = key
            .sign_at(
                util::issuer_audience(),
                route,
                encode(&DashboardGrant {}),
                at,
            )
            .expect("signed");
        format!(
            "{DASHBOARD_LOGIN_ROUTE}?grant={}",
            hex::encode(encode(&signed))
        )
    };
    let stranger = OperatorKey::generate().expect("keygen");
    let now = now_micros();
    let window = client::constants::OPERATOR_REQUEST_WINDOW_SECS * 1_000_000;

    refused(&get(addr, "/dashboard", &host, None), "no session");
    for (what, path) in [
        ("no grant", DASHBOARD_LOGIN_ROUTE.to_owned()),
        ("garbage", format!("{DASHBOARD_LOGIN_ROUTE}?grant=zz00")),
        (
            "an unlisted key",
            grant(&stranger, DASHBOARD_LOGIN_ROUTE, now),
        ),
        (
            "another route",
            grant(operator_key(), "/admin/epoch/open", now),
        ),
        (
            "stale",
            grant(
                operator_key(),
                DASHBOARD_LOGIN_ROUTE,
                now - window - 5_000_000,
            ),
        ),
    ] {
        refused(&get(addr, &path, &host, None), what);
    }
    let good = grant(operator_key(), DASHBOARD_LOGIN_ROUTE, now);
    let opened = get(addr, &good, &host, None);
    assert_eq!(opened.status, 303);
    let cookie = cookie_set(&opened).expect("a session cookie");
    refused(&get(addr, &good, &host, None), "the grant replayed");
    refused(
        &get(addr, "/dashboard", &host, Some("vc_dashboard_session=00")),
        "another cookie",
    );
    let page = get(addr, "/dashboard", &host, Some(&cookie));
    assert_eq!(page.status, 200);
    let html = String::from_utf8_lossy(&page.body);
    assert!(html.contains("Outstanding e-money") && html.contains("<svg"));
}

#[test]
fn the_purse_page_answers_only_its_session_and_its_own_forms() {
    let gateway = serve_shared_issuer(&ServerConfig::loopback());
    let client = client_of(&gateway);
    let dir = tempfile::tempdir().expect("tempdir");
    let purse = purse_for(&client, "web-alice", 2, &gateway.url(), dir.path());
    let wallet = Wallet::open(purse.clone(), ClientConfig::default()).expect("wallet");
    let account = join_wallet(&wallet, &client, &[Role::CoinPurchaser]);
    let ui = serve_purse_ui(
        wallet,
        PurseUiConfig {
            bind: "127.0.0.1:0".parse().expect("addr"),
            default_account: Some(account),
            client: ClientConfig::default(),
        },
    )
    .expect("purse page");
    let addr = ui.server.addr();
    let host = addr.to_string();
    let login = &ui.login_url[ui.origin.len()..];

    refused(&get(addr, "/", &host, None), "no cookie");
    refused(&get(addr, login, "evil.example:80", None), "another Host");
    let opened = get(addr, login, &host, None);
    assert_eq!(opened.status, 303);
    let cookie = cookie_set(&opened).expect("a session cookie");
    refused(&get(addr, login, &host, None), "the link a second time");
    refused(
        &get(addr, "/", "evil.example:80", Some(&cookie)),
        "another Host",
    );
    refused(
        &get(addr, "/", &host, Some("vc_purse_session=00")),
        "another cookie",
    );
    let home = get(addr, "/", &host, Some(&cookie));
    assert_eq!(home.status, 200);
    let html = String::from_utf8_lossy(&home.body).into_owned();
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a CSRF token in the page")
        .to_owned();

    let origin = ui.origin.as_str();
    for (what, form, from) in [
        ("no token", "spec=1x2.50".to_owned(), Some(origin)),
        (
            "a wrong token",
            format!("csrf={}&spec=1x2.50", "0".repeat(64)),
            Some(origin),
        ),
        (
            "another origin",
            format!("csrf={csrf}&spec=1x2.50"),
            Some("https://evil.example"),
        ),
        (
            "Origin null",
            format!("csrf={csrf}&spec=1x2.50"),
            Some("null"),
        ),
    ] {
        refused(&post_form(addr, "/buy", &cookie, from, &form), what);
    }
    refused(
        &post_form(
            addr,
            "/buy",
            "vc_purse_session=00",
            Some(origin),
            &format!("csrf={csrf}&spec=1x2.50"),
        ),
        "the token without the cookie",
    );
    assert!(purse.in_flight().expect("journal").is_empty());
    assert!(purse.history().expect("history").is_empty());

    let bought = post_form(
        addr,
        "/buy",
        &cookie,
        Some(origin),
        &format!("csrf={csrf}&spec=2x2.50"),
    );
    assert_eq!(bought.status, 303);
    let deadline = Instant::now() + Duration::from_secs(30);
    while purse.balance().expect("balance").available != ledger::Amount::from_minor(500) {
        assert!(Instant::now() < deadline, "the purchase never completed");
        std::thread::sleep(Duration::from_millis(100));
    }
}
