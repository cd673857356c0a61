//! Opening a mint key epoch on demand (`varietycash issuer epoch open`,
//! and the demo once its clock has passed a coin's expiry): the same path
//! as the periodic rotation in `core.rs` (the mint persists the new key
//! before the log records `EpochOpened`, and the previous epoch's
//! `EpochClosed` goes in the same batch), only not waiting for the period.

use ledger::sync::lock;
use ledger::{Event, KeyEpoch, TxId};

use crate::issuer::core::{IssuerCore, IssuerError};

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
        let next = self
            .current_epoch()
            .map_or(KeyEpoch(1), |(epoch, _)| KeyEpoch(epoch.0 + 1));
        {
            let mut mint = self.mint.write().expect(ledger::sync::POISONED_LOCK);
            if !mint.has_epoch(next) {
                mint.open_epoch(next)?;
            }
        }
        let lifetime = self.config.coin_lifetime_secs;
        let mut events = vec![Event::EpochOpened {
            epoch: next,
            coins_expire_at: now.plus_secs(lifetime),
            grace_ends_at: now.plus_secs(lifetime.saturating_add(self.config.grace_secs)),
        }];
        if next.0 > 1 {
            events.push(Event::EpochClosed {
                epoch: KeyEpoch(next.0 - 1),
            });
        }
        // The same transaction id as the periodic rotation's: an epoch is
        // opened once, whichever path opens it.
        let tx = TxId::derive("vc/tx/epoch", &[&next.0.to_le_bytes()]);
        self.commit_batch(tx, &[], events, Vec::new())?;
        self.seal_log()?;
        tracing::info!(%next, "key epoch opened on demand");
        Ok(next)
    }
}
