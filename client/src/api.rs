//! The issuer's HTTP API messages that are not the protocol's own: who the
//! issuer is ([`IssuerDescriptor`]), the revoked epochs a holder recoups,
//! and the operator's requests and answers (enrollment decisions,
//! standing, the simulated bank, key epochs). The issuer's gateway and its
//! clients both name them from here; every one is a [`WireMessage`],
//! decoded by `protocol::wire::decode` under its own size limit.

use ledger::{
    Amount, BankAccount, KeyEpoch, ParticipantId, PublicKeyDer, Role, Standing, Timestamp,
};
use protocol::crypto::SuiteId;
use protocol::wire::WireMessage;
use protocol::wire::limits::SMALL_MESSAGE_BYTES_MAX;
use serde::{Deserialize, Serialize};

/// Who the issuer is: what a purse needs before its first request
/// (`GET /v1/issuer`). Trust in it comes from the TLS connection it is
/// read over, pinned to the issuer's authority (`tls-ca.pem`, handed out by
/// the operator); the gateway only serves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuerDescriptor {
    /// `ID_I`.
    pub id_i: ParticipantId,
    /// `PK_I`, SPKI DER.
    pub public_key: PublicKeyDer,
    pub suite: SuiteId,
}

impl WireMessage for IssuerDescriptor {
    const NAME: &'static str = "IssuerDescriptor";
    const BYTES_MAX: usize = SMALL_MESSAGE_BYTES_MAX;

    fn validate(&self) -> Result<(), protocol::wire::WireError> {
        if self.public_key.0.len() > ledger::constants::PUBLIC_KEY_DER_BYTES_MAX {
            return Err(Self::invalid("public key too long"));
        }
        Ok(())
    }
}

/// Most revoked epochs [`RevokedEpochs`] lists: far more than an issuer
/// ever has unerased (an epoch's recoups end with its erasure).
pub const REVOKED_EPOCHS_MAX: usize = 512;

/// The key epochs revoked and not yet erased (`GET /v1/epochs/revoked`):
/// those whose coins a holder recoups (`purse recoup` without `--epoch`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokedEpochs {
    pub epochs: Vec<KeyEpoch>,
}

impl WireMessage for RevokedEpochs {
    const NAME: &'static str = "RevokedEpochs";
    const BYTES_MAX: usize = SMALL_MESSAGE_BYTES_MAX;

    fn validate(&self) -> Result<(), protocol::wire::WireError> {
        if self.epochs.len() > REVOKED_EPOCHS_MAX {
            return Err(Self::invalid("too many revoked epochs"));
        }
        Ok(())
    }
}

/// The operator's approval of a pending enrollment
/// (`varietycash issuer enroll approve ID ROLE`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApproveEnrollment {
    pub id: ParticipantId,
    pub role: Role,
}

impl WireMessage for ApproveEnrollment {
    const NAME: &'static str = "ApproveEnrollment";
    const BYTES_MAX: usize = 256;
}

/// The operator's refusal of a pending enrollment
/// (`varietycash issuer enroll refuse ID ROLE`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefuseEnrollment {
    pub id: ParticipantId,
    pub role: Role,
}

impl WireMessage for RefuseEnrollment {
    const NAME: &'static str = "RefuseEnrollment";
    const BYTES_MAX: usize = 256;
}

/// The operator suspends, revokes or reinstates (`Active`) a participant
/// (`varietycash issuer participant suspend|revoke|reinstate ID`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetStanding {
    pub id: ParticipantId,
    pub standing: Standing,
}

impl WireMessage for SetStanding {
    const NAME: &'static str = "SetStanding";
    const BYTES_MAX: usize = 256;
}

/// The operator opens an account at the simulated bank (which lives in
/// the issuer's process: its debits and credits are the issuer's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenBankAccount {
    pub account: BankAccount,
    pub balance: Amount,
}

impl WireMessage for OpenBankAccount {
    const NAME: &'static str = "OpenBankAccount";
    const BYTES_MAX: usize = 256;
}

/// The operator asks an account's balance at the simulated bank.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BankBalanceQuery {
    pub account: BankAccount,
}

impl WireMessage for BankBalanceQuery {
    const NAME: &'static str = "BankBalanceQuery";
    const BYTES_MAX: usize = 256;
}

/// An account's balance at the simulated bank.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BankBalance {
    pub balance: Amount,
}

impl WireMessage for BankBalance {
    const NAME: &'static str = "BankBalance";
    const BYTES_MAX: usize = 32;
}

/// The operator opens the next mint key epoch now, on a serving issuer
/// (`varietycash issuer epoch open`). It carries nothing: each request opens
/// one epoch, so a client sends it once, without retries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenEpoch {}

impl WireMessage for OpenEpoch {
    const NAME: &'static str = "OpenEpoch";
    const BYTES_MAX: usize = 16;
}

/// The epoch an [`OpenEpoch`] opened: new coins are minted under it, expire
/// at `coins_expire_at`, and may be refreshed until `grace_ends_at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochOpenedAnswer {
    pub epoch: KeyEpoch,
    pub coins_expire_at: Timestamp,
    pub grace_ends_at: Timestamp,
}

impl WireMessage for EpochOpenedAnswer {
    const NAME: &'static str = "EpochOpenedAnswer";
    const BYTES_MAX: usize = 64;
}

/// The operator revokes a key epoch (`varietycash issuer epoch revoke`):
/// its coins are accepted only by recoups from then on. Idempotent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokeEpoch {
    pub epoch: KeyEpoch,
}

impl WireMessage for RevokeEpoch {
    const NAME: &'static str = "RevokeEpoch";
    const BYTES_MAX: usize = 16;
}

/// A revoked epoch: the value its recoups could pay out when it was
/// revoked, and what they may still pay out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochRevokedAnswer {
    pub epoch: KeyEpoch,
    pub owed: ledger::Amount,
    pub still_owed: ledger::Amount,
}

impl WireMessage for EpochRevokedAnswer {
    const NAME: &'static str = "EpochRevokedAnswer";
    const BYTES_MAX: usize = 64;
}

/// The operator erases a key epoch past its grace (`varietycash issuer
/// epoch erase`); the housekeeper does it on its own too. Idempotent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EraseEpoch {
    pub epoch: KeyEpoch,
}

impl WireMessage for EraseEpoch {
    const NAME: &'static str = "EraseEpoch";
    const BYTES_MAX: usize = 16;
}

/// An erased epoch: the spent coins erased, named through log record
/// `through`, and the coins still unspent, forfeited with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochErasedAnswer {
    pub epoch: KeyEpoch,
    pub through: ledger::Seq,
    pub n_coins: u64,
    pub value: ledger::Amount,
    pub forfeited_n_coins: u64,
    pub forfeited: ledger::Amount,
}

impl WireMessage for EpochErasedAnswer {
    const NAME: &'static str = "EpochErasedAnswer";
    const BYTES_MAX: usize = 64;
}

#[cfg(test)]
mod tests {
    use protocol::wire::{decode, encode};

    use super::*;

    // An erasure's answer with every figure at its widest still fits its
    // bound.
    #[test]
    fn the_widest_erasure_answer_fits_its_bound() {
        let widest = EpochErasedAnswer {
            epoch: KeyEpoch(u32::MAX),
            through: ledger::Seq(u64::MAX),
            n_coins: u64::MAX,
            value: ledger::Amount::from_minor(u64::MAX),
            forfeited_n_coins: u64::MAX,
            forfeited: ledger::Amount::from_minor(u64::MAX),
        };
        let bytes = encode(&widest);
        assert!(bytes.len() <= EpochErasedAnswer::BYTES_MAX);
        assert_eq!(decode::<EpochErasedAnswer>(&bytes), Ok(widest));
    }

    // A list of revoked epochs decodes within its bound, and a longer one
    // is refused, whatever the issuer (or a man in the middle) sends.
    #[test]
    fn a_revoked_epoch_list_is_bounded() {
        let within = RevokedEpochs {
            epochs: (0..REVOKED_EPOCHS_MAX as u32).map(KeyEpoch).collect(),
        };
        assert!(encode(&within).len() <= RevokedEpochs::BYTES_MAX);
        assert_eq!(decode::<RevokedEpochs>(&encode(&within)), Ok(within));
        let beyond = RevokedEpochs {
            epochs: (0..=REVOKED_EPOCHS_MAX as u32).map(KeyEpoch).collect(),
        };
        assert!(decode::<RevokedEpochs>(&encode(&beyond)).is_err());
    }
}
