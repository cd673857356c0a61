//! Registration (`docs/protocol.md`, "Registration"): the participant proves
//! it holds the secret key of the public key it registers, and the issuer,
//! acting as CA, answers with a certificate `CERT_RG = S_I(ID_RG, PK_RG, expiry)`.

use ledger::{ParticipantId, Timestamp};
use serde::{Deserialize, Serialize};

use super::limits::{CERTIFICATE_BYTES_MAX, SMALL_MESSAGE_BYTES_MAX};
use super::{WireMessage, transcript};
use crate::crypto::{Nonce, PublicKey, Signature};

/// Registration 1: `RG → I: ID_RG, PK_RG, S_RG("vc/register", ID_RG, PK_RG, R)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterRequest {
    pub id: ParticipantId,
    pub public_key: PublicKey,
    /// `R`: makes the proof of possession fresh.
    pub r: Nonce,
    /// `S_RG(labels::REGISTER_PROOF, ID_RG, PK_RG, R)`.
    pub proof: Signature,
}

impl RegisterRequest {
    /// The bytes the proof of possession signs.
    pub fn signed_bytes(id: &ParticipantId, public_key: &PublicKey, r: &Nonce) -> Vec<u8> {
        transcript(&(id, public_key, r))
    }
}

impl WireMessage for RegisterRequest {
    const NAME: &'static str = "RegisterRequest";
    const BYTES_MAX: usize = SMALL_MESSAGE_BYTES_MAX;
}

/// Registration 2: `CERT_RG = S_I(ID_RG, PK_RG, expiry)`. Also carried in an
/// invoice as `CERT_PY`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Certificate {
    pub id: ParticipantId,
    pub public_key: PublicKey,
    pub expiry: Timestamp,
    /// `S_I(labels::CERTIFICATE, ID, PK, expiry)`.
    pub signature: Signature,
}

impl Certificate {
    /// The bytes the issuer signs.
    pub fn signed_bytes(id: &ParticipantId, public_key: &PublicKey, expiry: Timestamp) -> Vec<u8> {
        transcript(&(id, public_key, expiry))
    }
}

impl WireMessage for Certificate {
    const NAME: &'static str = "Certificate";
    const BYTES_MAX: usize = CERTIFICATE_BYTES_MAX;
}

/// The issuer's own participant id: the `ID_I` it signs its statements
/// under.
pub const ISSUER_ID: &str = "issuer";

/// Participant ids that name the issuer or one of its services, refused at
/// registration so that nobody can be certified under a name a payer or an
/// operator would take for the system itself. Compared by
/// [`is_reserved_id`]: case-insensitively, separators ignored, common
/// look-alike characters folded, and against each separated part of the id.
pub const RESERVED_PARTICIPANT_IDS: &[&str] = &[
    ISSUER_ID,
    "issuing",
    "operator",
    "admin",
    "administrator",
    "root",
    "system",
    "bank",
    "user-index",
    "auditor",
    "audit",
    "mint",
    "card-agency",
    "agency",
    "card-bridge",
    "load-server",
    "lus",
    "varietycash",
    "support",
    "security",
];

/// Folds one character to the letter it is most often used to imitate, so
/// `1ssuer`, `IssueR` and `i55uer` compare equal to `issuer`.
fn fold_look_alike(c: char) -> char {
    match c.to_ascii_lowercase() {
        '0' => 'o',
        '1' | 'l' | '!' | '|' => 'i',
        '3' => 'e',
        '4' => 'a',
        '5' => 's',
        '7' => 't',
        '8' => 'b',
        other => other,
    }
}

/// Pairs of letters read as one letter in most fonts (`adrnin`, `vvallet`),
/// folded after the single characters.
const LOOK_ALIKE_PAIRS: &[(&str, &str)] = &[("rn", "m"), ("vv", "w")];

/// An id (or one part of it) with separators dropped and look-alikes folded.
fn folded(s: &str) -> String {
    let single: String = s
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(fold_look_alike)
        .collect();
    LOOK_ALIKE_PAIRS
        .iter()
        .fold(single, |text, (pair, letter)| text.replace(pair, letter))
}

/// Whether `id` names the issuer or one of its services: the whole id, or
/// any part of it between separators (`.`, `_`, `-`, `@`), with trailing
/// digits dropped, equals a reserved id once folded. `the-bank`, `Admin2`
/// `0perator` and `adrnin` are reserved; `bankside-tea` and `alice` are not.
pub fn is_reserved_id(id: &ParticipantId) -> bool {
    let reserved: Vec<String> = RESERVED_PARTICIPANT_IDS.iter().map(|r| folded(r)).collect();
    let is_reserved = |part: &str| {
        let part = part.trim_end_matches(|c: char| c.is_ascii_digit());
        let part = folded(part);
        !part.is_empty() && reserved.contains(&part)
    };
    is_reserved(id.as_str()) || id.as_str().split(['.', '_', '-', '@']).any(is_reserved)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reserved(s: &str) -> bool {
        is_reserved_id(&ParticipantId::new(s).expect("a valid id"))
    }

    #[test]
    fn names_of_the_issuer_and_its_services_are_reserved() {
        for id in [
            "issuer",
            "ISSUER",
            "Issuer",
            "1ssuer",
            "i55uer",
            "is.suer",
            "issuer2",
            "the-issuer",
            "operator",
            "0perator",
            "admin",
            "Admin-7",
            "bank",
            "the_bank",
            "user-index",
            "userindex",
            "USER_INDEX",
            "card-agency",
            "cardagency",
            "support@issuer",
            "adrnin",
            "ADRNIN",
            "the-rnint",
            "systern",
        ] {
            assert!(reserved(id), "{id} should be reserved");
        }
    }

    #[test]
    fn ordinary_names_are_not_reserved() {
        for id in [
            "alice",
            "bob",
            "shop",
            "tea-shop",
            "bankside-tea",
            "carol@example",
            "mallory-p2rn8",
            "adminton",
            "mints-and-more",
        ] {
            assert!(!reserved(id), "{id} should not be reserved");
        }
    }
}
