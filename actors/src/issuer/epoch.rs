//! Opening a mint key epoch on demand (`varietycash issuer epoch open`,
//! and the demo once its clock has passed a coin's expiry): the same path
//! as the periodic rotation in `core.rs` (the mint persists the new key
//! before the log records `EpochOpened`, and the previous epoch's
//! `EpochClosed` goes in the same batch), only not waiting for the period.

use ledger::KeyEpoch;
use ledger::sync::lock;

use crate::issuer::core::{IssuerCore, IssuerError};
use crate::issuer::decide_epoch;

impl IssuerCore {
    /// Opens the next key epoch now: new coins are minted under it and
    /// expire a coin lifetime from now. Returns the epoch opened.
    pub fn open_epoch_now(&self) -> Result<KeyEpoch, IssuerError> {
        let _guard = lock(&self.epoch_lock);
        self.open_next_epoch_locked()
    }

    /// [`IssuerCore::open_epoch_now`], the caller holding the epoch lock.
    pub(crate) fn open_next_epoch_locked(&self) -> Result<KeyEpoch, IssuerError> {
        let now = self.now();
        let next = decide_epoch::next_epoch(self.current_epoch().map(|(epoch, _)| epoch));
        self.persist_mint_key(next)?;
        // The same transaction as the periodic rotation's: an epoch is
        // opened once, whichever path opens it.
        let (tx, events) = decide_epoch::epoch_opening(next, now, self.epoch_schedule());
        self.commit_batch(tx, &[], events, Vec::new())?;
        self.seal_log()?;
        tracing::info!(%next, "key epoch opened on demand");
        Ok(next)
    }
}
