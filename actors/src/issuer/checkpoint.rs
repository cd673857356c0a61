//! Signed checkpoints of the log: the issuer periodically appends
//! `S_I(seq, hash)` over its head, so that an auditor holding only the
//! issuer's public key can tell a rewritten history from the real one even if
//! the forger recomputed every hash after the change.

use ledger::{Event, EventStore, Seq, TxId};

use super::core::{IssuerCore, IssuerError};

impl IssuerCore {
    /// Appends a signed checkpoint over the current head unless the last
    /// record already is one (an idle log needs no new signature). Returns
    /// the sequence number the checkpoint vouches for.
    pub fn append_checkpoint_if_due(&self) -> Result<Option<Seq>, IssuerError> {
        let head = self.store().head()?;
        if head.last_seq == Seq(0) {
            return Ok(None);
        }
        let last = self.store().read(head.last_seq, 1)?;
        if matches!(
            last.first().map(|r| &r.record.event),
            Some(Event::Checkpoint(_))
        ) {
            return Ok(None);
        }
        let checkpoint =
            protocol::checkpoint::sign_checkpoint(&self.sk_i, head.last_seq, head.last_hash);
        let tx = TxId::derive("vc/tx/checkpoint", &[&head.last_seq.0.to_le_bytes()]);
        self.commit_batch(tx, &[], vec![Event::Checkpoint(checkpoint)], Vec::new())?;
        Ok(Some(head.last_seq))
    }
}
