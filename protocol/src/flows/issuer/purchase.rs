//! Coin purchase, issuer side (paper Figure 5, W1–W3).

use ledger::{Coin, ParticipantId, PurchaseId, Timestamp, TxId};
use serde::{Deserialize, Serialize};

use super::sign_reject;
use crate::crypto::{KeyShare, Nonce, PublicKey, SecretKey, SessionKey, Signature, SuiteId};
use crate::flows::{FlowError, is_fresh};
use crate::wire::common::{CoinList, RejectReason, RejectSubject};
use crate::wire::purchase::{
    IssuedCoins, PurchaseIssuance1, PurchaseIssuance2, PurchaseOutcome, PurchasePoll, WDesc,
    WRequest1, WRequest1Body, WRequest2, WRequest2Body, WRequest3, WRequest3Body,
};
use crate::wire::{decode, encode, labels};

/// An opened WRequest1, its purchaser's signature checked.
#[derive(Debug, Clone)]
pub struct OpenedWRequest1 {
    /// The suite the purchaser chose; the whole purchase runs under it.
    pub suite: SuiteId,
    pub id_cp: ParticipantId,
    pub k_cp: KeyShare,
    /// The purchase handle this request gets, derived from its signature:
    /// every copy of one WRequest1 (a retry, a replay) names the same
    /// session, so copies open no further sessions.
    pub handle: PurchaseId,
}

/// Label under which a purchase handle is derived from its WRequest1.
pub const PURCHASE_HANDLE_LABEL: &str = "vc/purchase/handle";

/// Opens WRequest1 `E*_I(ID_CP, K_CP, requested_at, S_CP(...))`: checks the
/// signature under the key `registered_key` gives for `ID_CP`, and that the
/// request is fresh at `now`.
pub fn open_wrequest1(
    sk_i: &SecretKey,
    msg: &WRequest1,
    registered_key: impl FnOnce(&ParticipantId) -> Option<PublicKey>,
    now: Timestamp,
) -> Result<OpenedWRequest1, FlowError> {
    let plain = sk_i
        .open(labels::PURCHASE_1, &msg.envelope)
        .map_err(|_| FlowError::CannotOpen { what: "WRequest1" })?;
    let body: WRequest1Body = decode(&plain)?;
    let pk_cp = super::registered_or_decoy(registered_key(&body.id_cp), sk_i);
    pk_cp
        .verify(
            labels::PURCHASE_1_SIGNATURE,
            &WRequest1Body::signed_bytes(&body.id_cp, &body.k_cp, body.requested_at),
            &body.signature,
        )
        .map_err(|_| FlowError::BadSignature { what: "WRequest1" })?;
    if !is_fresh(body.requested_at, now) {
        return Err(FlowError::Stale);
    }
    let handle = TxId::derive(
        PURCHASE_HANDLE_LABEL,
        &[body.id_cp.as_str().as_bytes(), body.signature.as_bytes()],
    );
    Ok(OpenedWRequest1 {
        suite: msg.envelope.suite(),
        id_cp: body.id_cp,
        k_cp: body.k_cp,
        handle: PurchaseId::from_bytes(*handle.as_bytes()),
    })
}

/// The issuer's record of one purchase session, to be stored until Issuance2
/// (pending purchases survive restarts). `r_i_used` is W3's single-use flag.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PurchaseSession {
    pub suite: SuiteId,
    pub purchase: PurchaseId,
    pub id_cp: ParticipantId,
    pub id_i: ParticipantId,
    k_cp: KeyShare,
    k_i: KeyShare,
    pub r_i: Nonce,
    pub r_i_used: bool,
}

impl PurchaseSession {
    fn session_key(&self) -> SessionKey {
        SessionKey::combine(self.suite, &self.k_i, &self.k_cp)
    }
}

/// WRequest2 `E*_CP(ID_I, K_I, R_I)` under the purchaser's registered key
/// `pk_cp`, for the handle `purchase` the caller picked (fresh and unique).
pub fn answer_wrequest1(
    opened: OpenedWRequest1,
    pk_cp: &PublicKey,
    id_i: ParticipantId,
    purchase: PurchaseId,
) -> Result<(PurchaseSession, WRequest2), FlowError> {
    let session = PurchaseSession {
        suite: opened.suite,
        purchase,
        id_cp: opened.id_cp,
        id_i,
        k_cp: opened.k_cp,
        k_i: KeyShare::random(),
        r_i: Nonce::random(),
        r_i_used: false,
    };
    let answer = seal_wrequest2(&session, pk_cp)?;
    Ok((session, answer))
}

/// WRequest2 of an existing session, sealed (again) under `pk_cp`: the
/// answer to a copy of the WRequest1 that opened it.
pub fn seal_wrequest2(
    session: &PurchaseSession,
    pk_cp: &PublicKey,
) -> Result<WRequest2, FlowError> {
    let body = WRequest2Body {
        purchase: session.purchase,
        id_i: session.id_i.clone(),
        k_i: session.k_i.clone(),
        r_i: session.r_i,
    };
    let envelope = pk_cp.seal(session.suite, labels::PURCHASE_2, &encode(&body))?;
    Ok(WRequest2 {
        purchase: session.purchase,
        envelope,
    })
}

/// An accepted WRequest3: what to debit, and the signature that authorizes it
/// (kept for non-repudiation).
#[derive(Debug, Clone)]
pub struct PurchaseOrder {
    pub purchase: PurchaseId,
    pub id_cp: ParticipantId,
    pub w_desc: WDesc,
    pub authorization: Signature,
}

/// Opens WRequest3: checks the MAC before decrypting, then `S_CP(W-DESC, R_I,
/// ID_I)` under `pk_cp`, then spends `R_I` (W3: a second WRequest3 for the
/// same session is a replay). On success the caller must persist the session
/// with `r_i_used` set before acting on the order.
pub fn open_wrequest3(
    session: &mut PurchaseSession,
    pk_cp: &PublicKey,
    msg: &WRequest3,
) -> Result<PurchaseOrder, FlowError> {
    if msg.purchase != session.purchase {
        return Err(FlowError::Mismatch {
            what: "purchase handle",
        });
    }
    let k = session.session_key();
    k.verify_mac(
        labels::PURCHASE_3_MAC,
        &WRequest3::mac_bytes(&msg.purchase, &msg.body),
        &msg.mac,
    )
    .map_err(|_| FlowError::BadMac { what: "WRequest3" })?;
    if session.r_i_used {
        return Err(FlowError::ReplayedNonce);
    }
    let plain = k.decrypt(labels::PURCHASE_3, &msg.body)?;
    let body: WRequest3Body = decode(&plain)?;
    pk_cp
        .verify(
            labels::PURCHASE_3_SIGNATURE,
            &WRequest3Body::signed_bytes(
                &body.w_desc,
                &session.r_i,
                &session.id_i,
                &session.purchase,
            ),
            &body.signature,
        )
        .map_err(|_| FlowError::BadSignature { what: "WRequest3" })?;
    session.r_i_used = true;
    Ok(PurchaseOrder {
        purchase: session.purchase,
        id_cp: session.id_cp.clone(),
        w_desc: body.w_desc,
        authorization: body.signature,
    })
}

/// Checks a poll's MAC: only the purchaser may fetch Issuance1.
pub fn open_purchase_poll(session: &PurchaseSession, msg: &PurchasePoll) -> Result<(), FlowError> {
    if msg.purchase != session.purchase {
        return Err(FlowError::Mismatch {
            what: "purchase handle",
        });
    }
    session
        .session_key()
        .verify_mac(
            labels::PURCHASE_POLL,
            &PurchasePoll::mac_bytes(&msg.purchase),
            &msg.mac,
        )
        .map_err(|_| FlowError::BadMac {
            what: "purchase poll",
        })
}

/// Issuance1 after settlement: `e_K(coins), mac_K(ID_I, purchase, EncC)`.
/// Call it again with the same coins to serve a repeat fetch.
pub fn build_purchase_issuance1(
    session: &PurchaseSession,
    coins: Vec<Coin>,
) -> Result<PurchaseIssuance1, FlowError> {
    let coins = CoinList::new(coins).map_err(|_| FlowError::WrongCoins {
        what: "more coins than one message may carry",
    })?;
    let k = session.session_key();
    let enc_c = k.encrypt(labels::PURCHASE_ISSUE, &encode(&IssuedCoins { coins }));
    let mac = k.mac(
        labels::PURCHASE_ISSUE_MAC,
        &PurchaseIssuance1::mac_bytes(&session.id_i, &session.purchase, &enc_c),
    );
    Ok(PurchaseIssuance1 {
        purchase: session.purchase,
        outcome: PurchaseOutcome::Issued { enc_c, mac },
    })
}

/// Issuance1 before settlement: poll again.
pub fn purchase_pending(purchase: PurchaseId) -> PurchaseIssuance1 {
    PurchaseIssuance1 {
        purchase,
        outcome: PurchaseOutcome::Pending,
    }
}

/// Issuance1 for a refused purchase: the issuer's signed rejection.
pub fn reject_purchase(
    sk_i: &SecretKey,
    purchase: PurchaseId,
    reason: RejectReason,
    now: Timestamp,
) -> PurchaseIssuance1 {
    PurchaseIssuance1 {
        purchase,
        outcome: PurchaseOutcome::Rejected(sign_reject(
            sk_i,
            RejectSubject::Purchase(purchase),
            reason,
            Vec::new(),
            now,
        )),
    }
}

/// Checks Issuance2 `mac_K(R_I, purchase)`: after it, Issuance1 is no longer served.
pub fn open_purchase_issuance2(
    session: &PurchaseSession,
    msg: &PurchaseIssuance2,
) -> Result<(), FlowError> {
    if msg.purchase != session.purchase {
        return Err(FlowError::Mismatch {
            what: "purchase handle",
        });
    }
    session
        .session_key()
        .verify_mac(
            labels::PURCHASE_ACK,
            &PurchaseIssuance2::mac_bytes(&session.r_i, &session.purchase),
            &msg.mac,
        )
        .map_err(|_| FlowError::BadMac { what: "Issuance2" })
}
