//! The TLS settings of the agent's HTTPS clients (TR-069 §3.3): one CA bundle and one client
//! certificate for the ACS connection and for the file servers of transfers (§3.4.3: a file
//! transfer uses the security of the ACS connection), and the rustls configuration built from
//! them: the ring provider, the CA bundle, the client certificate. Reads the PEM files it names.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig, TlsProvider};

/// The CA bundle used when none is configured (OpenWrt's `ca-bundle` package installs it here).
pub const SYSTEM_CA_FILE: &str = "/etc/ssl/certs/ca-certificates.crt";
/// Largest CA bundle, certificate or key file read.
const MAX_PEM_FILE: u64 = 4 * 1024 * 1024;

/// Where the TLS material is (`[acs] ca_file`, `client_cert`, `client_key`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSettings {
    /// PEM bundle of trusted CAs; `None` = [`SYSTEM_CA_FILE`].
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate chain (TR-069 §3.3 certificate-based CPE authentication).
    pub client_cert: Option<PathBuf>,
    /// PEM private key of the client certificate (PKCS#8, PKCS#1 or SEC1).
    pub client_key: Option<PathBuf>,
}

impl TlsSettings {
    /// Whether the client certificate and its key are given together (or both absent).
    pub fn is_paired(&self) -> bool {
        self.client_cert.is_some() == self.client_key.is_some()
    }

    /// The rustls configuration of a client (`https`: whether the first URL is https, which
    /// makes a usable CA bundle mandatory). The error is one line naming the file, never key
    /// material.
    pub fn client_config(&self, https: bool) -> Result<TlsConfig, String> {
        tls_config(self, https)
    }

    /// The same trust as a rustls configuration of its own, for the agent's other TLS client
    /// (the XMPP connection, TR-069 Annex K): the CA bundle is mandatory, the client
    /// certificate optional.
    pub fn rustls_config(&self) -> Result<Arc<rustls::ClientConfig>, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let ca_path = self
            .ca_file
            .clone()
            .unwrap_or_else(|| PathBuf::from(SYSTEM_CA_FILE));
        let mut store = rustls::RootCertStore::empty();
        let (added, _ignored) = store.add_parsable_certificates(load_roots(&ca_path)?);
        if added == 0 {
            return Err(format!("no usable CA certificate in {}", ca_path.display()));
        }
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(store);
        let config = match (&self.client_cert, &self.client_key) {
            (None, None) => builder.with_no_client_auth(),
            (Some(cert), Some(key)) => {
                let (key_der, _) = load_key(key)?;
                builder
                    .with_client_auth_cert(load_certs(cert)?, key_der)
                    .map_err(|e| format!("client certificate {}: {e}", cert.display()))?
            }
            _ => return Err("client_cert and client_key must be given together".into()),
        };
        Ok(Arc::new(config))
    }
}

fn tls_config(cfg: &TlsSettings, https: bool) -> Result<TlsConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let ca_path = cfg
        .ca_file
        .clone()
        .unwrap_or_else(|| PathBuf::from(SYSTEM_CA_FILE));
    let roots = match load_roots(&ca_path) {
        Ok(r) => r,
        // Plain http needs no CA; an https redirect would then fail verification.
        Err(e) if !https => {
            log::debug!("no CA bundle for a plain-http ACS: {e}");
            Vec::new()
        }
        Err(e) => return Err(e),
    };
    let mut store = rustls::RootCertStore::empty();
    let (added, _ignored) = store.add_parsable_certificates(roots.iter().cloned());
    if added == 0 && https {
        return Err(format!("no usable CA certificate in {}", ca_path.display()));
    }
    let client_cert = match (&cfg.client_cert, &cfg.client_key) {
        (None, None) => None,
        (Some(cert), Some(key)) => {
            let chain = load_certs(cert)?;
            let (key_der, key_pem) = load_key(key)?;
            // rustls checks that the key parses and matches the certificate here; ureq would
            // panic on the same error later, so it is caught now.
            rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .with_root_certificates(store)
                .with_client_auth_cert(chain.clone(), key_der.clone_key())
                .map_err(|e| {
                    format!(
                        "client certificate {} and key {}: {e}",
                        cert.display(),
                        key.display()
                    )
                })?;
            let certs: Vec<Certificate<'static>> = chain
                .iter()
                .map(|c| Certificate::from_der(c.as_ref()).to_owned())
                .collect();
            // ureq takes the same first key of the PEM file that rustls just accepted.
            let key = PrivateKey::from_pem(&key_pem)
                .map_err(|e| format!("{}: no usable private key: {e}", key.display()))?;
            Some(ClientCert::new_with_certs(&certs, key))
        }
        _ => return Err("client_cert and client_key must be given together".into()),
    };
    let roots: Vec<Certificate<'static>> = roots
        .iter()
        .map(|c| Certificate::from_der(c.as_ref()).to_owned())
        .collect();
    Ok(TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .root_certs(RootCerts::Specific(Arc::new(roots)))
        .client_cert(client_cert)
        .unversioned_rustls_crypto_provider(provider)
        .build())
}

fn read_pem_file(path: &Path) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut data = Vec::new();
    file.take(MAX_PEM_FILE + 1)
        .read_to_end(&mut data)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if data.len() as u64 > MAX_PEM_FILE {
        return Err(format!(
            "{}: larger than {MAX_PEM_FILE} bytes",
            path.display()
        ));
    }
    Ok(data)
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let data = read_pem_file(path)?;
    let certs = CertificateDer::pem_slice_iter(&data)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: bad PEM: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no PEM certificate", path.display()));
    }
    Ok(certs)
}

fn load_roots(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    load_certs(path)
}

/// The first private key of a PEM file, and the file's bytes.
fn load_key(path: &Path) -> Result<(PrivateKeyDer<'static>, Vec<u8>), String> {
    let data = read_pem_file(path)?;
    // The error of the pem parser never contains key material, only its position and kind.
    let key = PrivateKeyDer::from_pem_slice(&data)
        .map_err(|e| format!("{}: no usable private key: {e}", path.display()))?;
    Ok((key, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_certificate_and_its_key_go_together() {
        let p = |s: &str| Some(PathBuf::from(s));
        let mut t = TlsSettings::default();
        assert!(t.is_paired());
        t.client_cert = p("/c.pem");
        assert!(!t.is_paired());
        let e = t.client_config(false).err().unwrap();
        assert!(e.contains("together"), "{e}");
        t.client_key = p("/k.pem");
        assert!(t.is_paired());
    }

    #[test]
    fn a_missing_ca_bundle_matters_only_for_https() {
        let t = TlsSettings {
            ca_file: Some(PathBuf::from("/nonexistent/ca.pem")),
            ..TlsSettings::default()
        };
        assert!(t.client_config(false).is_ok());
        let e = t.client_config(true).err().unwrap();
        assert!(e.starts_with("/nonexistent/ca.pem: "), "{e}");
    }
}
