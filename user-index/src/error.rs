//! Why the user index refused a delivery or a disclosure.

use ledger::{DisclosureSubject, Seq};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IndexError {
    #[error("the delivery is not signed by the issuer")]
    NotFromTheIssuer,
    #[error("record {0}: its chain hash does not match its contents")]
    BadHash(Seq),
    #[error("record {0} does not link to the record before it")]
    BrokenChain(Seq),
    #[error("the delivery starts at record {offered}, past the next one the index needs ({next})")]
    Gap { offered: Seq, next: Seq },
    #[error("record {seq}: {reason}")]
    BadRecord { seq: Seq, reason: String },
    #[error(
        "{0} is not attributed to anyone the index knows (anonymous, unknown, or not delivered yet)"
    )]
    NotAttributed(DisclosureSubject),
    #[error("the issuer's word that the disclosure is logged does not verify for this order")]
    NotLogged,
    #[error("the two approvals must carry the same order, signed by two different keys")]
    ApprovalsDisagree,
    #[error("key file: {0}")]
    Key(#[from] protocol::crypto::CryptoError),
    #[error(transparent)]
    Projection(#[from] projections::ProjectionError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}
