//! The issuer publishes its latest signed log head at `GET /v1/log/head`:
//! the anchor an auditor holds the log to (`audit --expect-head URL`), so a
//! log cut behind the issuer's latest signature is evident.

use std::sync::Arc;
use std::time::Duration;

use actors::IssuerConfig;
use actors::SimulatedBank;
use client::ServerConfig;
use ledger::{Checkpoint, Event, EventStore, RedbStore, Sharing};
use vc_gateway::{IssuerRuntime, serve_issuer_with_bank};

#[test]
fn the_gateway_serves_the_signed_head_the_log_ends_with() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bank =
        Arc::new(SimulatedBank::open(dir.path().join("bank.redb"), Duration::ZERO).expect("bank"));
    let mut config = IssuerConfig::new(dir.path().join("issuer"));
    config.n_shards = 2;
    let runtime = IssuerRuntime::start(config, bank.clone()).expect("issuer starts");
    let key = runtime.issuer().public_key();
    let gateway = serve_issuer_with_bank(&ServerConfig::loopback(), runtime.issuer().clone(), bank)
        .expect("gateway");

    // Opening the first key epoch at start is signed at once.
    let mut response = ureq::get(format!("{}/v1/log/head", gateway.url()))
        .call()
        .expect("GET /v1/log/head");
    let text = response.body_mut().read_to_string().expect("body");
    let head = Checkpoint::parse_published_head(&text).expect("a signed head");
    assert!(protocol::checkpoint::verify_checkpoint(&key, &head));

    gateway.stop().expect("gateway stops");
    runtime.try_stop().expect("issuer stops");
    // The log holds that head and the checkpoint of it right after.
    let store = RedbStore::open_read_only(dir.path().join("issuer/log.redb"), Sharing::default())
        .expect("log");
    let records = store.read(head.seq, 2).expect("read");
    assert_eq!(records[0].hash, head.hash);
    assert!(matches!(
        &records[1].record.event,
        Event::Checkpoint(c) if c.seq == head.seq && c.hash == head.hash
    ));
}
