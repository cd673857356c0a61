//! Signed checkpoints of the log: the issuer appends `S_I(seq, hash)` over
//! the record just before it, so that an auditor holding only the issuer's
//! public key can tell a rewritten history from the real one even if the
//! forger recomputed every hash after the change, and can require every
//! record to be covered by a signature.
//!
//! The checkpoint is built on the log writer's thread, between two appends
//! ([`ledger::Sealing`]), so it always vouches for the record just before
//! it. The writer seals every [`LOG_CHECKPOINT_EVERY_RECORDS`] records by
//! itself; the housekeeper asks every [`LOG_CHECKPOINT_EVERY_MS`]; every
//! operator action asks once it is committed ([`IssuerCore::seal_log`]);
//! and a clean shutdown (the core dropped, not crashed) seals last.
//!
//! Each seal also publishes the signed head (seq, hash, signature) in the
//! file [`SIGNED_HEAD_FILE`] of the issuer's directory (written beside and
//! renamed, so a reader sees a whole one), which the gateway serves: an
//! auditor given it (`audit --expect-head`) notices a log cut behind it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ledger::{Batch, Checkpoint, Event, Head, Sealing, Seq, TxId};
use protocol::crypto::SecretKey;

use super::core::{IssuerCore, IssuerError};
use ledger::Clock;

/// The writer seals once this many records were appended since the last
/// checkpoint. At the measured peak (about 300 payments/s of 3 to 5
/// records) that is one signature (2 to 3 ms of RSA) every 3 s, beside the
/// timer's one a second: about 0.2% of the two cores' CPU (measured in
/// `tests/it/checkpoint.rs`; see `actors/README.md`).
pub const LOG_CHECKPOINT_EVERY_RECORDS: u64 = 4096;

/// The housekeeper asks for a checkpoint this often (nothing is appended
/// when the log already ends with one): the longest an idle issuer's newest
/// records wait for their signature.
pub const LOG_CHECKPOINT_EVERY_MS: u64 = 1000;

/// The file in the issuer's directory holding its latest signed head, in
/// [`Checkpoint::to_published_head`]'s text.
pub const SIGNED_HEAD_FILE: &str = "signed-head.txt";

/// How the issuer's log writer seals the log: signs the head with `sk_i`,
/// dates the checkpoint by `clock`, and publishes the signed head in `dir`.
/// The whole issuer and the cluster's sequencer seal with it alike.
pub fn log_sealing(sk_i: SecretKey, clock: Arc<dyn Clock>, dir: PathBuf) -> Sealing {
    let sealer = move |head: Head| -> Option<Batch> {
        let checkpoint =
            protocol::checkpoint::sign_checkpoint(&sk_i, head.last_seq, head.last_hash);
        if let Err(e) = publish_head(&dir, &checkpoint) {
            // The checkpoint still goes in the log; only the anchor outside
            // it is stale until the next seal.
            tracing::error!(error = %e, "publishing the signed head failed");
        }
        Some(Batch {
            tx: checkpoint_tx(head.last_seq),
            at: clock.now(),
            events: vec![Event::Checkpoint(checkpoint)],
        })
    };
    Sealing {
        sealer: Box::new(sealer),
        every_records: LOG_CHECKPOINT_EVERY_RECORDS,
    }
}

/// The transaction id of the checkpoint vouching for record `seq`: one per
/// record, so no two checkpoints share one.
pub fn checkpoint_tx(seq: Seq) -> TxId {
    TxId::derive("vc/tx/checkpoint", &[&seq.0.to_le_bytes()])
}

/// Replaces the published head atomically (a reader never sees half of
/// one), 0600 like every file of the issuer's directory: the operator
/// publishes copies of it.
fn publish_head(dir: &Path, checkpoint: &Checkpoint) -> std::io::Result<()> {
    ledger::private_file::write_private(
        &dir.join(SIGNED_HEAD_FILE),
        checkpoint.to_published_head().as_bytes(),
    )
}

impl IssuerCore {
    /// Appends a signed checkpoint over the log's head now, unless the log
    /// already ends with one or is empty: after an operator action, on the
    /// housekeeper's timer, at shutdown. Returns the seq it vouches for.
    pub fn seal_log(&self) -> Result<Option<Seq>, IssuerError> {
        Ok(self.commit.log().seal_wait()?)
    }

    /// [`IssuerCore::seal_log`], for the housekeeper.
    pub fn append_checkpoint_if_due(&self) -> Result<Option<Seq>, IssuerError> {
        self.seal_log()
    }

    /// The latest signed head the issuer published, as text (see
    /// [`SIGNED_HEAD_FILE`]); `None` before its first checkpoint.
    pub fn published_head(&self) -> Result<Option<String>, IssuerError> {
        match std::fs::read_to_string(self.config.dir.join(SIGNED_HEAD_FILE)) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// A clean shutdown seals the log, so the records of the issuer's last
/// moments are signed too. A stopped issuer writes nothing.
impl Drop for IssuerCore {
    fn drop(&mut self) {
        // A stopped issuer signs nothing more: its memory is not trusted.
        if self.fail_stop.is_stopped() {
            return;
        }
        if let Err(e) = self.seal_log() {
            tracing::error!(error = %e, "signing the log at shutdown failed");
        }
    }
}
