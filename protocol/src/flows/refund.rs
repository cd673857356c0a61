//! Refund, client side (non-anonymous holders): a signed request under
//! `E*_I` carrying a fresh share `K_CH`; the answer lists the revoked serials
//! and carries replacements under `K = K_I ⊕ K_CH`, or a signed rejection.

use ledger::{Amount, Coin, CoinId, ParticipantId, Timestamp};
use serde::{Deserialize, Serialize};

use super::FlowError;
use super::issuer::verify_reject;
use super::payment::open_issued_coins;
use crate::crypto::{KeyShare, Nonce, PublicKey, SecretKey, SuiteId};
use crate::wire::common::{RejectSubject, SignedReject};
use crate::wire::refund::{RefundAnswer, RefundBody, RefundOutcome, RefundRequest};
use crate::wire::{encode, labels};

/// A refund waiting for its answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefundClient {
    suite: SuiteId,
    pk_i: PublicKey,
    id_i: ParticipantId,
    id_ch: ParticipantId,
    r: Nonce,
    k_ch: KeyShare,
}

/// What the issuer did with a refund.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundUpdate {
    /// `revoked` are dead now (drop them from the purse); `coins` replace them
    /// at equal value.
    Replaced {
        revoked: Vec<CoinId>,
        coins: Vec<Coin>,
    },
    /// Signature checked.
    Rejected(SignedReject),
}

impl RefundClient {
    /// `E*_I(ID_CH, R, K_CH, S_CH("vc/refund", ID_CH, R, K_CH, now))`.
    pub fn start(
        suite: SuiteId,
        sk_ch: &SecretKey,
        pk_i: &PublicKey,
        id_i: ParticipantId,
        id_ch: ParticipantId,
        now: Timestamp,
    ) -> Result<(RefundClient, RefundRequest), FlowError> {
        let r = Nonce::random();
        let k_ch = KeyShare::random();
        let signature = sk_ch.sign(
            labels::REFUND_SIGNATURE,
            &RefundBody::signed_bytes(&id_ch, &r, &k_ch, now),
        );
        let body = RefundBody {
            id_ch: id_ch.clone(),
            r,
            k_ch: k_ch.clone(),
            requested_at: now,
            signature,
        };
        let envelope = pk_i.seal(suite, labels::REFUND_ENVELOPE, &encode(&body))?;
        let state = RefundClient {
            suite,
            pk_i: pk_i.clone(),
            id_i,
            id_ch,
            r,
            k_ch,
        };
        Ok((state, RefundRequest { envelope }))
    }

    /// The answer: MAC checked before decrypting; the replacements must be
    /// worth exactly what was revoked — which the client cannot price from
    /// serials alone, so it returns both and the purse compares against the
    /// coins it held under those serials.
    pub fn on_answer(
        &self,
        sk_ch: &SecretKey,
        msg: &RefundAnswer,
    ) -> Result<RefundUpdate, FlowError> {
        if msg.r != self.r {
            return Err(FlowError::Mismatch {
                what: "refund nonce",
            });
        }
        match &msg.outcome {
            RefundOutcome::Replaced {
                revoked,
                key_envelope,
                enc_coins,
                mac,
            } => {
                let coins = open_issued_coins(
                    sk_ch,
                    self.suite,
                    &self.k_ch,
                    &self.id_i,
                    key_envelope,
                    labels::REFUND_ISSUE_KEY,
                    |k| {
                        k.verify_mac(
                            labels::REFUND_ISSUE_MAC,
                            &RefundAnswer::mac_bytes(&self.id_i, &self.r, revoked, enc_coins),
                            mac,
                        )
                        .map_err(|_| FlowError::BadMac {
                            what: "refund answer",
                        })?;
                        Ok(k.decrypt(labels::REFUND_ISSUE, enc_coins)?)
                    },
                )?
                .coins;
                // Decoding refused an empty or repeated list; a total that
                // overflows is refused here, before the purse adds it up.
                Amount::checked_sum(coins.iter().map(Coin::value))?;
                Ok(RefundUpdate::Replaced {
                    revoked: revoked.to_vec(),
                    coins,
                })
            }
            RefundOutcome::Rejected(reject) => {
                verify_reject(&self.pk_i, reject)?;
                let ours = RejectSubject::Refund {
                    id_ch: self.id_ch.clone(),
                    r: self.r,
                };
                if reject.subject != ours {
                    return Err(FlowError::Mismatch {
                        what: "rejection subject",
                    });
                }
                Ok(RefundUpdate::Rejected(reject.clone()))
            }
        }
    }
}
