//! Coin purchase, client side (paper Figure 5): WRequest1, then WRequest3
//! once WRequest2 opens, then Issuance1 (polled until the bank settles),
//! then the Issuance2 ack.
//!
//! The states hold only shares and public data, and are serde, so a purse
//! can journal a purchase that waits days for its settlement.

use ledger::{Coin, ParticipantId, PurchaseId};
use serde::{Deserialize, Serialize};

use super::{FlowError, coins_match_spec};
use crate::crypto::{KeyShare, Nonce, PublicKey, SecretKey, SessionKey, SuiteId};
use crate::wire::common::{RejectSubject, SignedReject};
use crate::wire::purchase::{
    IssuedCoins, PurchaseIssuance1, PurchaseIssuance2, PurchaseOutcome, PurchasePoll, WDesc,
    WRequest1, WRequest1Body, WRequest2, WRequest2Body, WRequest3, WRequest3Body,
};
use crate::wire::{decode, encode, labels};

use super::issuer::verify_reject;

/// Entry point of the purchase flow.
pub struct PurchaseClient;

impl PurchaseClient {
    /// WRequest1 `E*_I(ID_CP, K_CP, now, S_CP(ID_CP, K_CP, now))`: signed
    /// with the purchaser's registered key `sk_cp`, so the issuer opens a
    /// session only for the purchaser it names.
    pub fn start(
        suite: SuiteId,
        sk_cp: &SecretKey,
        id_cp: ParticipantId,
        pk_i: &PublicKey,
        now: ledger::Timestamp,
    ) -> Result<(PurchaseAwaitingWRequest2, WRequest1), FlowError> {
        let k_cp = KeyShare::random();
        let signature = sk_cp.sign(
            labels::PURCHASE_1_SIGNATURE,
            &WRequest1Body::signed_bytes(&id_cp, &k_cp, now),
        );
        let body = WRequest1Body {
            id_cp: id_cp.clone(),
            k_cp: k_cp.clone(),
            requested_at: now,
            signature,
        };
        let envelope = pk_i.seal(suite, labels::PURCHASE_1, &encode(&body))?;
        let state = PurchaseAwaitingWRequest2 {
            suite,
            id_cp,
            pk_i: pk_i.clone(),
            k_cp,
        };
        Ok((state, WRequest1 { envelope }))
    }
}

/// Sent WRequest1; waiting for WRequest2.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PurchaseAwaitingWRequest2 {
    suite: SuiteId,
    id_cp: ParticipantId,
    pk_i: PublicKey,
    k_cp: KeyShare,
}

impl PurchaseAwaitingWRequest2 {
    /// Opens WRequest2 `E*_CP(ID_I, K_I, R_I)`, forms `K = K_I ⊕ K_CP` and
    /// answers WRequest3 `e_K(W-DESC, S_CP(W-DESC, R_I, ID_I))`.
    /// `id_i` is the issuer we meant to talk to.
    pub fn on_wrequest2(
        self,
        sk_cp: &SecretKey,
        id_i: &ParticipantId,
        msg: &WRequest2,
        w_desc: WDesc,
    ) -> Result<(PurchaseAwaitingIssuance, WRequest3), FlowError> {
        w_desc
            .check()
            .map_err(|what| FlowError::WrongCoins { what })?;
        let plain = sk_cp
            .open(labels::PURCHASE_2, &msg.envelope)
            .map_err(|_| FlowError::CannotOpen { what: "WRequest2" })?;
        let body: WRequest2Body = decode(&plain)?;
        if body.purchase != msg.purchase {
            return Err(FlowError::Mismatch {
                what: "purchase handle",
            });
        }
        if &body.id_i != id_i {
            return Err(FlowError::Mismatch { what: "issuer id" });
        }
        let state = PurchaseAwaitingIssuance {
            suite: self.suite,
            purchase: body.purchase,
            id_cp: self.id_cp,
            id_i: body.id_i,
            pk_i: self.pk_i,
            k_cp: self.k_cp,
            k_i: body.k_i,
            r_i: body.r_i,
            w_desc,
        };
        let signature = sk_cp.sign(
            labels::PURCHASE_3_SIGNATURE,
            &WRequest3Body::signed_bytes(&state.w_desc, &state.r_i, &state.id_i, &state.purchase),
        );
        let inner = WRequest3Body {
            w_desc: state.w_desc.clone(),
            signature,
        };
        let k = state.session_key();
        let body = k.encrypt(labels::PURCHASE_3, &encode(&inner));
        let mac = k.mac(
            labels::PURCHASE_3_MAC,
            &WRequest3::mac_bytes(&state.purchase, &body),
        );
        let request = WRequest3 {
            purchase: state.purchase,
            body,
            mac,
        };
        Ok((state, request))
    }
}

/// What an Issuance1 said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PurchaseUpdate {
    /// Not settled yet: poll again later.
    Pending,
    /// The coins, checked against W-DESC, and the ack to send.
    Issued {
        coins: Vec<Coin>,
        ack: PurchaseIssuance2,
    },
    /// The issuer's rejection, its signature checked.
    Rejected(SignedReject),
}

/// Sent WRequest3; waiting for Issuance1 (possibly days: poll).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PurchaseAwaitingIssuance {
    suite: SuiteId,
    purchase: PurchaseId,
    id_cp: ParticipantId,
    id_i: ParticipantId,
    pk_i: PublicKey,
    k_cp: KeyShare,
    k_i: KeyShare,
    r_i: Nonce,
    w_desc: WDesc,
}

impl PurchaseAwaitingIssuance {
    pub fn purchase(&self) -> PurchaseId {
        self.purchase
    }

    pub fn w_desc(&self) -> &WDesc {
        &self.w_desc
    }

    fn session_key(&self) -> SessionKey {
        SessionKey::combine(self.suite, &self.k_i, &self.k_cp)
    }

    /// A poll for Issuance1, MACed under `K`.
    pub fn poll(&self) -> PurchasePoll {
        PurchasePoll {
            purchase: self.purchase,
            mac: self.session_key().mac(
                labels::PURCHASE_POLL,
                &PurchasePoll::mac_bytes(&self.purchase),
            ),
        }
    }

    /// Issuance1: checks `mac_K(ID_I, EncC)` before decrypting, then that the
    /// coins are exactly those W-DESC asked for; or checks the rejection's
    /// signature. The state is kept (not consumed): Issuance1 may be fetched
    /// again until the ack, and the coins are the same every time.
    pub fn on_issuance1(&self, msg: &PurchaseIssuance1) -> Result<PurchaseUpdate, FlowError> {
        if msg.purchase != self.purchase {
            return Err(FlowError::Mismatch {
                what: "purchase handle",
            });
        }
        match &msg.outcome {
            PurchaseOutcome::Pending => Ok(PurchaseUpdate::Pending),
            PurchaseOutcome::Issued { enc_c, mac } => {
                let k = self.session_key();
                k.verify_mac(
                    labels::PURCHASE_ISSUE_MAC,
                    &PurchaseIssuance1::mac_bytes(&self.id_i, &self.purchase, enc_c),
                    mac,
                )
                .map_err(|_| FlowError::BadMac { what: "Issuance1" })?;
                let plain = k.decrypt(labels::PURCHASE_ISSUE, enc_c)?;
                let issued: IssuedCoins = decode(&plain)?;
                let coins = issued.coins.into_vec();
                coins_match_spec(&coins, &self.w_desc.spec)?;
                let ack = PurchaseIssuance2 {
                    purchase: self.purchase,
                    mac: k.mac(
                        labels::PURCHASE_ACK,
                        &PurchaseIssuance2::mac_bytes(&self.r_i, &self.purchase),
                    ),
                };
                Ok(PurchaseUpdate::Issued { coins, ack })
            }
            PurchaseOutcome::Rejected(reject) => {
                verify_reject(&self.pk_i, reject)?;
                if reject.subject != RejectSubject::Purchase(self.purchase) {
                    return Err(FlowError::Mismatch {
                        what: "rejection subject",
                    });
                }
                Ok(PurchaseUpdate::Rejected(reject.clone()))
            }
        }
    }
}
