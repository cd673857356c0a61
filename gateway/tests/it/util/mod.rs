//! Shared helpers of the gateway's loopback tests: one issuer per test
//! binary (RSA key generation is slow) with a simulated bank that settles at
//! once, participant keys, and a raw HTTP/1.1 exchange over a TCP socket for
//! the tests that must misbehave on purpose.

#![allow(dead_code, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use actors::SimulatedBank;
use actors::{Issuer, IssuerConfig, IssuerCore};
use protocol::crypto::SecretKey;
use vc_gateway::IssuerRuntime;

pub struct TestIssuer {
    pub runtime: IssuerRuntime,
    pub core: Arc<IssuerCore>,
    pub bank: Arc<SimulatedBank>,
    _dir: tempfile::TempDir,
}

impl TestIssuer {
    pub fn handle(&self) -> Issuer {
        self.runtime.issuer().clone()
    }
}

/// The issuer of this test binary.
pub fn issuer() -> &'static TestIssuer {
    static ISSUER: OnceLock<TestIssuer> = OnceLock::new();
    ISSUER.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let bank = Arc::new(
            SimulatedBank::open(dir.path().join("bank.redb"), Duration::ZERO).expect("bank"),
        );
        let mut config = IssuerConfig::new(dir.path().join("issuer"));
        config.n_shards = 4;
        let runtime = IssuerRuntime::start(config, bank.clone()).expect("issuer starts");
        TestIssuer {
            core: runtime.issuer().core().clone(),
            runtime,
            bank,
            _dir: dir,
        }
    })
}

/// The server operator requests to this binary's issuer name: its key's
/// fingerprint.
pub fn issuer_audience() -> Option<client::KeyFingerprint> {
    Some(client::KeyFingerprint::of(&issuer().handle().public_key()))
}

/// Serves this binary's issuer, with its bank, over HTTP at `config`
/// (plus this binary's operator key and scrape token).
pub fn serve_shared_issuer(config: &client::ServerConfig) -> client::ServerHandle {
    vc_gateway::serve_issuer_with_bank(
        &operator_config(config.clone()),
        issuer().handle(),
        issuer().bank.clone(),
    )
    .expect("gateway serves the shared issuer")
}

/// A client of the issuer `gateway` serves, with the default retries,
/// signing operator requests with this binary's operator key (over TLS with
/// this binary's authority pinned when the gateway speaks TLS).
pub fn client_of(gateway: &client::ServerHandle) -> client::IssuerClient {
    if gateway.is_tls() {
        client::IssuerClient::new(&gateway.url(), pinned())
            .expect("client")
            .with_operator(operator_key().clone())
    } else {
        operator_client(&gateway.url())
    }
}

/// This test binary's TLS: an authority, the certificate it issued for
/// 127.0.0.1 to the servers, and a rustls client trusting only it.
pub struct TestTls {
    pub ca: client::IssuerCa,
    pub identity: client::TlsIdentity,
    client: Arc<rustls::ClientConfig>,
}

pub fn test_tls() -> &'static TestTls {
    static TLS: OnceLock<TestTls> = OnceLock::new();
    TLS.get_or_init(|| {
        let authority = client::TlsAuthority::generate().expect("authority");
        let identity = authority
            .issue(&["127.0.0.1".to_owned(), "localhost".to_owned()])
            .expect("issued")
            .identity()
            .expect("identity");
        let ca = authority.ca().expect("ca");
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(rustls::pki_types::CertificateDer::from(ca.der().to_vec()))
            .expect("root");
        let client = Arc::new(
            rustls::ClientConfig::builder_with_provider(client::tls::crypto_provider())
                .with_safe_default_protocol_versions()
                .expect("versions")
                .with_root_certificates(roots)
                .with_no_client_auth(),
        );
        TestTls {
            ca,
            identity,
            client,
        }
    })
}

/// `config`, serving HTTPS with this binary's certificate.
pub fn tls_config(mut config: client::ServerConfig) -> client::ServerConfig {
    config.tls = Some(test_tls().identity.clone());
    config
}

/// A client configuration pinning this binary's authority.
pub fn pinned() -> client::ClientConfig {
    client::ClientConfig::pinned(test_tls().ca.clone())
}

/// A raw TLS connection to `addr`, handshake done.
pub type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

pub fn tls_connect(addr: SocketAddr) -> Tls {
    let tcp = TcpStream::connect(addr).expect("connect");
    let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
    let connection =
        rustls::ClientConnection::new(test_tls().client.clone(), name).expect("tls client");
    let mut tls = rustls::StreamOwned::new(connection, tcp);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock).expect("TLS handshake");
    }
    tls
}

/// Reads until the server closes or `timeout` passes, over TLS.
pub fn read_all_tls(stream: &mut Tls, timeout: Duration) -> Vec<u8> {
    stream
        .sock
        .set_read_timeout(Some(timeout))
        .expect("timeout");
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// Sends `request` as is over TLS and reads the whole answer.
pub fn raw_exchange_tls(addr: SocketAddr, request: &[u8]) -> RawResponse {
    let mut stream = tls_connect(addr);
    stream.write_all(request).expect("send");
    let bytes = read_all_tls(&mut stream, Duration::from_secs(10));
    parse_response(&bytes).unwrap_or_else(|| {
        panic!(
            "no HTTP response: {:?}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
        )
    })
}

/// The operator key of this test binary.
pub fn operator_key() -> &'static client::OperatorKey {
    static KEY: OnceLock<client::OperatorKey> = OnceLock::new();
    KEY.get_or_init(|| client::OperatorKey::generate().expect("operator keygen"))
}

/// The `/metrics` scrape token of this test binary's servers.
pub fn scrape_token() -> &'static client::ScrapeToken {
    static TOKEN: OnceLock<client::ScrapeToken> = OnceLock::new();
    TOKEN.get_or_init(client::ScrapeToken::generate)
}

/// `config`, accepting this binary's operator key (nonces in memory) and
/// scrape token.
pub fn operator_config(mut config: client::ServerConfig) -> client::ServerConfig {
    config.operators = Arc::new(
        client::OperatorAuth::new(
            vec![("test operator".into(), operator_key().public())],
            client::NonceStore::Memory,
        )
        .expect("operator keys"),
    );
    config.metrics_token = Some(scrape_token().clone());
    config
}

/// A client of the issuer at `url` that signs operator requests.
pub fn operator_client(url: &str) -> client::IssuerClient {
    client::IssuerClient::new(url, client::ClientConfig::default())
        .expect("client")
        .with_operator(operator_key().clone())
}

/// Participant keys of the issuers' default suite, generated once per
/// test binary.
pub fn key(n: usize) -> &'static SecretKey {
    static KEYS: OnceLock<Vec<SecretKey>> = OnceLock::new();
    &KEYS.get_or_init(|| {
        let defaults = IssuerConfig::new("unused");
        (0..3)
            .map(|_| SecretKey::generate_for(defaults.suite, defaults.rsa_bits).expect("keygen"))
            .collect()
    })[n]
}

/// A response read off a raw socket.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Parses one HTTP/1.1 response (the server closes after it: the requests
/// say `Connection: close`).
pub fn parse_response(bytes: &[u8]) -> Option<RawResponse> {
    let head_end = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&bytes[..head_end]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut body = bytes[head_end + 4..].to_vec();
    if let Some(len) = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
    {
        body.truncate(len);
    }
    Some(RawResponse {
        status,
        headers,
        body,
    })
}

/// Reads until the server closes or `timeout` passes.
pub fn read_all(stream: &mut TcpStream, timeout: Duration) -> Vec<u8> {
    stream.set_read_timeout(Some(timeout)).expect("timeout");
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// Sends `request` as is and reads the whole answer.
pub fn raw_exchange(addr: SocketAddr, request: &[u8]) -> RawResponse {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.write_all(request).expect("send");
    let bytes = read_all(&mut stream, Duration::from_secs(10));
    parse_response(&bytes).unwrap_or_else(|| {
        panic!(
            "no HTTP response: {:?}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
        )
    })
}

/// A POST of `body` with the given content type.
pub fn post_request(path: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    req
}

/// A fresh purse for `name` with key `key_idx`, knowing the issuer as its
/// descriptor (read over HTTP from `client`) says.
/// The passphrase of every test purse.
pub fn passphrase() -> purse::Passphrase {
    purse::Passphrase::new("correct horse battery staple").expect("passphrase")
}

/// A key for a new test purse, at the cheap test cost.
pub fn purse_key() -> purse::PurseKey {
    purse::PurseKey::derive_new(&passphrase(), purse::KdfParams::INSECURE_FAST).expect("key")
}

pub fn purse_for(
    client: &client::IssuerClient,
    name: &str,
    key_idx: usize,
    gateway_url: &str,
    dir: &std::path::Path,
) -> Arc<purse::Purse> {
    let descriptor = client.descriptor().expect("descriptor");
    let id = ledger::ParticipantId::new(name).expect("id");
    let profile =
        purse::PurseProfile::from_secret_key(id, descriptor.suite, key(key_idx)).expect("profile");
    Arc::new(
        purse::Purse::create(
            dir.join(format!("{name}.purse")),
            &profile,
            Some(&purse::IssuerInfo {
                issuer: descriptor.id_i,
                public_key: descriptor.public_key,
                gateway_url: gateway_url.to_owned(),
            }),
            purse_key(),
        )
        .expect("purse"),
    )
}

/// Registers and enrolls the wallet's owner, approved by the operator, with
/// a bank account of 1,000.00 opened through the operator route.
pub fn join_wallet(
    wallet: &client::Wallet,
    client: &client::IssuerClient,
    roles: &[ledger::Role],
) -> ledger::BankAccount {
    let account =
        ledger::BankAccount::new(format!("acct-{}", wallet.id().as_str())).expect("account");
    client
        .open_bank_account(&account, ledger::Amount::from_minor(100_000))
        .expect("bank account, through the operator route");
    wallet.register().expect("registered");
    for role in roles {
        wallet
            .request_enrollment(*role, account.clone())
            .expect("enrollment");
        client
            .approve_enrollment(wallet.id(), *role)
            .expect("approved");
    }
    account
}

/// A coin spec of `(count, value in minor units)` lines.
pub fn spec(lines: &[(u32, u64)]) -> ledger::CoinSpec {
    ledger::CoinSpec::new(
        lines
            .iter()
            .map(|&(count, minor)| ledger::Denomination {
                count,
                value: ledger::Amount::from_minor(minor),
            })
            .collect(),
    )
    .expect("spec")
}

/// A merchant `name` (RSA key `key_idx`), registered and enrolled through
/// `client` with its purse naming the gateway at `gateway_url`, serving
/// [`tea_shop`]: its purse (kept to read balances) and its server.
pub fn enrolled_tea_shop(
    client: &client::IssuerClient,
    name: &str,
    key_idx: usize,
    gateway_url: &str,
    dir: &std::path::Path,
) -> (Arc<purse::Purse>, client::ServerHandle) {
    let purse = purse_for(client, name, key_idx, gateway_url, dir);
    let wallet =
        client::Wallet::open(purse.clone(), client::ClientConfig::default()).expect("wallet");
    join_wallet(&wallet, client, &[ledger::Role::Merchant]);
    let shop = tea_shop(purse.clone());
    (purse, shop)
}

/// A shop on loopback selling tea at 2.50, collecting by refresh into `purse`.
pub fn tea_shop(purse: Arc<purse::Purse>) -> client::ServerHandle {
    use client::{CatalogItem, ClientConfig, CollectOption, MerchantConfig, ServerConfig};
    client::serve_merchant(
        &MerchantConfig {
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
        },
        purse,
    )
    .expect("merchant server")
}
