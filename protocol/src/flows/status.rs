//! Coin status, client side: check the issuer's signature on the answer and
//! that it answers exactly the serials asked about.

use crate::crypto::PublicKey;
use crate::wire::labels;
use crate::wire::status::{CoinStatusAnswer, CoinStatusEntry, CoinStatusQuery};

use super::FlowError;

/// Checks `S_I("vc/status", as_of, entries)` and that the entries are the
/// query's serials, in order.
pub fn verify_coin_status(
    pk_i: &PublicKey,
    query: &CoinStatusQuery,
    answer: &CoinStatusAnswer,
) -> Result<Vec<CoinStatusEntry>, FlowError> {
    pk_i.verify(
        labels::COIN_STATUS,
        &CoinStatusAnswer::signed_bytes(answer.as_of, &answer.entries),
        &answer.signature,
    )
    .map_err(|_| FlowError::BadSignature {
        what: "coin status",
    })?;
    let asked = query.coins.iter();
    let got = answer.entries.iter().map(|e| &e.coin);
    if asked.len() != got.len() || !asked.zip(got).all(|(a, b)| a == b) {
        return Err(FlowError::Mismatch {
            what: "coin status serials",
        });
    }
    Ok(answer.entries.to_vec())
}
