//! TLS for the board connection (rustls on aws-lc-rs): the server's certificate, loaded or
//! generated, and the client's two ways to trust it.

use std::path::Path;
use std::sync::Arc;

use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use super::BoardError;

/// The provider every board connection uses.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// SHA-256 of a DER certificate: what a client pins.
pub fn fingerprint(cert: &CertificateDer<'_>) -> [u8; 32] {
    keyctl::crypto::sha256(cert.as_ref())
}

/// The fingerprint as clients write it: 64 lowercase hex digits.
pub fn fingerprint_hex(fp: &[u8; 32]) -> String {
    hex::encode(fp)
}

/// Parses a fingerprint given as hex (colons and whitespace allowed, as openssl prints it).
pub fn parse_fingerprint(text: &str) -> Result<[u8; 32], BoardError> {
    let digits: String = text
        .chars()
        .filter(|c| !c.is_whitespace() && *c != ':')
        .collect();
    let bytes = hex::decode(&digits).map_err(|_| BoardError::FingerprintNotHex)?;
    bytes
        .try_into()
        .map_err(|bytes: Vec<u8>| BoardError::FingerprintLength(bytes.len()))
}

fn pem_error(path: &Path, error: rustls::pki_types::pem::Error) -> BoardError {
    BoardError::Pem {
        path: path.to_path_buf(),
        error,
    }
}

/// The server's TLS configuration and its certificate's fingerprint.
#[derive(Debug, Clone)]
pub struct ServerTls {
    /// The rustls configuration.
    pub config: Arc<rustls::ServerConfig>,
    /// SHA-256 of the end-entity certificate.
    pub fingerprint: [u8; 32],
}

impl ServerTls {
    /// Loads a PEM certificate chain and private key.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Self, BoardError> {
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
            .and_then(Iterator::collect)
            .map_err(|error| pem_error(cert, error))?;
        let key = PrivateKeyDer::from_pem_file(key).map_err(|error| pem_error(key, error))?;
        Self::new(chain, key)
    }

    /// A fresh self-signed certificate for `localhost` and the listen address, for local
    /// use; clients pin its fingerprint.
    pub fn self_signed(listen: std::net::IpAddr) -> Result<Self, BoardError> {
        let names = vec!["localhost".to_owned(), listen.to_string()];
        let generated =
            rcgen::generate_simple_self_signed(names).map_err(BoardError::CertificateGeneration)?;
        let key = PrivateKeyDer::try_from(generated.signing_key.serialize_der())
            .map_err(BoardError::GeneratedKey)?;
        Self::new(vec![generated.cert.der().clone()], key)
    }

    fn new(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Self, BoardError> {
        let leaf = chain.first().ok_or(BoardError::NoCertificate)?;
        let fingerprint = fingerprint(leaf);
        let config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(BoardError::Tls)?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(BoardError::Tls)?;
        Ok(Self {
            config: Arc::new(config),
            fingerprint,
        })
    }
}

/// Accepts exactly one end-entity certificate, by SHA-256, and still checks the handshake
/// signature with the provider's algorithms (so the server must hold the key).
#[derive(Debug)]
struct PinnedSha256 {
    pin: [u8; 32],
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinnedSha256 {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let seen = fingerprint(end_entity);
        // Not secret, but compared in constant time anyway: it costs nothing.
        if aws_lc_rs::constant_time::verify_slices_are_equal(&seen, &self.pin).is_ok() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A client configuration that trusts one certificate fingerprint.
pub(crate) fn pinned_client(pin: [u8; 32]) -> Result<Arc<rustls::ClientConfig>, BoardError> {
    let provider = provider();
    let verifier = PinnedSha256 {
        pin,
        algorithms: provider.signature_verification_algorithms,
    };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(BoardError::Tls)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A client configuration that trusts the CA certificates in a PEM file (WebPKI checks,
/// the board's address must be in the certificate).
pub(crate) fn ca_client(ca_file: &Path) -> Result<Arc<rustls::ClientConfig>, BoardError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_file).map_err(|error| pem_error(ca_file, error))? {
        let cert = cert.map_err(|error| pem_error(ca_file, error))?;
        roots.add(cert).map_err(BoardError::Tls)?;
    }
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(BoardError::Tls)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
