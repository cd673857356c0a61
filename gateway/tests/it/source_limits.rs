//! Each limit per source address, one at a time, on a server whose shares
//! are tiny: the address over its share is refused with the typed error
//! (503 with the connection closed, 429 with Retry-After, 503), while
//! another address is served as if nothing happened.

#![allow(clippy::expect_used)]

use crate::util;

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use client::{ErrorBody, ErrorCode, ServerConfig, ServerHandle, SourceLimits};
use protocol::wire::decode;
use vc_gateway::serve_issuer;

use util::{issuer, parse_response, read_all};

fn source(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

fn connect_from(from: IpAddr, to: SocketAddr) -> TcpStream {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.bind(SocketAddr::new(from, 0)).expect("bind");
        let stream = socket.connect(to).await.expect("connect");
        let stream = stream.into_std().expect("std");
        stream.set_nonblocking(false).expect("blocking");
        stream
    })
}

fn start(limits: SourceLimits) -> ServerHandle {
    let mut config = ServerConfig::loopback();
    config.per_source = limits;
    config.metrics_token = Some(util::scrape_token().clone());
    serve_issuer(&config, issuer().handle()).expect("gateway")
}

/// Polls `/health` from `from` (a new connection each time) until it is
/// answered 200; panics after five seconds.
fn wait_until_served(from: IpAddr, to: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut stream = connect_from(from, to);
        if get(&mut stream, "/health", true).0 == 200 {
            return;
        }
        assert!(Instant::now() < deadline, "{from} was never served again");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Polls the server's gauge of bodies still arriving until it reaches
/// `n`; panics after five seconds.
fn wait_bodies_receiving(gateway: &ServerHandle, n: usize) {
    let client = util::client_of(gateway);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let receiving: usize = client
            .metrics(util::scrape_token())
            .expect("metrics")
            .lines()
            .find_map(|l| l.strip_prefix("vc_issuer_http_bodies_receiving "))
            .and_then(|v| v.trim().parse().ok())
            .expect("the receiving gauge");
        if receiving >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "only {receiving} of {n} bodies arriving"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn tiny() -> SourceLimits {
    SourceLimits {
        connections_max: 1_000,
        bodies_receiving_max: 1_000,
        requests_in_flight_max: 1_000,
        requests_per_sec: 1_000.0,
        requests_burst: 1_000.0,
    }
}

/// One keep-alive GET on `stream`; the status, the code of a refusal, and
/// whether the server said it closes.
fn get(stream: &mut TcpStream, path: &str, close: bool) -> (u16, Option<ErrorCode>, bool) {
    let connection = if close { "close" } else { "keep-alive" };
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: {connection}\r\n\r\n")
                .as_bytes(),
        )
        .expect("send");
    let bytes = if close {
        read_all(stream, Duration::from_secs(5))
    } else {
        // Read one answer: head, then its Content-Length.
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = stream.read(&mut buf).expect("read");
            out.extend_from_slice(&buf[..n]);
            if n == 0
                || parse_response(&out).is_some_and(|r| {
                    let want = r
                        .header("content-length")
                        .and_then(|v| v.parse::<usize>().ok())
                        .unwrap_or(0);
                    r.body.len() >= want
                })
            {
                break;
            }
        }
        out
    };
    let resp = parse_response(&bytes).expect("an HTTP answer");
    let code = decode::<ErrorBody>(&resp.body).ok().map(|b| b.code);
    let closes = resp
        .header("connection")
        .is_some_and(|v| v.eq_ignore_ascii_case("close"));
    (resp.status, code, closes)
}

#[test]
fn connections_over_the_share_of_an_address_are_refused_and_closed() {
    let gateway = start(SourceLimits {
        connections_max: 3,
        ..tiny()
    });
    let mut held: Vec<TcpStream> = (0..3)
        .map(|_| connect_from(source(2), gateway.addr()))
        .collect();
    for stream in &mut held {
        assert_eq!(get(stream, "/health", false).0, 200);
    }
    let mut fourth = connect_from(source(2), gateway.addr());
    let (status, code, closes) = get(&mut fourth, "/health", false);
    assert_eq!((status, code), (503, Some(ErrorCode::Overloaded)));
    assert!(closes, "the connection over the share is closed");
    let mut other = connect_from(source(3), gateway.addr());
    assert_eq!(get(&mut other, "/health", true).0, 200, "another address");
    drop(held);
    // Once the address's connections close, it has its share back.
    wait_until_served(source(2), gateway.addr());
}

#[test]
fn an_address_asking_faster_than_its_rate_gets_429_with_retry_after() {
    let gateway = start(SourceLimits {
        requests_per_sec: 1.0,
        requests_burst: 3.0,
        ..tiny()
    });
    let mut stream = connect_from(source(4), gateway.addr());
    for _ in 0..3 {
        assert_eq!(get(&mut stream, "/v1/issuer", false).0, 200);
    }
    let mut stream = connect_from(source(4), gateway.addr());
    let raw = {
        stream
            .write_all(b"GET /v1/issuer HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .expect("send");
        read_all(&mut stream, Duration::from_secs(5))
    };
    let resp = parse_response(&raw).expect("answer");
    assert_eq!(resp.status, 429);
    assert_eq!(resp.header("retry-after"), Some("1"));
    assert_eq!(
        decode::<ErrorBody>(&resp.body).expect("typed").code,
        ErrorCode::RateLimited
    );
    let mut other = connect_from(source(5), gateway.addr());
    assert_eq!(
        get(&mut other, "/v1/issuer", true).0,
        200,
        "another address"
    );
}

#[test]
fn bodies_still_arriving_over_the_share_of_an_address_are_refused() {
    let gateway = start(SourceLimits {
        bodies_receiving_max: 2,
        ..tiny()
    });
    let head = "POST /v1/register HTTP/1.1\r\nHost: t\r\nContent-Type: application/vnd.varietycash+postcard\r\nContent-Length: 100\r\nConnection: close\r\n\r\n";
    // Two bodies held back from 127.0.0.6: its whole share.
    let mut held: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut s = connect_from(source(6), gateway.addr());
            s.write_all(head.as_bytes()).expect("head");
            s
        })
        .collect();
    wait_bodies_receiving(&gateway, 2);
    let mut third = connect_from(source(6), gateway.addr());
    third.write_all(head.as_bytes()).expect("head");
    let resp = parse_response(&read_all(&mut third, Duration::from_secs(5))).expect("answer");
    assert_eq!(resp.status, 503);
    assert_eq!(
        decode::<ErrorBody>(&resp.body).expect("typed").code,
        ErrorCode::Overloaded
    );
    // Another address sends its (bad) body and is answered on its merits.
    let mut other = connect_from(source(7), gateway.addr());
    other.write_all(head.as_bytes()).expect("head");
    other.write_all(&[0u8; 100]).expect("body");
    let resp = parse_response(&read_all(&mut other, Duration::from_secs(5))).expect("answer");
    assert_eq!(resp.status, 400, "read and judged, not refused for room");
    for s in &mut held {
        let _ = s.write_all(&[0u8; 100]);
    }
}
