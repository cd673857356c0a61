//! Refund, issuer side. Finding the unspent coins issued to `ID_CH` (the user
//! index) and revoking them is the actors'; this module opens the request and
//! seals the replacements.

use ledger::{Coin, CoinId, ParticipantId, Timestamp};

use super::sign_reject;
use crate::crypto::{KeyShare, Nonce, PublicKey, SecretKey, SessionKey, SuiteId};
use crate::flows::{FlowError, is_fresh};
use crate::wire::common::{CoinList, CoinSerials, RejectReason, RejectSubject};
use crate::wire::payment::IssuerKeyBody;
use crate::wire::purchase::IssuedCoins;
use crate::wire::refund::{RefundAnswer, RefundBody, RefundOutcome, RefundRequest};
use crate::wire::{decode, encode, labels};

/// A refund request, opened and checked.
#[derive(Debug, Clone)]
pub struct OpenedRefund {
    pub suite: SuiteId,
    pub id_ch: ParticipantId,
    /// Single-use: the caller refuses an `R` it has seen within
    /// [`crate::flows::REQUEST_AGE_SECS_MAX`] (older requests are stale anyway).
    pub r: Nonce,
    pub k_ch: KeyShare,
    pub requested_at: Timestamp,
}

/// Opens a refund request, checks `S_CH` under the holder's registered key
/// (`registered_key`) and that it is fresh.
pub fn open_refund_request(
    sk_i: &SecretKey,
    msg: &RefundRequest,
    registered_key: impl FnOnce(&ParticipantId) -> Option<PublicKey>,
    now: Timestamp,
) -> Result<OpenedRefund, FlowError> {
    let plain = sk_i
        .open(labels::REFUND_ENVELOPE, &msg.envelope)
        .map_err(|_| FlowError::CannotOpen {
            what: "RefundRequest",
        })?;
    let body: RefundBody = decode(&plain)?;
    let pk_ch = super::registered_or_decoy(registered_key(&body.id_ch), sk_i);
    pk_ch
        .verify(
            labels::REFUND_SIGNATURE,
            &RefundBody::signed_bytes(&body.id_ch, &body.r, &body.k_ch, body.requested_at),
            &body.signature,
        )
        .map_err(|_| FlowError::BadSignature { what: "refund" })?;
    if !is_fresh(body.requested_at, now) {
        return Err(FlowError::Stale);
    }
    Ok(OpenedRefund {
        suite: msg.envelope.suite(),
        id_ch: body.id_ch,
        r: body.r,
        k_ch: body.k_ch,
        requested_at: body.requested_at,
    })
}

/// The refund answer: the revoked serials and the replacements,
/// `E*_CH(K_I, ID_I), e_K(coins), mac_K(ID_I, R, revoked, e_K(coins))`.
pub fn build_refund_answer(
    opened: &OpenedRefund,
    pk_ch: &PublicKey,
    id_i: &ParticipantId,
    revoked: Vec<CoinId>,
    replacements: Vec<Coin>,
) -> Result<RefundAnswer, FlowError> {
    let revoked = CoinSerials::new(revoked).map_err(|_| FlowError::WrongCoins {
        what: "more revoked serials than one message may carry",
    })?;
    let coins = CoinList::new(replacements).map_err(|_| FlowError::WrongCoins {
        what: "more coins than one message may carry",
    })?;
    let k_i = KeyShare::random();
    let key_envelope = pk_ch.seal(
        opened.suite,
        labels::REFUND_ISSUE_KEY,
        &encode(&IssuerKeyBody {
            k_i: k_i.clone(),
            id_i: id_i.clone(),
        }),
    )?;
    let k = SessionKey::combine(opened.suite, &k_i, &opened.k_ch);
    let enc_coins = k.encrypt(labels::REFUND_ISSUE, &encode(&IssuedCoins { coins }));
    let mac = k.mac(
        labels::REFUND_ISSUE_MAC,
        &RefundAnswer::mac_bytes(id_i, &opened.r, &revoked, &enc_coins),
    );
    Ok(RefundAnswer {
        r: opened.r,
        outcome: RefundOutcome::Replaced {
            revoked,
            key_envelope,
            enc_coins,
            mac,
        },
    })
}

/// The signed refusal of a refund (e.g. nothing to refund).
pub fn reject_refund(
    sk_i: &SecretKey,
    opened: &OpenedRefund,
    reason: RejectReason,
    now: Timestamp,
) -> RefundAnswer {
    RefundAnswer {
        r: opened.r,
        outcome: RefundOutcome::Rejected(sign_reject(
            sk_i,
            RejectSubject::Refund {
                id_ch: opened.id_ch.clone(),
                r: opened.r,
            },
            reason,
            Vec::new(),
            now,
        )),
    }
}
