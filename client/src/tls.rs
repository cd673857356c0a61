//! TLS (rustls, ring): the issuer is the certificate authority of its
//! servers, as it already is of its participants.
//!
//! `issuer init` makes a [`TlsAuthority`]: a CA key (0600) and its
//! self-signed certificate, `tls-ca.pem`, which every purse and merchant
//! pins as the one root they trust ([`IssuerCa`]). The authority issues the
//! issuer gateway's certificate and each merchant server's
//! ([`TlsAuthority::issue`]); a server presents its [`TlsIdentity`]. A
//! client with [`crate::ClientTls::Pinned`] refuses any certificate not
//! issued by that CA and any plain `http://` URL, so a purse reaches a shop
//! only if the issuer vouched for the shop's name.

use std::path::Path;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::constants::TLS_PEM_FILE_BYTES_MAX;

/// The CA's subject: fixed, so a CA reloaded from its key issues
/// certificates that name the same issuer as its certificate.
const CA_COMMON_NAME: &str = "VarietyCash issuer TLS authority";

/// Why TLS material could not be made, read or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is over {max} bytes")]
    TooLarge { path: String, max: u64 },
    #[error("{what}: not valid PEM")]
    Pem { what: String },
    #[error("{0}: no certificate in it")]
    NoCertificate(String),
    #[error("generating a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

fn read_bounded(path: &Path) -> Result<Vec<u8>, TlsError> {
    let io = |source| TlsError::Io {
        path: path.display().to_string(),
        source,
    };
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > TLS_PEM_FILE_BYTES_MAX {
        return Err(TlsError::TooLarge {
            path: path.display().to_string(),
            max: TLS_PEM_FILE_BYTES_MAX,
        });
    }
    std::fs::read(path).map_err(io)
}

fn certificates(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let chain = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| TlsError::Pem { what: what.into() })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate(what.into()));
    }
    Ok(chain)
}

/// The certificate a client pins: the issuer's TLS authority.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuerCa {
    der: CertificateDer<'static>,
}

impl std::fmt::Debug for IssuerCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuerCa")
            .field("bytes", &self.der.len())
            .finish()
    }
}

impl IssuerCa {
    /// The first certificate of a PEM text.
    pub fn from_pem(pem: &[u8], what: &str) -> Result<IssuerCa, TlsError> {
        let mut chain = certificates(pem, what)?;
        Ok(IssuerCa {
            der: chain.swap_remove(0),
        })
    }

    /// Reads `tls-ca.pem` (or any PEM file whose first certificate is the CA).
    pub fn read_pem(path: &Path) -> Result<IssuerCa, TlsError> {
        IssuerCa::from_pem(&read_bounded(path)?, &path.display().to_string())
    }

    pub fn der(&self) -> &[u8] {
        self.der.as_ref()
    }
}

/// What a TLS server presents: its certificate chain and private key.
#[derive(Clone)]
pub struct TlsIdentity {
    chain: Vec<CertificateDer<'static>>,
    key: Arc<PrivateKeyDer<'static>>,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsIdentity")
            .field("chain_len", &self.chain.len())
            .finish_non_exhaustive()
    }
}

impl TlsIdentity {
    /// From PEM texts: the certificate chain (leaf first) and the key.
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8], what: &str) -> Result<TlsIdentity, TlsError> {
        let chain = certificates(cert_pem, what)?;
        let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|_| TlsError::Pem {
            what: format!("{what} (key)"),
        })?;
        Ok(TlsIdentity {
            chain,
            key: Arc::new(key),
        })
    }

    /// Reads a certificate file and its key file (PEM; the key is refused
    /// if group or others may read it).
    pub fn read_pem(cert: &Path, key: &Path) -> Result<TlsIdentity, TlsError> {
        check_private(key)?;
        TlsIdentity::from_pem(
            &read_bounded(cert)?,
            &read_bounded(key)?,
            &cert.display().to_string(),
        )
    }

    /// The rustls server configuration (TLS 1.2 and 1.3, ring, no client
    /// certificates: participants authenticate in the protocol itself).
    pub(crate) fn server_config(&self) -> Result<rustls::ServerConfig, TlsError> {
        let config = rustls::ServerConfig::builder_with_provider(crypto_provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), self.key.clone_key())?;
        Ok(config)
    }
}

/// rustls's ring provider: ring builds here in seconds where aws-lc-rs
/// needs cmake and minutes. rustls 0.23.48 deprecates it for lacking
/// post-quantum key exchange (X25519MLKEM768); the classical suites it
/// offers (TLS 1.3 and 1.2, ECDHE) are what the ureq client speaks too.
#[allow(deprecated)]
pub fn crypto_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), TlsError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|source| TlsError::Io {
        path: path.display().to_string(),
        source,
    })?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(TlsError::Io {
            path: path.display().to_string(),
            source: std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                "a TLS key readable by group or others is refused (chmod 600)",
            ),
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path) -> Result<(), TlsError> {
    Ok(())
}

/// A certificate and its key, in PEM, as [`TlsAuthority::issue`] makes them.
pub struct IssuedCertificate {
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for IssuedCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IssuedCertificate(<key redacted>)")
    }
}

impl IssuedCertificate {
    pub fn identity(&self) -> Result<TlsIdentity, TlsError> {
        TlsIdentity::from_pem(
            self.cert_pem.as_bytes(),
            self.key_pem.as_bytes(),
            "issued certificate",
        )
    }

    /// Writes the certificate (0644) and the key (0600) atomically.
    pub fn write(&self, cert: &Path, key: &Path) -> Result<(), TlsError> {
        write_public(cert, self.cert_pem.as_bytes())?;
        write_secret(key, self.key_pem.as_bytes())
    }
}

/// Writes `bytes` to `path` with `mode`, atomically: a temporary file
/// created with that mode (whatever the umask), synced, renamed, and the
/// directory synced.
fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), TlsError> {
    use std::io::Write as _;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let io = |source| TlsError::Io {
        path: path.display().to_string(),
        source,
    };
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io)?;
    file.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(io)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io)?;
    }
    Ok(())
}

fn write_secret(path: &Path, bytes: &[u8]) -> Result<(), TlsError> {
    write_atomic(path, bytes, 0o600)
}

fn write_public(path: &Path, bytes: &[u8]) -> Result<(), TlsError> {
    write_atomic(path, bytes, 0o644)
}

/// The issuer's TLS certificate authority (ECDSA P-256). Its certificates
/// carry rcgen's default validity (no expiry in practice): the pin, not the
/// calendar, is what clients trust, and a compromised key is replaced by
/// handing out a new `tls-ca.pem`.
pub struct TlsAuthority {
    key: KeyPair,
    cert_pem: String,
}

impl std::fmt::Debug for TlsAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsAuthority(<key redacted>)")
    }
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, CA_COMMON_NAME);
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

impl TlsAuthority {
    /// A fresh authority.
    pub fn generate() -> Result<TlsAuthority, TlsError> {
        let key = KeyPair::generate()?;
        let cert = ca_params().self_signed(&key)?;
        Ok(TlsAuthority {
            key,
            cert_pem: cert.pem(),
        })
    }

    /// The authority whose key and certificate `write` left in these files.
    pub fn read(cert: &Path, key: &Path) -> Result<TlsAuthority, TlsError> {
        check_private(key)?;
        let key_pem = String::from_utf8(read_bounded(key)?).map_err(|_| TlsError::Pem {
            what: key.display().to_string(),
        })?;
        let cert_pem = String::from_utf8(read_bounded(cert)?).map_err(|_| TlsError::Pem {
            what: cert.display().to_string(),
        })?;
        Ok(TlsAuthority {
            key: KeyPair::from_pem(&key_pem)?,
            cert_pem,
        })
    }

    /// Writes the certificate (0644: it is what clients pin) and the key (0600).
    pub fn write(&self, cert: &Path, key: &Path) -> Result<(), TlsError> {
        write_public(cert, self.cert_pem.as_bytes())?;
        write_secret(key, self.key.serialize_pem().as_bytes())
    }

    /// What clients pin.
    pub fn ca(&self) -> Result<IssuerCa, TlsError> {
        IssuerCa::from_pem(self.cert_pem.as_bytes(), "the authority's certificate")
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// A server certificate for `names` (DNS names or IP addresses, e.g.
    /// `localhost`, `127.0.0.1`), with a fresh key, signed by this authority.
    pub fn issue(&self, names: &[String]) -> Result<IssuedCertificate, TlsError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(names.to_vec())?;
        let mut name = DistinguishedName::new();
        name.push(
            DnType::CommonName,
            names.first().cloned().unwrap_or_default(),
        );
        params.distinguished_name = name;
        params.is_ca = IsCa::ExplicitNoCa;
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let issuer = Issuer::new(ca_params(), &self.key);
        let cert = params.signed_by(&key, &issuer)?;
        Ok(IssuedCertificate {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used)]

    use super::*;

    #[test]
    fn an_authority_reloaded_from_its_files_issues_what_its_certificate_verifies() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (cert, key) = (dir.path().join("ca.pem"), dir.path().join("ca.key"));
        let ca = TlsAuthority::generate().expect("ca");
        ca.write(&cert, &key).expect("written");
        let again = TlsAuthority::read(&cert, &key).expect("read back");
        let issued = again.issue(&["localhost".into()]).expect("issued");
        let identity = issued.identity().expect("identity");
        identity.server_config().expect("rustls accepts it");
        let anchor = IssuerCa::read_pem(&cert).expect("pinned");
        let end_entity = identity.chain[0].clone();
        let roots = {
            let mut roots = rustls::RootCertStore::empty();
            roots
                .add(CertificateDer::from(anchor.der().to_vec()))
                .expect("root");
            Arc::new(roots)
        };
        let verifier =
            rustls::client::WebPkiServerVerifier::builder_with_provider(roots, crypto_provider())
                .build()
                .expect("verifier");
        use rustls::client::danger::ServerCertVerifier;
        verifier
            .verify_server_cert(
                &end_entity,
                &[],
                &rustls::pki_types::ServerName::try_from("localhost").expect("name"),
                &[],
                rustls::pki_types::UnixTime::now(),
            )
            .expect("the reloaded authority's certificate verifies");
    }

    #[test]
    fn garbage_pem_is_a_typed_error() {
        assert!(matches!(
            IssuerCa::from_pem(b"not a certificate", "x"),
            Err(TlsError::NoCertificate(_) | TlsError::Pem { .. })
        ));
        assert!(TlsIdentity::from_pem(b"", b"", "x").is_err());
    }
}
