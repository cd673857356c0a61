//! Every domain-separation label of the protocol, in one place. Each names
//! its flow and step, so a signature or MAC made for one step can never be
//! accepted at another (`docs/protocol.md`, "Notation": nothing made for
//! one message verifies, opens or decrypts as another). Envelopes and
//! ciphertexts are labelled too.
//!
//! A label is never reused for two purposes; the test below holds that.

/// Registration 1: the proof of possession `S_RG(ID_RG, PK_RG, R)`.
pub const REGISTER_PROOF: &str = "vc/register/1";
/// Registration 2: the certificate `CERT = S_I(ID, PK, expiry)`.
pub const CERTIFICATE: &str = "vc/register/2/cert";

/// Enrollment 1: the envelope `E*_I(...)` to the issuer.
pub const ENROLL_ENVELOPE: &str = "vc/enroll/1";
/// Enrollment 1: the enrollee's signature inside it.
pub const ENROLL_SIGNATURE: &str = "vc/enroll/1/sig";

/// WRequest1 `E*_I(ID_CP, K_CP)`.
pub const PURCHASE_1: &str = "vc/purchase/1";
/// WRequest1: the purchaser's signature inside it, `S_CP(ID_CP, K_CP,
/// requested_at)`: a purchase session is opened only for its purchaser.
pub const PURCHASE_1_SIGNATURE: &str = "vc/purchase/1/sig";
/// WRequest2 `E*_CP(ID_I, K_I, R_I)`.
pub const PURCHASE_2: &str = "vc/purchase/2";
/// WRequest3: the encryption `e_K(...)`.
pub const PURCHASE_3: &str = "vc/purchase/3";
/// WRequest3: `mac_K(purchase, e_K(...))`, checked before decrypting.
pub const PURCHASE_3_MAC: &str = "vc/purchase/3/mac";
/// WRequest3: the purchaser's signature `S_CP(W-DESC, R_I, ID_I)`.
pub const PURCHASE_3_SIGNATURE: &str = "vc/purchase/3/sig";
/// Purchase poll: `mac_K(purchase)` so only the purchaser can ask.
pub const PURCHASE_POLL: &str = "vc/purchase/poll";
/// Issuance1 of a purchase: `e_K(coins)`.
pub const PURCHASE_ISSUE: &str = "vc/purchase/5";
/// Issuance1 of a purchase: `mac_K(ID_I, EncC)`.
pub const PURCHASE_ISSUE_MAC: &str = "vc/purchase/5/mac";
/// Issuance2 of a purchase: `mac_K(R_I)`.
pub const PURCHASE_ACK: &str = "vc/purchase/6/ack";

/// Invoice: `S_PY(H(Com))`.
pub const INVOICE: &str = "vc/pay/1/invoice";
/// Hash of `Com` (a hash, not a signature: the label is hashed in).
pub const COM_HASH: &str = "vc/pay/com";
/// SendCoins `EncC_1 = E*_I(coins, ID_PY, TID_PY, H(Com))`.
pub const PAY_SEND_COINS: &str = "vc/pay/2";
/// ValidationRequest `E*_I(ID_PY, ID_PA, K_PY, TID_PY, V-DESC, EncC_1)`.
pub const PAY_VALIDATION: &str = "vc/pay/3";
/// ValidationRequest: the payee's signature inside it, `S_PY(ID_PY, ID_PA,
/// K_PY, TID_PY, kind, V-DESC, EncC_1)`: only the payee it names may ask.
pub const PAY_VALIDATION_SIGNATURE: &str = "vc/pay/3/sig";
/// Payment Issuance1: `E*_PY(K_I, ID_I)`.
pub const PAY_ISSUE_KEY: &str = "vc/pay/5/key";
/// Payment Issuance1: `e_K(NewCoins)`.
pub const PAY_ISSUE: &str = "vc/pay/5";
/// Payment Issuance1: `mac_K(ID_I, TID_PY, e_K(NewCoins))`.
pub const PAY_ISSUE_MAC: &str = "vc/pay/5/mac";
/// Redeem and aggregate answers: the issuer's signed receipt.
pub const PAY_ISSUER_RECEIPT: &str = "vc/pay/5/receipt";
/// Payment Issuance2: `mac_K(TID_PY)`.
pub const PAY_ACK: &str = "vc/pay/6/ack";
/// Payee's receipt to the payer: `S_PY(H(Com))`.
pub const RECEIPT: &str = "vc/receipt";

/// P4: the issuer's signed error statement `S_I(TID, reason, bad serials)`.
pub const REJECT: &str = "vc/reject";

/// Refund request `S_CH(ID_CH, R, K_CH)`.
pub const REFUND_SIGNATURE: &str = "vc/refund";
/// Refund request envelope `E*_I(...)`.
pub const REFUND_ENVELOPE: &str = "vc/refund/1";
/// Refund answer: `E*_CH(K_I, ID_I)`.
pub const REFUND_ISSUE_KEY: &str = "vc/refund/2/key";
/// Refund answer: `e_K(replacement coins)`.
pub const REFUND_ISSUE: &str = "vc/refund/2";
/// Refund answer: `mac_K(ID_I, R, revoked serials, e_K(coins))`.
pub const REFUND_ISSUE_MAC: &str = "vc/refund/2/mac";

/// Coin status answer: `S_I(as_of, statuses)`.
pub const COIN_STATUS: &str = "vc/status";

/// Cash-out request: `S_M(ID_M, ID_I, id, amount)`.
pub const CASH_OUT_SIGNATURE: &str = "vc/cash-out";
/// Cash-out receipt: `S_I(ID_M, id, paid)`.
pub const CASH_OUT_RECEIPT: &str = "vc/cash-out/receipt";

/// Key change: the new key's proof of possession, `S_new(ID, ID_I, PK_old, PK_new)`.
pub const KEY_CHANGE_PROOF: &str = "vc/key-change/proof";
/// Key change: the old key's consent, `S_old(ID, ID_I, PK_old, PK_new)`.
pub const KEY_CHANGE_SIGNATURE: &str = "vc/key-change";

/// Every label, for the uniqueness test and for anyone auditing them.
pub const ALL: &[&str] = &[
    KEY_CHANGE_PROOF,
    KEY_CHANGE_SIGNATURE,
    CASH_OUT_SIGNATURE,
    CASH_OUT_RECEIPT,
    REGISTER_PROOF,
    CERTIFICATE,
    ENROLL_ENVELOPE,
    ENROLL_SIGNATURE,
    PURCHASE_1,
    PURCHASE_1_SIGNATURE,
    PURCHASE_2,
    PURCHASE_3,
    PURCHASE_3_MAC,
    PURCHASE_3_SIGNATURE,
    PURCHASE_POLL,
    PURCHASE_ISSUE,
    PURCHASE_ISSUE_MAC,
    PURCHASE_ACK,
    INVOICE,
    COM_HASH,
    PAY_SEND_COINS,
    PAY_VALIDATION,
    PAY_VALIDATION_SIGNATURE,
    PAY_ISSUE_KEY,
    PAY_ISSUE,
    PAY_ISSUE_MAC,
    PAY_ISSUER_RECEIPT,
    PAY_ACK,
    RECEIPT,
    REJECT,
    REFUND_SIGNATURE,
    REFUND_ENVELOPE,
    REFUND_ISSUE_KEY,
    REFUND_ISSUE,
    REFUND_ISSUE_MAC,
    COIN_STATUS,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_label_is_distinct_and_namespaced() {
        let mut seen = std::collections::HashSet::new();
        for label in ALL {
            assert!(label.starts_with("vc/"), "{label} is outside vc/");
            assert!(seen.insert(*label), "{label} is used twice");
        }
    }
}
