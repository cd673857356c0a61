//! Identity sealing for the user index: identities and bank accounts enter
//! events only as `E*` envelopes under the user-index key, with distinct
//! labels so that a sealed account can never be opened as an identity.
//! Sealing is randomized: the same identity seals differently every time, so
//! the log does not link a participant's events.

use ledger::{BankAccount, ParticipantId, SealedBankAccount, SealedIdentity};

use super::envelope::Envelope;
use super::error::CryptoError;
use super::keys::{PublicKey, SecretKey};
use super::suite::SuiteId;

/// Label of a sealed [`ParticipantId`].
pub const SEAL_IDENTITY_LABEL: &str = "vc/seal/identity";
/// Label of a sealed [`BankAccount`].
pub const SEAL_ACCOUNT_LABEL: &str = "vc/seal/account";

/// Seals identities and accounts to the user-index public key. Anyone who
/// writes events may hold one; it cannot open what it seals.
#[derive(Debug, Clone)]
pub struct IdentitySealer {
    user_index_key: PublicKey,
    suite: SuiteId,
}

impl IdentitySealer {
    /// Refuses a key that cannot serve `suite` ([`CryptoError::KeyKindMismatch`]),
    /// so that sealing itself cannot fail later.
    pub fn new(user_index_key: PublicKey, suite: SuiteId) -> Result<IdentitySealer, CryptoError> {
        user_index_key.check_suite(suite)?;
        Ok(IdentitySealer {
            user_index_key,
            suite,
        })
    }

    pub fn seal_identity(&self, id: &ParticipantId) -> SealedIdentity {
        let bytes = self.seal(SEAL_IDENTITY_LABEL, id.as_str().as_bytes());
        #[allow(clippy::expect_used)]
        SealedIdentity::from_sealed_bytes(bytes)
            .expect("an envelope of a short field under a key of at most 4096 bits fits")
    }

    pub fn seal_account(&self, account: &BankAccount) -> SealedBankAccount {
        let bytes = self.seal(SEAL_ACCOUNT_LABEL, account.as_str().as_bytes());
        #[allow(clippy::expect_used)]
        SealedBankAccount::from_sealed_bytes(bytes)
            .expect("an envelope of a short field under a key of at most 4096 bits fits")
    }

    /// # Panics
    /// If the OS has no randomness (OAEP and HPKE need fresh randomness).
    fn seal(&self, label: &str, field: &[u8]) -> Vec<u8> {
        // Fields are at most 64 bytes (ledger bounds), the key serves the
        // suite (checked by `new`), and RSA keys have at least 2048 bits, so
        // this is one OAEP block or one short HPKE ciphertext.
        #[allow(clippy::expect_used)]
        self.user_index_key
            .seal(self.suite, label, field)
            .expect("sealing a short field fails only without OS randomness")
            .to_bytes()
    }
}

/// Opens what [`IdentitySealer`] sealed. Only the user index holds one.
#[derive(Debug, Clone)]
pub struct IdentityUnsealer {
    user_index_key: SecretKey,
}

impl IdentityUnsealer {
    pub fn new(user_index_key: SecretKey) -> IdentityUnsealer {
        IdentityUnsealer { user_index_key }
    }

    /// The matching sealer; refuses a suite the key cannot serve.
    pub fn sealer(&self, suite: SuiteId) -> Result<IdentitySealer, CryptoError> {
        IdentitySealer::new(self.user_index_key.public(), suite)
    }

    pub fn unseal_identity(&self, sealed: &SealedIdentity) -> Result<ParticipantId, CryptoError> {
        let text = self.open(SEAL_IDENTITY_LABEL, sealed.as_sealed_bytes())?;
        ParticipantId::new(text).map_err(|_| CryptoError::malformed("sealed identity"))
    }

    pub fn unseal_account(&self, sealed: &SealedBankAccount) -> Result<BankAccount, CryptoError> {
        let text = self.open(SEAL_ACCOUNT_LABEL, sealed.as_sealed_bytes())?;
        BankAccount::new(text).map_err(|_| CryptoError::malformed("sealed bank account"))
    }

    fn open(&self, label: &str, bytes: &[u8]) -> Result<String, CryptoError> {
        let envelope = Envelope::from_bytes(bytes)?;
        let plain = self.user_index_key.open(label, &envelope)?;
        String::from_utf8(plain).map_err(|_| CryptoError::malformed("sealed field"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::test_keys;

    fn unsealer(suite: SuiteId) -> IdentityUnsealer {
        IdentityUnsealer::new(test_keys::for_suite(suite).clone())
    }

    #[test]
    fn identities_and_accounts_round_trip_in_every_suite() {
        let id = ParticipantId::new("alice@example").expect("id");
        let account = BankAccount::new("021000021/12345678").expect("account");
        for suite in SuiteId::ALL {
            let unsealer = unsealer(suite);
            let sealer = unsealer.sealer(suite).expect("sealer");
            let sealed = sealer.seal_identity(&id);
            assert_eq!(unsealer.unseal_identity(&sealed).expect("unseal"), id);
            let sealed = sealer.seal_account(&account);
            assert_eq!(unsealer.unseal_account(&sealed).expect("unseal"), account);
        }
    }

    #[test]
    fn a_sealer_for_a_suite_its_key_cannot_serve_is_refused() {
        assert!(matches!(
            unsealer(SuiteId::Aes256).sealer(SuiteId::Dhaes),
            Err(CryptoError::KeyKindMismatch { .. })
        ));
        assert!(matches!(
            IdentitySealer::new(test_keys::dhaes().public(), SuiteId::Tdes),
            Err(CryptoError::KeyKindMismatch { .. })
        ));
    }

    #[test]
    fn sealing_is_randomized_and_hides_the_identity() {
        for suite in SuiteId::ALL {
            let sealer = unsealer(suite).sealer(suite).expect("sealer");
            let id = ParticipantId::new("bob").expect("id");
            let a = sealer.seal_identity(&id);
            let b = sealer.seal_identity(&id);
            assert_ne!(a, b);
            assert!(!a.as_sealed_bytes().windows(3).any(|w| w == b"bob"));
        }
    }

    #[test]
    fn an_account_cannot_be_opened_as_an_identity() {
        for suite in SuiteId::ALL {
            let unsealer = unsealer(suite);
            let sealer = unsealer.sealer(suite).expect("sealer");
            let account = BankAccount::new("12345").expect("account");
            let sealed = sealer.seal_account(&account);
            let as_identity = SealedIdentity::from_sealed_bytes(sealed.as_sealed_bytes().to_vec())
                .expect("bytes");
            assert!(matches!(
                unsealer.unseal_identity(&as_identity),
                Err(CryptoError::DecryptionFailed)
            ));
        }
    }

    #[test]
    fn only_the_user_index_key_opens() {
        for suite in SuiteId::ALL {
            let sealer = IdentitySealer::new(test_keys::other_for_suite(suite).public(), suite)
                .expect("new");
            let sealed = sealer.seal_identity(&ParticipantId::new("carol").expect("id"));
            assert!(matches!(
                unsealer(suite).unseal_identity(&sealed),
                Err(CryptoError::DecryptionFailed)
            ));
            let garbage = SealedIdentity::from_sealed_bytes(vec![1, 2, 3]).expect("bytes");
            assert!(unsealer(suite).unseal_identity(&garbage).is_err());
        }
    }
}
