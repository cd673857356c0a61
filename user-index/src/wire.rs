//! Messages between the issuer and the user index, postcard-encoded and
//! bounded like every other wire message (`protocol::wire::decode`).
//!
//! - [`RecordDelivery`] (issuer → index, `POST /v1/index/records`): log
//!   records in seq order, as stored, signed by the issuer. Answered by
//!   [`DeliveryAck`] with the index's applied seq, where the next delivery
//!   starts.
//! - [`DisclosureOrder`]: what two operators approve, each in a signed
//!   operator request (`client::operator::OperatorRequest`) whose body it is.
//! - [`DisclosureApprovals`] (operator's CLI → index `POST /admin/disclose`,
//!   index → issuer `POST /admin/index/disclose`): the two approvals.
//! - [`DisclosureLogged`] (issuer → index): the issuer's signed word that the
//!   disclosure is on its log, at `seq`.
//! - [`DisclosedIdentity`] (index → operator): the answer.

use ledger::{
    DisclosureSubject, Event, EventDecodeError, Hash32, ParticipantId, RawRecord, Seq, Timestamp,
    TxId,
};
use protocol::wire::{BoundedBytes, BoundedText, BoundedVec, WireError, WireMessage};
use serde::{Deserialize, Serialize};

use crate::constants::{
    APPROVAL_BYTES_MAX, DELIVERY_BYTES_MAX, DISCLOSURE_REASON_BYTES_MAX,
    DISCLOSURE_REQUESTER_BYTES_MAX, RECORDS_PER_DELIVERY_MAX, SIGNATURE_BYTES_MAX,
};

/// One log record exactly as stored (its event's bytes as written), so the
/// index recomputes the chain hash the auditor checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveredRecord {
    pub seq: Seq,
    pub tx: TxId,
    pub at: Timestamp,
    pub batch_index: u16,
    pub batch_len: u16,
    pub prev_hash: Hash32,
    pub hash: Hash32,
    pub event: BoundedBytes<{ ledger::constants::EVENT_BYTES_MAX }>,
}

impl DeliveredRecord {
    pub fn from_raw(raw: RawRecord) -> Result<DeliveredRecord, EventDecodeError> {
        Ok(DeliveredRecord {
            seq: raw.seq,
            tx: raw.tx,
            at: raw.at,
            batch_index: raw.batch_index,
            batch_len: raw.batch_len,
            prev_hash: raw.prev_hash,
            hash: raw.hash,
            event: BoundedBytes::new(raw.event_bytes)
                .map_err(|_| EventDecodeError::TooLong(ledger::constants::EVENT_BYTES_MAX + 1))?,
        })
    }

    pub fn to_raw(&self) -> RawRecord {
        RawRecord {
            seq: self.seq,
            tx: self.tx,
            at: self.at,
            batch_index: self.batch_index,
            batch_len: self.batch_len,
            prev_hash: self.prev_hash,
            hash: self.hash,
            event_bytes: self.event.as_bytes().to_vec(),
        }
    }
}

/// Log records for the index, signed by the issuer (label
/// [`crate::constants::DELIVERY_LABEL`], over [`RecordDelivery::signed_bytes`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordDelivery {
    pub records: BoundedVec<DeliveredRecord, RECORDS_PER_DELIVERY_MAX>,
    pub signature: BoundedBytes<SIGNATURE_BYTES_MAX>,
}

impl RecordDelivery {
    /// What the issuer signs: each record's seq and chain hash. The hash
    /// covers the record's contents, which the index recomputes.
    pub fn signed_bytes(records: &[DeliveredRecord]) -> Vec<u8> {
        let mut out = Vec::with_capacity(records.len() * 40);
        for record in records {
            out.extend_from_slice(&record.seq.0.to_be_bytes());
            out.extend_from_slice(&record.hash.0);
        }
        out
    }
}

impl WireMessage for RecordDelivery {
    const NAME: &'static str = "RecordDelivery";
    const BYTES_MAX: usize = DELIVERY_BYTES_MAX;

    fn validate(&self) -> Result<(), WireError> {
        if self.records.as_slice().is_empty() {
            return Err(Self::invalid("no records"));
        }
        Ok(())
    }
}

/// The index's applied seq after a delivery: the next one starts past it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryAck {
    pub applied: Seq,
}

impl WireMessage for DeliveryAck {
    const NAME: &'static str = "DeliveryAck";
    const BYTES_MAX: usize = 16;
}

/// What two operators approve: tell `requester` who is behind `subject`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisclosureOrder {
    pub subject: DisclosureSubject,
    pub requester: BoundedText<DISCLOSURE_REQUESTER_BYTES_MAX>,
    pub reason: BoundedText<DISCLOSURE_REASON_BYTES_MAX>,
}

impl WireMessage for DisclosureOrder {
    const NAME: &'static str = "DisclosureOrder";
    const BYTES_MAX: usize =
        1 + 1 + 16 + 2 + DISCLOSURE_REQUESTER_BYTES_MAX + 2 + DISCLOSURE_REASON_BYTES_MAX;

    fn validate(&self) -> Result<(), WireError> {
        if self.requester.as_str().trim().is_empty() || self.reason.as_str().trim().is_empty() {
            return Err(Self::invalid("requester and reason must not be empty"));
        }
        Ok(())
    }
}

impl DisclosureOrder {
    /// The event the issuer appends for this order, approved by these keys.
    pub fn event(&self, approver_keys: [Hash32; 2]) -> Event {
        Event::IdentityDisclosedUnderDualControl {
            subject: self.subject,
            requester: self.requester.as_str().to_owned(),
            reason: self.reason.as_str().to_owned(),
            approver_keys,
        }
    }
}

/// Two operators' approvals of one [`DisclosureOrder`]: each an encoded,
/// signed operator request whose body is the encoded order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisclosureApprovals {
    pub approvals: [BoundedBytes<APPROVAL_BYTES_MAX>; 2],
}

impl WireMessage for DisclosureApprovals {
    const NAME: &'static str = "DisclosureApprovals";
    const BYTES_MAX: usize = 1 + 2 * (3 + APPROVAL_BYTES_MAX);
}

/// The issuer's word that the disclosure is on its log at `seq`: its
/// signature (label [`crate::constants::DISCLOSURE_LOGGED_LABEL`]) over
/// [`DisclosureLogged::signed_bytes`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisclosureLogged {
    pub seq: Seq,
    pub approver_keys: [Hash32; 2],
    pub signature: BoundedBytes<SIGNATURE_BYTES_MAX>,
}

impl DisclosureLogged {
    /// The seq, then the logged event's bytes.
    pub fn signed_bytes(seq: Seq, event: &Event) -> Vec<u8> {
        let mut out = seq.0.to_be_bytes().to_vec();
        out.extend_from_slice(&event.encode());
        out
    }
}

impl WireMessage for DisclosureLogged {
    const NAME: &'static str = "DisclosureLogged";
    const BYTES_MAX: usize = 10 + 2 * 32 + 3 + SIGNATURE_BYTES_MAX;
}

/// The index's answer to a disclosure both operators approved and the
/// issuer logged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisclosedIdentity {
    pub subject: DisclosureSubject,
    pub participant: ParticipantId,
    /// Where the issuer's log records this disclosure.
    pub logged_at: Seq,
}

impl WireMessage for DisclosedIdentity {
    const NAME: &'static str = "DisclosedIdentity";
    const BYTES_MAX: usize = 1 + 1 + 16 + 2 + ledger::constants::PARTICIPANT_ID_BYTES_MAX + 10;
}
