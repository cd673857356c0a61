//! The messages of the card protocols (`docs/protocol.md`, "Card cash") and the
//! exact bytes each MAC covers. Labels separate every message and direction,
//! so no MAC of one flow verifies as another.
//!
//! Load / Unload: `L1` (card → AG → LUS, S1 under the load key), `L2`
//! (LUS → AG → card, S2 under the load key), `L3` (card → LUS, S3 under the
//! completion key) or a [`RejectProof`] revealing `R'_SM`.
//! Purchase: [`PurchaseRequest`] (PSAM → card) and [`PurchaseProof`] (card →
//! PSAM), both under the card's purchase key.

use ledger::{Amount, CardId};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use sha2::{Digest, Sha256};

use crate::constants::{MESSAGE_BYTES_MAX, NONCE_BYTES};
use crate::crypto::{Mac, MacInput};

/// A nonce (`R_SM`, `R'_SM`, `R_LUS`, `R_PSAM`).
pub type Nonce = [u8; NONCE_BYTES];

/// Version byte in front of every encoded message.
pub const WIRE_VERSION: u8 = 1;

/// Which way value moves between the card and the LUS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Direction {
    Load,
    Unload,
}

/// Identity of a purchase SAM (secure module in a merchant's device).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PsamId(pub [u8; 8]);

impl PsamId {
    /// The PSAM's id in the shape key diversification takes.
    pub fn as_card_id(&self) -> CardId {
        CardId::from_bytes(self.0)
    }
}

/// What a card says about its last transaction in L1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Outcome {
    Committed,
    Rejected,
}

/// L1: the card asks for a load (or unload). `commitment` is
/// `H(SM_ID ‖ NT ‖ R'_SM)`, which a later reject proof opens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct L1 {
    pub direction: Direction,
    pub card: CardId,
    pub nt: u32,
    pub amount: Amount,
    pub balance: Amount,
    pub balance_max: Amount,
    pub last_nt: u32,
    pub last_outcome: Option<Outcome>,
    pub r_sm: Nonce,
    pub commitment: [u8; 32],
    pub s1: Mac,
}

/// L2: the LUS authorises the pending transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct L2 {
    pub direction: Direction,
    pub card: CardId,
    pub nt: u32,
    pub amount: Amount,
    pub r_lus: Nonce,
    pub s2: Mac,
}

/// L3: the card proves it credited (load) or debited (unload).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct L3 {
    pub direction: Direction,
    pub card: CardId,
    pub nt: u32,
    pub amount: Amount,
    pub new_balance: Amount,
    pub s3: Mac,
}

/// The card's proof that it will never complete `nt`: it reveals `R'_SM`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectProof {
    pub direction: Direction,
    pub card: CardId,
    pub nt: u32,
    pub r_sm_prime: Nonce,
}

/// What a card answers about one of its transactions when presented again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CardProof {
    Completed(L3),
    Rejected(RejectProof),
    /// Still in the card's pending slot: an L2 may still complete it.
    Pending,
    /// Not in the card's short log any more (or never seen).
    Unknown,
}

/// PSAM → card: debit `amount` for this device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurchaseRequest {
    pub psam: PsamId,
    pub psam_nt: u32,
    pub card: CardId,
    pub amount: Amount,
    pub r_psam: Nonce,
    pub mac: Mac,
}

/// Card → PSAM: the card debited `amount` as its transaction `nt`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurchaseProof {
    pub card: CardId,
    pub nt: u32,
    pub psam: PsamId,
    pub psam_nt: u32,
    pub amount: Amount,
    pub balance_after: Amount,
    pub r_psam: Nonce,
    pub mac: Mac,
}

fn dir_label(d: Direction, load: &'static str, unload: &'static str) -> &'static str {
    match d {
        Direction::Load => load,
        Direction::Unload => unload,
    }
}

/// `H(SM_ID ‖ NT ‖ R'_SM)`.
pub fn reject_commitment(card: &CardId, nt: u32, r_sm_prime: &Nonce) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"vc/card/reject-commitment");
    h.update(card.as_bytes());
    h.update(nt.to_be_bytes());
    h.update(r_sm_prime);
    h.finalize().into()
}

impl L1 {
    /// The bytes S1 covers: everything in L1 but S1.
    pub fn s1_input(&self) -> MacInput {
        MacInput::new(dir_label(
            self.direction,
            "vc/card/load/L1",
            "vc/card/unload/L1",
        ))
        .bytes(self.card.as_bytes())
        .u32(self.nt)
        .u64(self.amount.minor_units())
        .u64(self.balance.minor_units())
        .u64(self.balance_max.minor_units())
        .u32(self.last_nt)
        .u8(match self.last_outcome {
            None => 0,
            Some(Outcome::Committed) => 1,
            Some(Outcome::Rejected) => 2,
        })
        .bytes(&self.r_sm)
        .bytes(&self.commitment)
    }
}

/// The bytes S2 covers: `"L2" ‖ SM_ID ‖ NT ‖ Amount ‖ R_SM ‖ R_LUS ‖ S1`.
pub fn s2_input(
    direction: Direction,
    card: &CardId,
    nt: u32,
    amount: Amount,
    r_sm: &Nonce,
    r_lus: &Nonce,
    s1: &Mac,
) -> MacInput {
    MacInput::new(dir_label(direction, "vc/card/load/L2", "vc/card/unload/L2"))
        .bytes(card.as_bytes())
        .u32(nt)
        .u64(amount.minor_units())
        .bytes(r_sm)
        .bytes(r_lus)
        .bytes(s1.as_bytes())
}

/// The bytes S3 covers: `"L3" ‖ SM_ID ‖ NT ‖ Amount ‖ NewBal ‖ R_LUS`.
pub fn s3_input(
    direction: Direction,
    card: &CardId,
    nt: u32,
    amount: Amount,
    new_balance: Amount,
    r_lus: &Nonce,
) -> MacInput {
    MacInput::new(dir_label(direction, "vc/card/load/L3", "vc/card/unload/L3"))
        .bytes(card.as_bytes())
        .u32(nt)
        .u64(amount.minor_units())
        .u64(new_balance.minor_units())
        .bytes(r_lus)
}

impl PurchaseRequest {
    pub fn mac_input(&self) -> MacInput {
        MacInput::new("vc/card/purchase/P1")
            .bytes(self.card.as_bytes())
            .bytes(&self.psam.0)
            .u32(self.psam_nt)
            .u64(self.amount.minor_units())
            .bytes(&self.r_psam)
    }
}

impl PurchaseProof {
    pub fn mac_input(&self) -> MacInput {
        MacInput::new("vc/card/purchase/P2")
            .bytes(self.card.as_bytes())
            .u32(self.nt)
            .bytes(&self.psam.0)
            .u32(self.psam_nt)
            .u64(self.amount.minor_units())
            .u64(self.balance_after.minor_units())
            .bytes(&self.r_psam)
    }
}

/// Why a message could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    #[error("message of {0} bytes exceeds the {MESSAGE_BYTES_MAX}-byte limit")]
    TooLong(usize),
    #[error("message is empty")]
    Empty,
    #[error("unknown message version {0}")]
    UnknownVersion(u8),
    #[error("malformed message")]
    Malformed,
}

/// Version byte, then postcard.
pub fn encode<T: Serialize>(msg: &T) -> Vec<u8> {
    let out = vec![WIRE_VERSION];
    // Encoding our own types into a Vec cannot fail.
    #[allow(clippy::expect_used)]
    postcard::to_extend(msg, out).expect("postcard encoding into a Vec")
}

/// Bounded decoding of a message written by [`encode`].
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, WireError> {
    if bytes.len() > MESSAGE_BYTES_MAX {
        return Err(WireError::TooLong(bytes.len()));
    }
    let (&v, body) = bytes.split_first().ok_or(WireError::Empty)?;
    if v != WIRE_VERSION {
        return Err(WireError::UnknownVersion(v));
    }
    match postcard::take_from_bytes(body) {
        Ok((msg, [])) => Ok(msg),
        _ => Err(WireError::Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_garbage_is_refused() {
        let l2 = L2 {
            direction: Direction::Load,
            card: CardId::from_bytes([1; 8]),
            nt: 3,
            amount: Amount::from_minor(500),
            r_lus: [9; 16],
            s2: Mac::from_slice(&[1; 8]).expect("8 bytes"),
        };
        let bytes = encode(&l2);
        assert_eq!(decode::<L2>(&bytes), Ok(l2));
        assert_eq!(decode::<L2>(&[]), Err(WireError::Empty));
        assert_eq!(decode::<L2>(&[2, 0]), Err(WireError::UnknownVersion(2)));
        assert!(decode::<L2>(&bytes[..bytes.len() - 1]).is_err());
        assert!(decode::<L2>(&vec![1; MESSAGE_BYTES_MAX + 1]).is_err());
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert_eq!(decode::<L2>(&trailing), Err(WireError::Malformed));
    }

    #[test]
    fn load_and_unload_inputs_differ() {
        let card = CardId::from_bytes([1; 8]);
        let a = s3_input(
            Direction::Load,
            &card,
            1,
            Amount::from_minor(1),
            Amount::from_minor(1),
            &[0; 16],
        );
        let b = s3_input(
            Direction::Unload,
            &card,
            1,
            Amount::from_minor(1),
            Amount::from_minor(1),
            &[0; 16],
        );
        assert_ne!(a.mac(), b.mac());
    }
}
