//! TLS for server mode: rustls with the ring provider (the workspace's crypto
//! backend already), TLS 1.2 and 1.3, HTTP/1.1 via ALPN.

use std::path::Path;
use std::sync::Arc;

use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

use crate::ServerError;

/// Loads a PEM certificate chain and private key (PKCS#8, PKCS#1 or SEC1).
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, ServerError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| ServerError::Tls(format!("cannot read certificate file {}: {e}", cert.display())))?
        .collect::<Result<_, _>>()
        .map_err(|e| ServerError::Tls(format!("bad PEM in certificate file {}: {e}", cert.display())))?;
    if certs.is_empty() {
        return Err(ServerError::Tls(format!("no CERTIFICATE block in {}", cert.display())));
    }
    // The error names the file, never its content: it holds a private key.
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| ServerError::Tls(format!("cannot read a private key from {}: {e}", key.display())))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ServerError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| ServerError::Tls(format!("certificate and key do not form a usable pair: {e}")))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(cfg)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn loads_a_generated_pair_and_rejects_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let (c, k) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        std::fs::write(&c, ck.cert.pem()).unwrap();
        std::fs::write(&k, ck.signing_key.serialize_pem()).unwrap();
        assert!(acceptor(&c, &k).is_ok());
        std::fs::write(&k, "not a key").unwrap();
        let e = acceptor(&c, &k).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("k.pem") && !e.contains("not a key"), "{e}");
        assert!(acceptor(&k, &k).is_err());
    }
}
