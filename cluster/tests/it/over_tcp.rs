//! The sequencer protocol over loopback TCP, in one process: a validator's
//! commits become durable through the listener; a node without the right
//! key gets nothing; a validator cut off from the sequencer is told
//! "unavailable" (its 503), never a guess.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::sync::Arc;

use ledger::MemoryStore;
use vc_cluster::testkit::{issue, pay};
use vc_cluster::{
    ClientConfig, CoinState, CommitError, FencingEpoch, NodeKey, NodeKeys, NodeName, Refusal,
    RequestId, Sequencer, SequencerClient, serve,
};

fn node(name: &str) -> NodeName {
    NodeName::parse(name).unwrap()
}

fn start() -> (
    vc_cluster::SequencerServer,
    NodeKey,
    Arc<Sequencer<MemoryStore>>,
) {
    let key = NodeKey::random().unwrap();
    let mut keys = NodeKeys::default();
    keys.insert(node("v1"), key.clone());
    let sequencer = Arc::new(
        Sequencer::rebuild(Arc::new(MemoryStore::new()), 4, FencingEpoch(1), None).unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let server = serve(listener, Arc::clone(&sequencer), Arc::new(keys)).unwrap();
    (server, key, sequencer)
}

#[test]
fn commits_are_durable_once_and_retries_get_the_logged_outcome() {
    let (server, key, sequencer) = start();
    let client = SequencerClient::start(ClientConfig {
        node: node("v1"),
        key,
        sequencers: vec![server.addr()],
    });
    let ([request, settle], coins) = issue(RequestId(1), 4);
    client.send_commit(request).unwrap();
    let bought = client.send_commit(settle).unwrap();
    assert!(!bought.earlier);
    let (payment, _) = pay(RequestId(2), &coins);
    let paid = client.send_commit(payment.clone()).unwrap();
    let retried = client.send_commit(payment).unwrap();
    assert_eq!(retried.first_seq, paid.first_seq);
    assert!(retried.earlier);
    let (mut double, _) = pay(RequestId(3), &coins);
    double.tx = ledger::TxId::random();
    assert!(matches!(
        client.send_commit(double),
        Err(CommitError::Refused(Refusal::NotUnspent { .. }))
    ));
    assert_eq!(sequencer.n_durable(), 3);
    assert_eq!(client.seen_epoch(), FencingEpoch(1));
    client.stop();
    server.stop();
}

/// A validator reads a payment's coins from the sequencer before it
/// decides: unspent bodies, then, once paid, not unspent.
#[test]
fn a_validator_looks_coins_up_over_the_connection() {
    let (server, key, _sequencer) = start();
    let client = SequencerClient::start(ClientConfig {
        node: node("v1"),
        key,
        sequencers: vec![server.addr()],
    });
    let ([request, settle], coins) = issue(RequestId(1), 2);
    client.send_commit(request).unwrap();
    client.send_commit(settle).unwrap();
    let ids: Vec<_> = coins.iter().map(|c| c.id).collect();
    assert_eq!(
        client.lookup(ids.clone()).unwrap(),
        coins
            .iter()
            .map(|c| CoinState::Unspent(*c))
            .collect::<Vec<_>>()
    );
    let (payment, _) = pay(RequestId(2), &coins);
    client.send_commit(payment).unwrap();
    assert_eq!(
        client.lookup(ids).unwrap(),
        vec![CoinState::NotUnspent, CoinState::NotUnspent]
    );
    client.stop();
    server.stop();
}

#[test]
fn a_node_with_a_wrong_key_or_name_gets_nothing() {
    let (server, _key, sequencer) = start();
    for (name, key) in [
        ("v1", NodeKey::random().unwrap()),
        ("v9", NodeKey::random().unwrap()),
    ] {
        let stranger = SequencerClient::start(ClientConfig {
            node: node(name),
            key,
            sequencers: vec![server.addr()],
        });
        let ([purchase, _], _) = issue(RequestId(1), 1);
        assert!(matches!(
            stranger.send_commit(purchase),
            Err(CommitError::Unavailable { .. })
        ));
        stranger.stop();
    }
    assert_eq!(sequencer.n_durable(), 0);
    server.stop();
}

#[test]
fn a_validator_cut_off_from_the_sequencer_is_told_unavailable() {
    // Nothing listens here.
    let addr = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let client = SequencerClient::start(ClientConfig {
        node: node("v1"),
        key: NodeKey::random().unwrap(),
        sequencers: vec![addr],
    });
    let ([purchase, _], _) = issue(RequestId(1), 1);
    assert_eq!(
        client.send_commit(purchase),
        Err(CommitError::Unavailable {
            retry_after_secs: vc_cluster::constants::RETRY_AFTER_SECS
        })
    );
    assert!(!client.is_connected());
    client.stop();
}

#[test]
fn garbage_from_a_stranger_closes_its_connection_and_nothing_else() {
    use std::io::{Read, Write};
    let (server, key, sequencer) = start();
    for garbage in [
        &u32::MAX.to_be_bytes()[..],
        &[0, 0, 0, 3, 9, 9, 9][..],
        &[0, 0, 8, 0][..],
    ] {
        let mut raw = std::net::TcpStream::connect(server.addr()).unwrap();
        raw.write_all(garbage).unwrap();
        raw.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let mut buf = [0u8; 64];
        // Closed without an answer (or reset).
        assert!(matches!(raw.read(&mut buf), Ok(0) | Err(_)));
    }
    let client = SequencerClient::start(ClientConfig {
        node: node("v1"),
        key,
        sequencers: vec![server.addr()],
    });
    let ([purchase, _], _) = issue(RequestId(1), 1);
    assert!(client.send_commit(purchase).is_ok());
    assert_eq!(sequencer.n_durable(), 1);
    client.stop();
    server.stop();
}

// Anyone can connect to the sequencer, and each connection holds one of
// its few slots: a stranger trickling its Hello a byte at a time (each
// byte within the read timeout) is dropped at the handshake's deadline,
// not kept as long as it cares to trickle.
#[test]
fn a_hello_trickled_a_byte_at_a_time_is_cut_off_at_the_handshake_deadline() {
    use std::io::{ErrorKind, Read, Write};
    use std::time::{Duration, Instant};
    use vc_cluster::constants::HANDSHAKE_MS_MAX;

    let (server, _key, _sequencer) = start();
    let mut stream = std::net::TcpStream::connect(server.addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    // A length prefix of 1,000 bytes: well within the Hello's bound.
    let started = Instant::now();
    let mut bytes = 1000u32
        .to_be_bytes()
        .to_vec()
        .into_iter()
        .chain(std::iter::repeat(0u8));
    let closed_after = loop {
        let elapsed = started.elapsed();
        assert!(
            elapsed < Duration::from_millis(3 * HANDSHAKE_MS_MAX),
            "the sequencer still holds the connection after {elapsed:?}"
        );
        if stream.write_all(&[bytes.next().unwrap()]).is_err() {
            break elapsed;
        }
        let mut buf = [0u8; 64];
        match stream.read(&mut buf) {
            // Closed (or reset) by the sequencer.
            Ok(0) => break elapsed,
            Ok(_) => panic!("an answer to half a Hello"),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break elapsed,
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    assert!(closed_after >= Duration::from_millis(HANDSHAKE_MS_MAX / 2));
    server.stop();
}
