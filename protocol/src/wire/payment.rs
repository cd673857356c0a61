//! Payment (`docs/protocol.md`, "Payment", paper Figures 6–7,
//! requirements P1–P4), and through the same validation path change, refresh
//! and redeem (payments to oneself).
//!
//! The payee never sees the coins: they travel inside `EncC_1 = E*_I(...)`
//! together with `ID_PY` and `H(Com)`, so that re-wrapping them in a
//! ValidationRequest under another payee's identity is detected (P3).

use std::fmt;

use ledger::{Amount, BankAccount, CoinSpec, ParticipantId, PaymentOption, SpendCause, Timestamp};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::bounded::BoundedText;
use super::common::{CoinList, CoinSerials, PaymentTid, SignedReject, validate_coins};
use super::labels;
use super::limits::{
    CERTIFICATE_BYTES_MAX, ENVELOPE_OVERHEAD_BYTES_MAX, ISSUANCE_BYTES_MAX,
    SEND_COINS_BODY_BYTES_MAX, SEND_COINS_BYTES_MAX, SIGNED_REJECT_BYTES_MAX,
    SMALL_MESSAGE_BYTES_MAX, TEXT_MAX, VALIDATION_BODY_BYTES_MAX, VALIDATION_BYTES_MAX,
};
use super::registration::Certificate;
use super::{WireError, WireMessage, transcript};
use crate::crypto::{Ciphertext, Envelope, KeyShare, MacTag, Signature};

/// `P-DESC`: what is being bought, as the payee describes it.
pub type PDesc = BoundedText<TEXT_MAX>;

/// `Com = (P-DESC, TID_PY, ID_PA, ID_PY, ID_I)`: what payer and payee agree on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Com {
    pub p_desc: PDesc,
    pub tid_py: PaymentTid,
    pub id_pa: ParticipantId,
    pub id_py: ParticipantId,
    pub id_i: ParticipantId,
    /// The amount is part of what both agree on (the paper folds it into P-DESC).
    pub amount: Amount,
}

impl Com {
    /// `H(Com)`: SHA-256 over the label and the canonical encoding.
    pub fn hash(&self) -> ComHash {
        let mut h = Sha256::new();
        h.update((labels::COM_HASH.len() as u64).to_le_bytes());
        h.update(labels::COM_HASH.as_bytes());
        h.update(transcript(self));
        let digest = h.finalize();
        let mut out = [0u8; 32];
        out.copy_from_slice(&digest);
        ComHash(out)
    }
}

/// `H(Com)`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ComHash(pub [u8; 32]);

impl fmt::Debug for ComHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ComHash(")?;
        for b in &self.0[..8] {
            write!(f, "{b:02x}")?;
        }
        write!(f, "…)")
    }
}

/// The payee's optional commitment in an invoice: `S_PY(H(Com))` and `CERT_PY`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceCommitment {
    /// `S_PY(labels::INVOICE, H(Com))`.
    pub signature: Signature,
    pub cert_py: Certificate,
}

/// Invoice `PY → PA: TID_PY, P-DESC, amount [, S_PY(H(Com)), CERT_PY]`, with
/// the identities that make up `Com` (the payer told the payee its `ID_PA`
/// when it asked for the invoice).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invoice {
    pub tid_py: PaymentTid,
    pub p_desc: PDesc,
    pub amount: Amount,
    pub id_pa: ParticipantId,
    pub id_py: ParticipantId,
    pub id_i: ParticipantId,
    pub commitment: Option<InvoiceCommitment>,
}

impl Invoice {
    /// The `Com` this invoice stands for.
    pub fn com(&self) -> Com {
        Com {
            p_desc: self.p_desc.clone(),
            tid_py: self.tid_py,
            id_pa: self.id_pa.clone(),
            id_py: self.id_py.clone(),
            id_i: self.id_i.clone(),
            amount: self.amount,
        }
    }
}

impl WireMessage for Invoice {
    const NAME: &'static str = "Invoice";
    const BYTES_MAX: usize = SMALL_MESSAGE_BYTES_MAX + CERTIFICATE_BYTES_MAX;

    fn validate(&self) -> Result<(), WireError> {
        if self.amount.is_zero() {
            return Err(Self::invalid("zero amount"));
        }
        Ok(())
    }
}

/// SendCoins `PA → PY: EncC_1 = E*_I(Coin_1..Coin_n, ID_PY, TID_PY, H(Com))`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendCoins {
    /// `E*_I(labels::PAY_SEND_COINS, SendCoinsBody)`: opaque to the payee.
    pub enc_c1: Envelope,
}

impl WireMessage for SendCoins {
    const NAME: &'static str = "SendCoins";
    const BYTES_MAX: usize = SEND_COINS_BYTES_MAX;
}

/// What `EncC_1` holds; only the issuer reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendCoinsBody {
    pub coins: CoinList,
    /// The payee the payer meant (P3).
    pub id_py: ParticipantId,
    pub tid_py: PaymentTid,
    pub com_hash: ComHash,
}

impl WireMessage for SendCoinsBody {
    const NAME: &'static str = "SendCoinsBody";
    const BYTES_MAX: usize = SEND_COINS_BODY_BYTES_MAX;

    fn validate(&self) -> Result<(), WireError> {
        validate_coins::<Self>(&self.coins)
    }
}

/// The payee's choice of what it gets for the coins (`V-DESC`'s option).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum VOption {
    /// Fresh coins of this spec.
    Refresh { spec: CoinSpec },
    /// An ACH credit to this account (the payee's enrolled redeemer account:
    /// the issuer checks it is).
    Redeem { bank_account: BankAccount },
    /// A credit to the payee's aggregated merchant balance.
    Aggregate,
}

impl VOption {
    /// The ledger's name for this choice.
    pub fn payment_option(&self) -> PaymentOption {
        match self {
            VOption::Refresh { .. } => PaymentOption::Refresh,
            VOption::Redeem { .. } => PaymentOption::Redeem,
            VOption::Aggregate => PaymentOption::Aggregate,
        }
    }
}

/// `V-DESC`: the option and, always, the amount the coins must total.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VDesc {
    pub amount: Amount,
    pub option: VOption,
}

impl VDesc {
    /// Checks what the issuer would refuse in V-DESC: a zero amount, a coin
    /// spec that is invalid, asks for more coins than one transaction may
    /// issue, or does not total the amount. Callers check it before they
    /// journal or send anything.
    pub fn check(&self) -> Result<(), &'static str> {
        if self.amount.is_zero() {
            return Err("zero amount");
        }
        if let VOption::Refresh { spec } = &self.option {
            spec.validate().map_err(|_| "invalid coin spec")?;
            if spec.n_coins() > ledger::constants::COINS_PER_TX_MAX as u64 {
                return Err("coin spec asks for more coins than one transaction may issue");
            }
            if spec.total().ok() != Some(self.amount) {
                return Err("coin spec does not total the amount");
            }
        }
        Ok(())
    }
}

/// Which process a validation is: a payment to someone else, or one of the
/// three payments to oneself. Only refresh may spend expired coins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ValidationKind {
    Payment,
    /// Coins in, coins of another spec and equal total out.
    Change,
    /// Expired coins (within the grace period) in, fresh coins out.
    Refresh,
    /// Coins in, an ACH credit to the holder's account out.
    Redeem,
}

impl ValidationKind {
    /// The ledger's cause for the coins this validation spends.
    pub fn spend_cause(self, option: &VOption) -> SpendCause {
        match self {
            ValidationKind::Payment => SpendCause::Payment(option.payment_option()),
            ValidationKind::Change => SpendCause::Change,
            ValidationKind::Refresh => SpendCause::Refresh,
            ValidationKind::Redeem => SpendCause::Redeem,
        }
    }
}

/// ValidationRequest `PY → I: E*_I(ID_PY, ID_PA, K_PY, TID_PY, V-DESC, EncC_1)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidationRequest {
    /// `E*_I(labels::PAY_VALIDATION, ValidationBody)`.
    pub envelope: Envelope,
}

impl WireMessage for ValidationRequest {
    const NAME: &'static str = "ValidationRequest";
    const BYTES_MAX: usize = VALIDATION_BYTES_MAX;
}

/// What a [`ValidationRequest`]'s envelope holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidationBody {
    pub id_py: ParticipantId,
    pub id_pa: ParticipantId,
    pub k_py: KeyShare,
    pub tid_py: PaymentTid,
    pub kind: ValidationKind,
    pub v_desc: VDesc,
    /// The payer's SendCoins envelope, untouched.
    pub enc_c1: Envelope,
    /// `S_PY(labels::PAY_VALIDATION_SIGNATURE, every field above)`, checked
    /// under `ID_PY`'s registered key: whoever saw the payer's SendCoins
    /// cannot submit it as the payee with another option or coin spec. It
    /// travels inside the envelope, so it says nothing to an eavesdropper,
    /// and the payee signs `EncC_1` as opaque bytes (it still never sees
    /// the coins).
    pub signature: Signature,
}

impl ValidationBody {
    /// The bytes the payee signs.
    pub fn signed_bytes(
        id_py: &ParticipantId,
        id_pa: &ParticipantId,
        k_py: &KeyShare,
        tid_py: &PaymentTid,
        kind: ValidationKind,
        v_desc: &VDesc,
        enc_c1: &Envelope,
    ) -> Vec<u8> {
        transcript(&(id_py, id_pa, k_py, tid_py, kind, v_desc, enc_c1))
    }
}

impl WireMessage for ValidationBody {
    const NAME: &'static str = "ValidationBody";
    const BYTES_MAX: usize = VALIDATION_BODY_BYTES_MAX;

    fn validate(&self) -> Result<(), WireError> {
        self.v_desc.check().map_err(Self::invalid)?;
        let to_self = self.id_pa == self.id_py;
        let fits = match (self.kind, &self.v_desc.option) {
            (ValidationKind::Payment, _) => true,
            (ValidationKind::Change | ValidationKind::Refresh, VOption::Refresh { .. }) => to_self,
            (ValidationKind::Redeem, VOption::Redeem { .. }) => to_self,
            _ => false,
        };
        if !fits {
            return Err(Self::invalid(
                "change, refresh and redeem are payments to oneself with the matching option",
            ));
        }
        Ok(())
    }
}

/// What the issuer did for a redeem or aggregate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReceiptKind {
    /// An ACH credit to the payee's account was ordered.
    Redeemed,
    /// The payee's aggregated balance was credited.
    Aggregated,
}

/// The issuer's signed receipt for a redeem or aggregate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuerReceipt {
    pub id_py: ParticipantId,
    pub tid_py: PaymentTid,
    pub kind: ReceiptKind,
    pub amount: Amount,
    /// The serials spent, so the payee (and payer) can match it.
    pub inputs: CoinSerials,
    pub issued_at: Timestamp,
    /// `S_I(labels::PAY_ISSUER_RECEIPT, all the fields above)`.
    pub signature: Signature,
}

impl IssuerReceipt {
    pub fn signed_bytes(
        id_py: &ParticipantId,
        tid_py: &PaymentTid,
        kind: ReceiptKind,
        amount: Amount,
        inputs: &CoinSerials,
        issued_at: Timestamp,
    ) -> Vec<u8> {
        transcript(&(id_py, tid_py, kind, amount, inputs, issued_at))
    }
}

/// What a payment's Issuance1 says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PaymentOutcome {
    /// Refresh (and change, refresh-to-self): `E*_PY(K_I, ID_I), e_K(NewCoins),
    /// mac_K("vc/issue", ID_I, TID_PY, e_K(NewCoins))`, `K = K_I ⊕ K_PY`.
    Refreshed {
        key_envelope: Envelope,
        enc_coins: Ciphertext,
        mac: MacTag,
    },
    /// Redeem and aggregate: the issuer's signed receipt.
    Receipt(IssuerReceipt),
    /// P4: bad or spent coins, or an amount mismatch.
    Rejected(SignedReject),
}

/// Issuance1 of a payment `I → PY`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentIssuance1 {
    pub tid_py: PaymentTid,
    pub outcome: PaymentOutcome,
}

impl PaymentIssuance1 {
    /// The bytes `mac_K` covers in [`PaymentOutcome::Refreshed`].
    pub fn mac_bytes(id_i: &ParticipantId, tid_py: &PaymentTid, enc_coins: &Ciphertext) -> Vec<u8> {
        transcript(&(id_i, tid_py, enc_coins))
    }
}

impl WireMessage for PaymentIssuance1 {
    const NAME: &'static str = "PaymentIssuance1";
    const BYTES_MAX: usize = ISSUANCE_BYTES_MAX + ENVELOPE_OVERHEAD_BYTES_MAX;
}

/// What `E*_PY(K_I, ID_I)` holds (also the refund's key envelope).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuerKeyBody {
    pub k_i: KeyShare,
    pub id_i: ParticipantId,
}

impl WireMessage for IssuerKeyBody {
    const NAME: &'static str = "IssuerKeyBody";
    const BYTES_MAX: usize = SMALL_MESSAGE_BYTES_MAX;
}

/// Issuance2 of a payment `PY → I: mac_K("vc/ack", TID_PY)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentIssuance2 {
    pub id_py: ParticipantId,
    pub tid_py: PaymentTid,
    /// `mac_K(labels::PAY_ACK, ID_PY, TID_PY)`.
    pub mac: MacTag,
}

impl PaymentIssuance2 {
    pub fn mac_bytes(id_py: &ParticipantId, tid_py: &PaymentTid) -> Vec<u8> {
        transcript(&(id_py, tid_py))
    }
}

impl WireMessage for PaymentIssuance2 {
    const NAME: &'static str = "PaymentIssuance2";
    const BYTES_MAX: usize = 512;
}

/// Receipt `PY → PA: S_PY("vc/receipt", H(Com))`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayeeReceipt {
    pub com_hash: ComHash,
    pub signature: Signature,
}

impl PayeeReceipt {
    pub fn signed_bytes(com_hash: &ComHash) -> Vec<u8> {
        transcript(com_hash)
    }
}

/// What the payee tells the payer after validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PaymentResult {
    /// Paid; the payee's receipt (optional in the paper: `None` if the payee
    /// does not sign).
    Paid(Option<PayeeReceipt>),
    /// The issuer refused the coins; its signed statement, passed on.
    Rejected(SignedReject),
}

impl WireMessage for PaymentResult {
    const NAME: &'static str = "PaymentResult";
    const BYTES_MAX: usize = SIGNED_REJECT_BYTES_MAX + 16;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pid(s: &str) -> ParticipantId {
        ParticipantId::new(s).expect("valid id")
    }

    fn com() -> Com {
        Com {
            p_desc: PDesc::new("a book").expect("short"),
            tid_py: PaymentTid::from_bytes([1; 16]),
            id_pa: pid("alice"),
            id_py: pid("bob"),
            id_i: pid("issuer"),
            amount: Amount::from_minor(500),
        }
    }

    #[test]
    fn com_hash_changes_with_every_field() {
        let base = com().hash();
        assert_eq!(base, com().hash());
        let mut c = com();
        c.p_desc = PDesc::new("a boot").expect("short");
        assert_ne!(c.hash(), base);
        let mut c = com();
        c.tid_py = PaymentTid::from_bytes([2; 16]);
        assert_ne!(c.hash(), base);
        let mut c = com();
        c.id_pa = pid("mallory");
        assert_ne!(c.hash(), base);
        let mut c = com();
        c.id_py = pid("mallory");
        assert_ne!(c.hash(), base);
        let mut c = com();
        c.id_i = pid("other-issuer");
        assert_ne!(c.hash(), base);
        let mut c = com();
        c.amount = Amount::from_minor(501);
        assert_ne!(c.hash(), base);
        // Payer and payee swapped is another commitment.
        let mut c = com();
        std::mem::swap(&mut c.id_pa, &mut c.id_py);
        assert_ne!(c.hash(), base);
    }

    #[test]
    fn v_desc_refresh_spec_must_total_the_amount() {
        let spec = CoinSpec::single(Amount::from_minor(100)).expect("spec");
        let ok = VDesc {
            amount: Amount::from_minor(100),
            option: VOption::Refresh { spec: spec.clone() },
        };
        assert!(ok.check().is_ok());
        let off = VDesc {
            amount: Amount::from_minor(99),
            option: VOption::Refresh { spec },
        };
        assert!(off.check().is_err());
        let zero = VDesc {
            amount: Amount::ZERO,
            option: VOption::Aggregate,
        };
        assert!(zero.check().is_err());
    }

    #[test]
    fn validation_kinds_map_to_the_ledgers_spend_causes() {
        let agg = VOption::Aggregate;
        assert_eq!(
            ValidationKind::Payment.spend_cause(&agg),
            SpendCause::Payment(PaymentOption::Aggregate)
        );
        assert_eq!(ValidationKind::Change.spend_cause(&agg), SpendCause::Change);
        assert_eq!(
            ValidationKind::Refresh.spend_cause(&agg),
            SpendCause::Refresh
        );
        assert_eq!(ValidationKind::Redeem.spend_cause(&agg), SpendCause::Redeem);
    }
}
