//! The issuer gateway over real loopback HTTP: operator routes, and every
//! class of bad request answered with a typed error body and a 4xx (or 503
//! under load), never a panic or a hang. Each test starts its own server
//! (with the limits it probes) over the binary's one issuer.

use crate::util;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use client::media::{ERROR, POSTCARD};
use client::{ClientConfig, ErrorBody, ErrorCode, IssuerClient, ServerConfig, ServerHandle};
use protocol::wire::payment::ValidationRequest;
use protocol::wire::{WireMessage, decode};
use vc_gateway::serve_issuer;

use util::{issuer, parse_response, post_request, raw_exchange, read_all};

fn start(config: ServerConfig) -> ServerHandle {
    serve_issuer(&util::operator_config(config), issuer().handle()).expect("gateway starts")
}

/// Checks a response is the typed error `code` with `status`.
fn assert_typed(resp: &util::RawResponse, status: u16, code: ErrorCode) {
    assert_eq!(resp.status, status, "status; body {:?}", resp.body);
    assert_eq!(resp.header("content-type"), Some(ERROR));
    let body: ErrorBody = decode(&resp.body).expect("a typed error body");
    assert_eq!(body.code, code, "{}", body.message.as_str());
}

/// /health answers, /metrics speaks Prometheus text and counts requests by
/// route pattern and status, and shows the issuer's own figures.
#[test]
fn health_and_metrics_answer() {
    let server = start(ServerConfig::loopback());
    let client = util::operator_client(&server.url());
    client.health().expect("healthy");
    let descriptor = client.descriptor().expect("descriptor");
    assert_eq!(&descriptor.id_i, issuer().core.id());
    assert_eq!(
        descriptor.public_key,
        issuer().core.public_key().to_ledger()
    );
    let _ = raw_exchange(
        server.addr(),
        &post_request("/v1/register", POSTCARD, b"\x01"),
    );
    let metrics = client.metrics(util::scrape_token()).expect("metrics");
    assert!(
        metrics.contains("vc_issuer_http_requests_total{route=\"/v1/issuer\",status=\"200\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("vc_issuer_http_requests_total{route=\"/v1/register\",status=\"400\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("# TYPE vc_issuer_http_request_duration_seconds histogram"));
    assert!(
        metrics.contains("vc_issuer_http_request_duration_seconds_count{route=\"/v1/register\"} 1")
    );
    assert!(metrics.contains("vc_issuer_outstanding_emoney_minor "));
    assert!(metrics.contains("vc_issuer_log_records_total "));
    assert!(
        metrics.contains("vc_issuer_log_commits_total "),
        "{metrics}"
    );
    assert!(
        metrics.contains("vc_issuer_session_commits_total "),
        "{metrics}"
    );
    assert!(metrics.contains("# TYPE vc_issuer_stage_seconds histogram"));
    assert!(
        metrics.contains("vc_issuer_stage_seconds_bucket{stage=\"decrypt\",le=\"+Inf\"} "),
        "{metrics}"
    );
    assert!(metrics.contains("vc_issuer_stage_seconds_count{stage=\"log_append\"} "));
    assert!(metrics.contains("vc_issuer_http_requests_in_flight 0"));
    server.stop().expect("stops");
}

/// 415: a body of another media type, or none declared.
#[test]
fn wrong_media_type_is_415() {
    let server = start(ServerConfig::loopback());
    let resp = raw_exchange(
        server.addr(),
        &post_request("/v1/validate", "application/json", b"{}"),
    );
    assert_typed(&resp, 415, ErrorCode::UnsupportedMediaType);
    let resp = raw_exchange(
        server.addr(),
        b"POST /v1/register HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 1\r\n\r\n\x01",
    );
    assert_typed(&resp, 415, ErrorCode::UnsupportedMediaType);
}

/// 413: a body larger than the route's message may be, whether declared up
/// front or sent chunked without a length.
#[test]
fn oversized_body_is_413() {
    let server = start(ServerConfig::loopback());
    let too_big = vec![1u8; <ValidationRequest as WireMessage>::BYTES_MAX + 1];
    let resp = raw_exchange(
        server.addr(),
        &post_request("/v1/validate", POSTCARD, &too_big),
    );
    assert_typed(&resp, 413, ErrorCode::BodyTooLarge);

    // The ack route takes at most 512 bytes; send 4 KiB chunked.
    let mut req = format!(
        "POST /v1/validate/ack HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: {POSTCARD}\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    for _ in 0..4 {
        req.extend_from_slice(b"400\r\n");
        req.extend_from_slice(&[7u8; 0x400]);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    let resp = raw_exchange(server.addr(), &req);
    assert_typed(&resp, 413, ErrorCode::BodyTooLarge);
}

/// 400: garbage, a wrong protocol version, trailing bytes, an empty body.
#[test]
fn malformed_body_is_400() {
    let server = start(ServerConfig::loopback());
    for body in [
        &b"\x01\xff\xff\xff\xff\xff\xff"[..],
        &b"\x09hello"[..],
        &b""[..],
        &[1u8; 300][..],
    ] {
        for route in [
            "/v1/register",
            "/v1/purchase/1",
            "/v1/validate",
            "/v1/refund",
        ] {
            let resp = raw_exchange(server.addr(), &post_request(route, POSTCARD, body));
            assert_typed(&resp, 400, ErrorCode::Malformed);
        }
    }
}

/// 404 for an unknown route, 405 for a known route with another method.
#[test]
fn unknown_route_is_404_and_wrong_method_is_405() {
    let server = start(ServerConfig::loopback());
    let resp = raw_exchange(
        server.addr(),
        b"GET /v2/nothing HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert_typed(&resp, 404, ErrorCode::NotFound);
    let resp = raw_exchange(server.addr(), &post_request("/nope", POSTCARD, b"\x01"));
    assert_typed(&resp, 404, ErrorCode::NotFound);
    let resp = raw_exchange(
        server.addr(),
        b"GET /v1/validate HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert_typed(&resp, 405, ErrorCode::MethodNotAllowed);
}

/// Opens a request whose body never comes: it holds a place among the
/// bodies being received until the body timeout.
fn stalled_request(server: &ServerHandle) -> TcpStream {
    let mut stream = TcpStream::connect(server.addr()).expect("connect");
    stream
        .write_all(
            format!(
                "POST /v1/register HTTP/1.1\r\nHost: t\r\nContent-Type: {POSTCARD}\r\nContent-Length: 100\r\n\r\n"
            )
            .as_bytes(),
        )
        .expect("send head");
    stream
}

fn wait_metric(client: &IssuerClient, line: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    let want = format!("{line}\n");
    while Instant::now() < deadline {
        if client
            .metrics(util::scrape_token())
            .expect("metrics")
            .contains(&want)
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("never {line}");
}

/// 503 with Retry-After once the bodies being received reach their limit
/// (no queue); requests without a body, which need no such place, and
/// /health are still served; places free up when the stalled requests end.
#[test]
fn requests_over_the_receiving_limit_get_503_with_retry_after() {
    let mut config = ServerConfig::loopback();
    config.bodies_receiving_max = 2;
    config.body_timeout_ms = 10_000;
    let server = start(config);
    let no_retry = ClientConfig {
        attempts_max: 1,
        ..ClientConfig::default()
    };
    let client = IssuerClient::new(&server.url(), no_retry).expect("client");
    let first = stalled_request(&server);
    let second = stalled_request(&server);
    wait_metric(&client, "vc_issuer_http_bodies_receiving 2");
    wait_metric(&client, "vc_issuer_http_requests_in_flight 0");

    let started = Instant::now();
    let resp = raw_exchange(
        server.addr(),
        &post_request("/v1/register", POSTCARD, b"\x01"),
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "503 must not wait"
    );
    assert_typed(&resp, 503, ErrorCode::Overloaded);
    assert_eq!(resp.header("retry-after"), Some("1"));
    let e = client
        .http()
        .post_encoded_ack("/v1/register", b"\x01")
        .expect_err("overloaded");
    assert_eq!(e.code(), Some(ErrorCode::Overloaded));
    assert!(e.is_transient());
    client
        .descriptor()
        .expect("a request without a body takes no receiving place");
    client.health().expect("health is served under load");
    assert!(
        client
            .metrics(util::scrape_token())
            .expect("metrics")
            .contains("vc_issuer_http_requests_overloaded_total 2")
    );

    drop(first);
    drop(second);
    wait_metric(&client, "vc_issuer_http_bodies_receiving 0");
    let e = client
        .http()
        .post_encoded_ack("/v1/register", b"\x01")
        .expect_err("malformed");
    assert_eq!(
        e.code(),
        Some(ErrorCode::Malformed),
        "served again once places are free"
    );
}

/// A sender that never finishes its request head is cut off after the head
/// timeout (actix answers 408 and closes).
#[test]
fn slow_head_sender_is_cut_off() {
    let mut config = ServerConfig::loopback();
    config.request_head_timeout_ms = 300;
    let server = start(config);
    let mut stream = TcpStream::connect(server.addr()).expect("connect");
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: t\r\n")
        .expect("partial head");
    let started = Instant::now();
    let bytes = read_all(&mut stream, Duration::from_secs(5));
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(4),
        "connection kept {elapsed:?}"
    );
    assert!(
        elapsed >= Duration::from_millis(200),
        "cut too early: {elapsed:?}"
    );
    if let Some(resp) = parse_response(&bytes) {
        assert_eq!(resp.status, 408);
    }
}

/// A sender whose body stalls gets a typed 408 after the body timeout.
#[test]
fn slow_body_sender_gets_typed_408() {
    let mut config = ServerConfig::loopback();
    config.body_timeout_ms = 300;
    let server = start(config);
    let mut stream = stalled_request(&server);
    stream.write_all(&[1u8; 10]).expect("some of the body");
    let started = Instant::now();
    let bytes = read_all(&mut stream, Duration::from_secs(5));
    assert!(started.elapsed() < Duration::from_secs(4));
    let resp = parse_response(&bytes).expect("an answer");
    assert_typed(&resp, 408, ErrorCode::RequestTimeout);
}

/// A coin status body that is not a `HeldCoinStatusQuery` is 400; a
/// gateway without a simulated bank has no bank routes.
#[test]
fn a_malformed_coin_status_query_is_400_and_absent_bank_routes_404() {
    let server = start(ServerConfig::loopback());
    let client = util::operator_client(&server.url());
    // Without a simulated bank, its operator routes do not exist.
    let account = ledger::BankAccount::new("acct-nobody").expect("account");
    let e = client.bank_balance(&account).expect_err("no bank here");
    assert_eq!(e.code(), Some(ErrorCode::NotFound));
    let resp = raw_exchange(
        server.addr(),
        &post_request("/v1/coin-status", POSTCARD, b"\x01\xff"),
    );
    assert_typed(&resp, 400, ErrorCode::Malformed);
}

/// A client told 503 waits the Retry-After and sends the same request
/// again; it gets through once the stalled request that held the only
/// receiving place is cut off by the body timeout.
#[test]
fn a_client_retries_a_503_after_retry_after_and_gets_through() {
    let mut config = ServerConfig::loopback();
    config.bodies_receiving_max = 1;
    config.body_timeout_ms = 300;
    let server = start(config);
    let client = util::operator_client(&server.url());
    let _stalled = stalled_request(&server);
    wait_metric(&client, "vc_issuer_http_bodies_receiving 1");
    let started = Instant::now();
    let e = client
        .http()
        .post_encoded_ack("/v1/register", b"\x01")
        .expect_err("through on a retry, and refused as malformed");
    assert_eq!(e.code(), Some(ErrorCode::Malformed));
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "retried before the Retry-After: {:?}",
        started.elapsed()
    );
    let metrics = client.metrics(util::scrape_token()).expect("metrics");
    assert!(
        metrics.contains("vc_issuer_http_requests_total{route=\"/v1/register\",status=\"503\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("vc_issuer_http_requests_total{route=\"/v1/register\",status=\"400\"} 1"),
        "{metrics}"
    );
}
