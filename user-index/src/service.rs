//! The index's directory and what it does with it: its key pair (made
//! here by [`IndexService::create_keys`], never anywhere else), the
//! user-index projection fed by the issuer's deliveries, and disclosures.

use std::path::{Path, PathBuf};

use ledger::{BankAccount, Hash32, ParticipantId, SealedBankAccount, SealedIdentity, Seq};
use projections::{UnsealError, Unsealer, UserIndex, UserIndexModel};
use protocol::crypto::{IdentityUnsealer, PublicKey, SecretKey, Signature, SuiteId};

use crate::constants::{DELIVERY_LABEL, DISCLOSURE_LOGGED_LABEL};
use crate::error::IndexError;
use crate::wire::{DisclosedIdentity, DisclosureLogged, DisclosureOrder, RecordDelivery};

/// The index's private key (PKCS#8, 0600): it opens every sealed identity.
pub const INDEX_KEY_FILE: &str = "index.key";
/// Its public half (SPKI DER), for `issuer init --user-index-key`.
pub const INDEX_PUBLIC_KEY_FILE: &str = "index.pub";
/// The user-index projection.
pub const USER_INDEX_FILE: &str = "user-index.redb";

/// protocol's unsealer behind the projection's trait.
struct KeyUnsealer(IdentityUnsealer);

impl Unsealer for KeyUnsealer {
    fn unseal_identity(&self, sealed: &SealedIdentity) -> Result<ParticipantId, UnsealError> {
        self.0
            .unseal_identity(sealed)
            .map_err(|_| UnsealError::Undecryptable)
    }

    fn unseal_account(&self, sealed: &SealedBankAccount) -> Result<BankAccount, UnsealError> {
        self.0
            .unseal_account(sealed)
            .map_err(|_| UnsealError::Undecryptable)
    }
}

/// The user index, open on its directory.
pub struct IndexService {
    dir: PathBuf,
    users: UserIndex,
    issuer_key: PublicKey,
}

impl std::fmt::Debug for IndexService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexService").finish_non_exhaustive()
    }
}

impl IndexService {
    /// Creates the index's directory (0700) and key pair in it; returns the
    /// public key the issuer seals to. Refuses a directory that has a key.
    pub fn create_keys(
        dir: &Path,
        suite: SuiteId,
        rsa_bits: usize,
    ) -> Result<PublicKey, IndexError> {
        ledger::private_file::create_private_dir(dir)?;
        let key_path = dir.join(INDEX_KEY_FILE);
        if key_path.exists() {
            return Err(IndexError::Io(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!("{} exists: this index has its key", key_path.display()),
            )));
        }
        let key = SecretKey::generate_for(suite, rsa_bits)?;
        key.write_pkcs8(&key_path)?;
        let public = key.public();
        public.write_spki(&dir.join(INDEX_PUBLIC_KEY_FILE))?;
        Ok(public)
    }

    /// Opens the index in `dir` (its key made by [`Self::create_keys`]),
    /// accepting deliveries and logged disclosures signed by `issuer_key`.
    pub fn open(dir: &Path, issuer_key: PublicKey) -> Result<IndexService, IndexError> {
        ledger::private_file::create_private_dir(dir)?;
        let key = SecretKey::read_pkcs8(&dir.join(INDEX_KEY_FILE))?;
        let users = UserIndex::open(
            dir.join(USER_INDEX_FILE),
            UserIndexModel::new(KeyUnsealer(IdentityUnsealer::new(key))),
        )?;
        Ok(IndexService {
            dir: dir.to_path_buf(),
            users,
            issuer_key,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The last log record applied.
    pub fn applied(&self) -> Result<Seq, IndexError> {
        Ok(self.users.applied_seq()?)
    }

    /// The projection, for queries (holdings, disclosures on the log).
    pub fn users(&self) -> &UserIndex {
        &self.users
    }

    /// Applies a delivery: the issuer's signature over every record's
    /// chain hash, each hash recomputed, each record linked to the one
    /// before it; records already applied are skipped, so a delivery sent
    /// twice changes nothing. Returns the applied seq.
    pub fn receive(&self, delivery: &RecordDelivery) -> Result<Seq, IndexError> {
        let records = delivery.records.as_slice();
        let signature = Signature::from_bytes(delivery.signature.as_bytes().to_vec())
            .map_err(|_| IndexError::NotFromTheIssuer)?;
        self.issuer_key
            .verify(
                DELIVERY_LABEL,
                &RecordDelivery::signed_bytes(records),
                &signature,
            )
            .map_err(|_| IndexError::NotFromTheIssuer)?;
        let applied = self.applied()?;
        let mut stored = Vec::with_capacity(records.len());
        let mut previous: Option<(Seq, Hash32)> = None;
        for record in records {
            let raw = record.to_raw();
            if let Some((seq, hash)) = previous
                && (raw.seq.0 != seq.0 + 1 || raw.prev_hash != hash)
            {
                return Err(IndexError::BrokenChain(raw.seq));
            }
            previous = Some((raw.seq, raw.hash));
            let decoded = raw.decode().map_err(|e| match e {
                ledger::StoreError::Corrupt { .. } => IndexError::BadHash(raw.seq),
                other => IndexError::BadRecord {
                    seq: raw.seq,
                    reason: other.to_string(),
                },
            })?;
            if raw.seq > applied {
                stored.push(decoded);
            }
        }
        if let Some(first) = stored.first()
            && first.record.seq.0 != applied.0 + 1
        {
            return Err(IndexError::Gap {
                offered: first.record.seq,
                next: Seq(applied.0 + 1),
            });
        }
        if stored.is_empty() {
            return Ok(applied);
        }
        Ok(self.users.apply_records(&stored)?)
    }

    /// Whether the index can answer `order` at all: checked before the
    /// issuer is asked to log a disclosure that would tell nothing.
    pub fn check_attributed(&self, order: &DisclosureOrder) -> Result<(), IndexError> {
        match self.users.subject_identity(&order.subject)? {
            Some(_) => Ok(()),
            None => Err(IndexError::NotAttributed(order.subject)),
        }
    }

    /// The identity behind `order`, once the issuer's signed word says
    /// the disclosure, approved by exactly `approver_keys` (two different
    /// keys), is on its log.
    pub fn disclose(
        &self,
        order: &DisclosureOrder,
        approver_keys: [Hash32; 2],
        logged: &DisclosureLogged,
    ) -> Result<DisclosedIdentity, IndexError> {
        let same_keys = logged.approver_keys == approver_keys
            || logged.approver_keys == [approver_keys[1], approver_keys[0]];
        if approver_keys[0] == approver_keys[1] || !same_keys {
            return Err(IndexError::ApprovalsDisagree);
        }
        let event = order.event(logged.approver_keys);
        let signature = Signature::from_bytes(logged.signature.as_bytes().to_vec())
            .map_err(|_| IndexError::NotLogged)?;
        self.issuer_key
            .verify(
                DISCLOSURE_LOGGED_LABEL,
                &DisclosureLogged::signed_bytes(logged.seq, &event),
                &signature,
            )
            .map_err(|_| IndexError::NotLogged)?;
        let participant = self
            .users
            .subject_identity(&order.subject)?
            .ok_or(IndexError::NotAttributed(order.subject))?;
        tracing::warn!(
            subject = %order.subject,
            logged_at = logged.seq.0,
            "identity disclosed under dual control"
        );
        Ok(DisclosedIdentity {
            subject: order.subject,
            participant,
            logged_at: logged.seq,
        })
    }
}
