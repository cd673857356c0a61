//! The issuer's forwarder as the user index's client: it believes the
//! index's acknowledgement only about where to send next, and never past
//! the records its log holds. An index that answers `u64::MAX`, or a seq
//! far past the log's head, gets the same records again; the forwarder
//! keeps running and delivers once the index answers honestly; an outbox
//! already past the head starts again from the first record.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{HttpRequest, web};
use client::ServerConfig;
use client::body::{BodyLimits, message_response, read_message};
use client::error::ApiError;
use client::media::POSTCARD;
use client::server::post_resource;
use ledger::{EventStore, Seq};
use user_index::wire::{DeliveryAck, RecordDelivery};
use vc_gateway::index::{IndexClient, IndexForwarder};

use crate::util;

/// What the fake index saw (the first seq of each delivery) and what it
/// answers next (a lie, then the truth).
#[derive(Default)]
struct FakeIndex {
    first_seqs: Vec<u64>,
    lies: Vec<Seq>,
}

async fn records(
    req: HttpRequest,
    payload: web::Payload,
    fake: web::Data<Arc<Mutex<FakeIndex>>>,
    limits: web::Data<BodyLimits>,
) -> Result<actix_web::HttpResponse, ApiError> {
    let delivery: RecordDelivery = read_message(&req, payload, **limits).await?;
    let records = delivery.records.as_slice();
    let (first, last) = (
        records.first().map_or(0, |r| r.seq.0),
        records.last().map_or(0, |r| r.seq.0),
    );
    let mut fake = fake.lock().expect("fake index");
    fake.first_seqs.push(first);
    let applied = if fake.lies.is_empty() {
        Seq(last)
    } else {
        fake.lies.remove(0)
    };
    Ok(message_response(&DeliveryAck { applied }, POSTCARD))
}

#[test]
fn an_index_acknowledging_records_past_the_logs_head_gets_them_again() {
    let issuer = util::issuer();
    let head = issuer.core.store().head().expect("head").last_seq;
    assert!(head.0 >= 1, "the shared issuer's log holds its first epoch");
    let (fake, server) = fake_index(vec![Seq(u64::MAX), Seq(head.0 + 1_000_000)]);
    let dir = tempfile::tempdir().expect("tempdir");
    let forwarder = IndexForwarder::start(
        issuer.core.clone(),
        IndexClient::new(&server.url(), util::pinned()).expect("index client"),
        &dir.path().join("index-outbox.redb"),
    )
    .expect("the forwarder starts");
    // Two lies, each refused after a backoff, then the truth: the same
    // first record three times, and nothing after the truth is sent again
    // from the start.
    let deadline = Instant::now() + Duration::from_secs(30);
    while fake.lock().expect("fake index").first_seqs.len() < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    forwarder.stop();
    server.stop().expect("stopped");
    let seen = fake.lock().expect("fake index").first_seqs.clone();
    assert!(
        seen.len() >= 3,
        "the forwarder stopped delivering after a lying acknowledgement: {seen:?}"
    );
    assert_eq!(&seen[..3], &[1, 1, 1], "{seen:?}");
    assert!(
        seen[3..].iter().all(|&first| first > 1),
        "after the honest answer the forwarder goes on from it: {seen:?}"
    );
}

/// Serves a fake index answering `lies` first, then the truth.
fn fake_index(lies: Vec<Seq>) -> (Arc<Mutex<FakeIndex>>, client::ServerHandle) {
    let fake = Arc::new(Mutex::new(FakeIndex {
        first_seqs: Vec::new(),
        lies,
    }));
    let shared = web::Data::new(fake.clone());
    let server = client::server::start(
        &util::tls_config(ServerConfig::loopback()),
        "vc_fake_index",
        None,
        move |cfg| {
            cfg.app_data(shared.clone())
                .service(post_resource("/v1/index/records", records));
        },
    )
    .expect("the fake index serves");
    (fake, server)
}

#[test]
fn an_outbox_past_the_logs_head_starts_again_from_the_first_record() {
    let issuer = util::issuer();
    let dir = tempfile::tempdir().expect("tempdir");
    let outbox_path = dir.path().join("index-outbox.redb");
    user_index::Outbox::open(&outbox_path)
        .expect("outbox")
        .set_delivered(Seq(u64::MAX))
        .expect("set");
    let (fake, server) = fake_index(Vec::new());
    let forwarder = IndexForwarder::start(
        issuer.core.clone(),
        IndexClient::new(&server.url(), util::pinned()).expect("index client"),
        &outbox_path,
    )
    .expect("the forwarder starts");
    let deadline = Instant::now() + Duration::from_secs(20);
    while fake.lock().expect("fake index").first_seqs.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    forwarder.stop();
    server.stop().expect("stopped");
    let seen = fake.lock().expect("fake index").first_seqs.clone();
    assert_eq!(seen.first(), Some(&1), "{seen:?}");
}
