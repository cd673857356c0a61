//! A refund is idempotent on the client side too (`docs/protocol.md`, "Refund"),
//! with the real binary: alice's `purse refund` reaches the issuer, which
//! commits it, but the answer never comes back (a connection cut after the
//! request went through). She runs `purse refund` again, then `purse
//! resume`. The rerun finishes the journaled refund; it must not start a
//! second one, which would revoke the first one's replacements, so that
//! the first one's answer, stored by `resume`, would count dead coins as
//! money (her balance would show twice her value).

use crate::util;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use util::process::{alice_holding_4_x_2_50, ok, run, serve_new_issuer, terminate};

/// A TCP relay to `upstream` that passes every request on and drops the
/// answers once the TLS handshake is done: the server acts, the client
/// never hears, and its connection is cut.
fn relay_that_drops_answers(upstream: u16) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(mut client) = client else { continue };
            let Ok(mut server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                continue;
            };
            let (Ok(mut from_client), Ok(mut to_server)) = (client.try_clone(), server.try_clone())
            else {
                continue;
            };
            // How many times the client has written: its hello, then its
            // handshake's end with the request.
            let client_writes = Arc::new(AtomicUsize::new(0));
            let counter = client_writes.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 16 * 1024];
                while let Ok(n) = from_client.read(&mut buf) {
                    if n == 0 || to_server.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    counter.fetch_add(1, Ordering::SeqCst);
                }
            });
            let mut buf = [0u8; 16 * 1024];
            let mut cut_at = None;
            let _ = server.set_read_timeout(Some(Duration::from_millis(200)));
            loop {
                match server.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) if client_writes.load(Ordering::SeqCst) < 2 => {
                        if client.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    Ok(_) => {
                        cut_at.get_or_insert_with(Instant::now);
                    }
                    Err(_) => {}
                }
                // Long enough for the issuer to have answered the request.
                if cut_at.is_some_and(|t: Instant| t.elapsed() > Duration::from_millis(1500)) {
                    break;
                }
            }
            let _ = client.shutdown(Shutdown::Both);
            let _ = server.shutdown(Shutdown::Both);
        }
    });
    port
}

fn balance(dir: &std::path::Path, issuer_url: &str) -> String {
    ok(
        dir,
        &[
            "purse",
            "balance",
            "--purse",
            "alice.purse",
            "--issuer",
            issuer_url,
        ],
    )
}

#[test]
fn a_refund_run_again_after_its_answer_was_lost_refunds_once() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let (issuer, ip) = serve_new_issuer(dir);
    let issuer_url = format!("https://127.0.0.1:{ip}");
    alice_holding_4_x_2_50(dir, &issuer_url);
    assert!(balance(dir, &issuer_url).starts_with("available 10.00"));

    let relay = relay_that_drops_answers(ip);
    let cut = run(
        dir,
        &[
            "purse",
            "refund",
            "--purse",
            "alice.purse",
            "--issuer",
            &format!("https://127.0.0.1:{relay}"),
        ],
    );
    assert!(
        !cut.status.success(),
        "the answer was not cut: {}",
        String::from_utf8_lossy(&cut.stdout)
    );

    let again = ok(
        dir,
        &[
            "purse",
            "refund",
            "--purse",
            "alice.purse",
            "--issuer",
            &issuer_url,
        ],
    );
    assert!(again.contains("4 coin(s) revoked, 10.00 back"), "{again}");
    ok(
        dir,
        &[
            "purse",
            "resume",
            "--purse",
            "alice.purse",
            "--issuer",
            &issuer_url,
        ],
    );
    let shown = balance(dir, &issuer_url);
    assert!(
        shown.starts_with("available 10.00"),
        "the refund counted twice: {shown}"
    );
    terminate(issuer);
}
