//! The user index's public key in the issuer's directory
//! ([`USER_INDEX_PUBLIC_KEY_FILE`]): what identities and bank accounts are
//! sealed to. The private half is made and kept by the user index in its
//! own directory (`varietycash index init`); the issuer never holds it.
//!
//! An issuer started without one (library tests, benchmarks, an issuer
//! run without a user index) seals to a fresh key whose private half is
//! dropped at once: its identities can then be opened by nobody.

use std::path::Path;

use protocol::crypto::{PublicKey, SecretKey, SuiteId};

use super::core::IssuerError;

/// The user index's public key (SPKI DER), in the issuer's directory.
pub const USER_INDEX_PUBLIC_KEY_FILE: &str = "user-index.pub";

/// Reads the user index's public key from `dir`, making a throwaway one
/// (private half dropped) if there is none.
pub(crate) fn load(dir: &Path, suite: SuiteId, rsa_bits: usize) -> Result<PublicKey, IssuerError> {
    let path = dir.join(USER_INDEX_PUBLIC_KEY_FILE);
    if path.exists() {
        let key = PublicKey::read_spki(&path)?;
        key.check_suite(suite)?;
        return Ok(key);
    }
    tracing::warn!(
        "no user-index key configured: identities are sealed to a key nobody holds \
         (give the index's public key to `issuer init --user-index-key`)"
    );
    let public = SecretKey::generate_for(suite, rsa_bits)?.public();
    install(dir, &public)?;
    Ok(public)
}

/// Keeps `key` as the user index's public key in the issuer's directory
/// (0600 like every file the issuer keeps: public, but nobody else's
/// business which index this issuer seals to).
pub fn install(dir: &Path, key: &PublicKey) -> Result<(), IssuerError> {
    ledger::private_file::write_private(&dir.join(USER_INDEX_PUBLIC_KEY_FILE), &key.to_spki_der())?;
    Ok(())
}
