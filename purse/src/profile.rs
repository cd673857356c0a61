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
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::constants::{KEY_DER_BYTES_MAX, SUITE_NAME_BYTES_MAX, URL_BYTES_MAX};
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

/// A cipher suite's name as the protocol spells it (`aes256`, `tdes`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SuiteName(String);

impl SuiteName {
    pub fn new(name: impl Into<String>) -> Result<SuiteName, PurseError> {
        let name = name.into();
        check_len("suite name", name.len(), SUITE_NAME_BYTES_MAX)?;
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(PurseError::Invalid("suite name"));
        }
        Ok(SuiteName(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
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
    pub suite: SuiteName,
    /// `CERT_X` from registration, once registered.
    pub certificate: Option<Vec<u8>>,
}

impl PurseProfile {
    pub(crate) fn validate(&self) -> Result<(), PurseError> {
        check_len("public key", self.public_key.0.len(), KEY_DER_BYTES_MAX)?;
        check_len(
            "private key",
            self.secret_key.expose_pkcs8_der().len(),
            KEY_DER_BYTES_MAX,
        )?;
        SuiteName::new(self.suite.as_str())?;
        if let Some(cert) = &self.certificate {
            check_len("certificate", cert.len(), KEY_DER_BYTES_MAX)?;
        }
        Ok(())
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
