//! TLS with rustls and the `ring` provider: server configurations from PEM files (read in the
//! privileged start, so keys only root can read work), client configurations that always verify
//! the server against a CA folder or the system's roots, and may present a client certificate.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::strports::{TlsConnect, TlsListen};

/// A TLS set-up problem, naming the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or holds nothing usable.
    #[error("cannot use '{}' for TLS: {reason}", .path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The key and certificate do not make a valid configuration.
    #[error("cannot use the key '{}' with the certificate '{}': {reason}", .key.display(), .certificate.display())]
    Mismatch {
        /// The key file.
        key: PathBuf,
        /// The certificate file.
        certificate: PathBuf,
        /// rustls's reason.
        reason: String,
    },
    /// Anything else rustls refused.
    #[error("TLS configuration failed: {0}")]
    Config(String),
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let fail = |reason: String| TlsError::File {
        path: path.to_owned(),
        reason,
    };
    let certificates = CertificateDer::pem_file_iter(path)
        .map_err(|error| fail(pem_reason(&error)))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| fail(pem_reason(&error)))?;
    if certificates.is_empty() {
        return Err(fail("it holds no PEM certificate".into()));
    }
    Ok(certificates)
}

fn pem_reason(error: &rustls_pki_types::pem::Error) -> String {
    match error {
        rustls_pki_types::pem::Error::Io(io) => rtwisted_core::describe_io(io),
        other => format!("{other}"),
    }
}

/// The server configuration of a `ssl:` endpoint: its certificate chain (the certificate file,
/// then `extraCertChain`) and its private key.
pub fn server_config(tls: &TlsListen) -> Result<Arc<ServerConfig>, TlsError> {
    server_config_offering(tls, Vec::new())
}

/// [`server_config`] that offers the `alpn` protocols (most preferred first) to clients.
pub fn server_config_offering(
    tls: &TlsListen,
    alpn: Vec<Vec<u8>>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let mut chain = certificates(tls.certificate())?;
    if let Some(extra) = &tls.extra_cert_chain {
        chain.extend(certificates(extra)?);
    }
    let key = private_key(&tls.private_key)?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|error| TlsError::Config(error.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|error| TlsError::Mismatch {
            key: tls.private_key.clone(),
            certificate: tls.certificate().clone(),
            reason: error.to_string(),
        })?;
    config.alpn_protocols = alpn;
    Ok(Arc::new(config))
}

/// A PEM private key file, or the error naming it.
fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|error| TlsError::File {
        path: path.to_owned(),
        reason: match error {
            rustls_pki_types::pem::Error::NoItemsFound => "it holds no PEM private key".into(),
            other => pem_reason(&other),
        },
    })
}

/// The client configuration of a `tls:` endpoint: trust the PEM files in `trustRoots`, else the
/// system's roots; present the client certificate (and its key) when there is one.
pub fn client_config(tls: &TlsConnect) -> Result<Arc<ClientConfig>, TlsError> {
    let mut roots = RootCertStore::empty();
    match &tls.trust_roots {
        Some(dir) => {
            let entries = std::fs::read_dir(dir).map_err(|error| TlsError::File {
                path: dir.clone(),
                reason: rtwisted_core::describe_io(&error),
            })?;
            for entry in entries.flatten() {
                let path = entry.path();
                if path.extension().is_some_and(|ext| ext == "pem") {
                    for certificate in certificates(&path)? {
                        roots.add(certificate).map_err(|error| TlsError::File {
                            path: path.clone(),
                            reason: error.to_string(),
                        })?;
                    }
                }
            }
            if roots.is_empty() {
                return Err(TlsError::File {
                    path: dir.clone(),
                    reason: "the folder holds no *.pem CA certificate".into(),
                });
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            for certificate in native.certs {
                let _ = roots.add(certificate);
            }
        }
    }
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|error| TlsError::Config(error.to_string()))?
        .with_root_certificates(roots);
    let config = match &tls.certificate {
        None => builder.with_no_client_auth(),
        Some(certificate) => {
            let key_file = tls.private_key.as_ref().unwrap_or(certificate);
            let chain = certificates(certificate)?;
            let key = private_key(key_file)?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|error| TlsError::Mismatch {
                    key: key_file.clone(),
                    certificate: certificate.clone(),
                    reason: error.to_string(),
                })?
        }
    };
    Ok(Arc::new(config))
}
