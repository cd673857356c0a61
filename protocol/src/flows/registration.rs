//! Registration, client side: prove possession of the secret key, then check
//! the certificate the issuer returns. [`verify_certificate`] is also how a
//! payer checks `CERT_PY` in an invoice.

use ledger::{ParticipantId, Timestamp};

use super::FlowError;
use crate::crypto::{Nonce, PublicKey, SecretKey};
use crate::wire::labels;
use crate::wire::registration::{Certificate, RegisterRequest};

/// A registration waiting for its certificate.
#[derive(Debug, Clone)]
pub struct RegistrationClient {
    id: ParticipantId,
    public_key: PublicKey,
}

impl RegistrationClient {
    /// Registration 1: `ID_RG, PK_RG, S_RG("vc/register", ID_RG, PK_RG, R)`.
    pub fn start(id: ParticipantId, sk: &SecretKey) -> (RegistrationClient, RegisterRequest) {
        let public_key = sk.public();
        let r = Nonce::random();
        let proof = sk.sign(
            labels::REGISTER_PROOF,
            &RegisterRequest::signed_bytes(&id, &public_key, &r),
        );
        let request = RegisterRequest {
            id: id.clone(),
            public_key: public_key.clone(),
            r,
            proof,
        };
        (RegistrationClient { id, public_key }, request)
    }

    /// Registration 2: the certificate must be the issuer's, for our id and key,
    /// and unexpired.
    pub fn on_certificate(
        self,
        pk_i: &PublicKey,
        cert: Certificate,
        now: Timestamp,
    ) -> Result<Certificate, FlowError> {
        verify_certificate(pk_i, &cert, now)?;
        if cert.id != self.id || cert.public_key != self.public_key {
            return Err(FlowError::BadCertificate);
        }
        Ok(cert)
    }
}

/// Checks `CERT = S_I(ID, PK, expiry)` under the issuer's key, and that it has
/// not expired at `now`.
pub fn verify_certificate(
    pk_i: &PublicKey,
    cert: &Certificate,
    now: Timestamp,
) -> Result<(), FlowError> {
    pk_i.verify(
        labels::CERTIFICATE,
        &Certificate::signed_bytes(&cert.id, &cert.public_key, cert.expiry),
        &cert.signature,
    )
    .map_err(|_| FlowError::BadSignature {
        what: "certificate",
    })?;
    if now >= cert.expiry {
        return Err(FlowError::BadCertificate);
    }
    Ok(())
}
