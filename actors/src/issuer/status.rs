//! The holder's coin status query: whole coins in, the issuer's signed
//! status of each out, answered only for coins whose tag the mint checks
//! (proof of possession); any other coin is answered `Unknown`, as one
//! never issued is.

use protocol::wire::status::{CoinState, CoinStatusAnswer, CoinStatusEntry, HeldCoinStatusQuery};

use crate::issuer::core::{IssuerCore, IssuerError};

impl IssuerCore {
    /// The signed status of each coin a holder shows. Every coin is looked
    /// up whether its tag checks or not, so the work done does not tell a
    /// stranger more than the answer does.
    pub fn held_coin_status(
        &self,
        query: &HeldCoinStatusQuery,
    ) -> Result<CoinStatusAnswer, IssuerError> {
        let mut entries = Vec::with_capacity(query.coins.len());
        for coin in query.coins.iter() {
            let held = {
                let mint = self.mint.read().expect(ledger::sync::POISONED_LOCK);
                mint.check(coin).is_ok()
            };
            let state = self.coin_state(&coin.id())?;
            entries.push(CoinStatusEntry {
                coin: coin.id(),
                state: if held { state } else { CoinState::Unknown },
            });
        }
        Ok(protocol::flows::issuer::answer_coin_status(
            &self.sk_i,
            entries,
            self.now(),
        )?)
    }
}
