//! Who the purse belongs to and whom it trusts: the participant's identity
//! and key pair, the cipher suite, and the issuer's identity, public key and
//! gateway URL.
//!
//! The private key is stored as PKCS#8 DER inside the purse file (the
//! `meta` table), not in a separate key file: the purse file is created
//! 0600 and refused when group or others can read it, and keeping one file
//! means a backup or a deletion never separates coins from the key that
//! opens their sessions.

use std::fmt;

use ledger::{ParticipantId, PublicKeyDer};
use protocol::crypto::{PublicKey, SecretKey, SuiteId};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::constants::{KEY_DER_BYTES_MAX, URL_BYTES_MAX};
use crate::error::{PurseError, check_len};

/// A private key in PKCS#8 DER: zeroed on drop, never shown by `Debug`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct SecretKeyDer(Vec<u8>);

impl SecretKeyDer {
    pub fn new(pkcs8_der: Vec<u8>) -> Result<SecretKeyDer, PurseError> {
        check_len("private key", pkcs8_der.len(), KEY_DER_BYTES_MAX)?;
        Ok(SecretKeyDer(pkcs8_der))
    }

    pub fn expose_pkcs8_der(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SecretKeyDer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKeyDer(<redacted>)")
    }
}

/// The participant this purse belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurseProfile {
    /// `ID_X`: the registered identity, possibly a pseudonym.
    pub participant: ParticipantId,
    /// `PK_X` as SPKI DER.
    pub public_key: PublicKeyDer,
    /// `SK_X` as PKCS#8 DER.
    pub secret_key: SecretKeyDer,
    pub suite: SuiteId,
    /// `CERT_X` from registration (its wire encoding), once registered.
    pub certificate: Option<Vec<u8>>,
}

impl PurseProfile {
    /// A profile with a fresh key pair of the kind `suite` needs: Ed25519 +
    /// X25519 under `dhaes`, RSA of `bits` bits under `aes256` and `tdes`.
    pub fn generate(
        participant: ParticipantId,
        suite: SuiteId,
        bits: usize,
    ) -> Result<PurseProfile, PurseError> {
        let sk = SecretKey::generate_for(suite, bits)?;
        PurseProfile::from_secret_key(participant, suite, &sk)
    }

    /// A profile around an existing private key; refuses one that cannot
    /// serve `suite`.
    pub fn from_secret_key(
        participant: ParticipantId,
        suite: SuiteId,
        sk: &SecretKey,
    ) -> Result<PurseProfile, PurseError> {
        sk.public().check_suite(suite)?;
        let der = sk.to_pkcs8_der()?;
        Ok(PurseProfile {
            participant,
            public_key: sk.public().to_ledger(),
            secret_key: SecretKeyDer::new(der.to_vec())?,
            suite,
            certificate: None,
        })
    }

    /// `SK_X`, parsed from its PKCS#8 DER; refused if it cannot serve the
    /// profile's suite.
    pub fn secret_key(&self) -> Result<SecretKey, PurseError> {
        let sk = SecretKey::from_pkcs8_der(self.secret_key.expose_pkcs8_der())?;
        sk.public().check_suite(self.suite)?;
        Ok(sk)
    }

    /// `PK_X`, parsed from its SPKI DER.
    pub fn public_key(&self) -> Result<PublicKey, PurseError> {
        Ok(PublicKey::from_ledger(&self.public_key)?)
    }

    pub(crate) fn validate(&self) -> Result<(), PurseError> {
        check_len("public key", self.public_key.0.len(), KEY_DER_BYTES_MAX)?;
        check_len(
            "private key",
            self.secret_key.expose_pkcs8_der().len(),
            KEY_DER_BYTES_MAX,
        )?;
        if let Some(cert) = &self.certificate {
            check_len("certificate", cert.len(), KEY_DER_BYTES_MAX)?;
        }
        Ok(())
    }
}

/// A key change sent (or about to be) and not yet answered: the new key
/// and the exact request, kept so that a run cut short sends the same
/// request again and never loses the key the issuer may already hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingKeyChange {
    /// The new `SK_X` as PKCS#8 DER.
    pub secret_key: SecretKeyDer,
    /// The `KeyChangeRequest`'s wire encoding.
    pub request: Vec<u8>,
}

impl PendingKeyChange {
    pub(crate) fn validate(&self) -> Result<(), PurseError> {
        check_len(
            "private key",
            self.secret_key.expose_pkcs8_der().len(),
            KEY_DER_BYTES_MAX,
        )?;
        check_len(
            "key change request",
            self.request.len(),
            2 * KEY_DER_BYTES_MAX,
        )
    }
}

/// The issuer this purse deals with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuerInfo {
    /// `ID_I`.
    pub issuer: ParticipantId,
    /// `PK_I` as SPKI DER.
    pub public_key: PublicKeyDer,
    /// Base URL of the issuer's gateway, e.g. `http://127.0.0.1:8080`.
    pub gateway_url: String,
}

impl IssuerInfo {
    /// `PK_I`, parsed from its SPKI DER.
    pub fn key(&self) -> Result<PublicKey, PurseError> {
        Ok(PublicKey::from_ledger(&self.public_key)?)
    }

    pub(crate) fn validate(&self) -> Result<(), PurseError> {
        check_len(
            "issuer public key",
            self.public_key.0.len(),
            KEY_DER_BYTES_MAX,
        )?;
        check_len("gateway url", self.gateway_url.len(), URL_BYTES_MAX)?;
        if !(self.gateway_url.starts_with("http://") || self.gateway_url.starts_with("https://")) {
            return Err(PurseError::Invalid(
                "gateway url must start with http:// or https://",
            ));
        }
        Ok(())
    }
}
