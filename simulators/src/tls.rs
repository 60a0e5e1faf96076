//! A throw-away PKI for mutual TLS on loopback: one CA, a server certificate for `127.0.0.1` /
//! `localhost`, a client certificate for the gateway, all made at start with rcgen (ring, ECDSA P-256).
//!
//! ```text
//! TestPki::generate("bank B test CA")
//!   ca          self-signed, CA:true, keyCertSign        -> ca.pem        (what both sides trust)
//!   ├─ server   SAN IP 127.0.0.1, DNS localhost, serverAuth -> server.pem, server.key
//!   └─ client   CN gateway, clientAuth                   -> client.pem, client.key
//! ```
//! A second `TestPki::generate` makes an unrelated CA with its own server and client certificates: a
//! client of one is refused by a server of the other ("wrong CA" tests). [`TestPki::write_to`] puts the
//! PEM files in a folder so a gateway configuration can point at them (`ca`, `client_cert`,
//! `client_key`); [`TestPki::load`] reads such a folder back. PEM is read with rustls-pki-types'
//! `PemObject`. Private keys never show in `Debug`.
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Why a PKI could not be made, read or turned into a TLS configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// rcgen could not make a key or a certificate.
    #[error("making the test {what}: {source}")]
    Generate {
        /// Which certificate or key.
        what: &'static str,
        /// rcgen's error.
        source: rcgen::Error,
    },
    /// A PEM text holds no usable certificate or key.
    #[error("{what}: {problem}")]
    Pem {
        /// Which file or text.
        what: String,
        /// What is wrong.
        problem: String,
    },
    /// rustls refused the certificates or keys.
    #[error("TLS configuration: {0}")]
    Rustls(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

impl From<TlsError> for io::Error {
    fn from(e: TlsError) -> Self {
        match e {
            TlsError::Io { source, .. } => source,
            other => io::Error::new(io::ErrorKind::InvalidInput, other.to_string()),
        }
    }
}

/// The PEM files [`TestPki::write_to`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PkiFiles {
    /// `ca.pem`: the CA certificate (trusted by the gateway for the server, by the server for clients).
    pub ca: PathBuf,
    /// `client.pem`: the gateway's certificate.
    pub client_cert: PathBuf,
    /// `client.key`: its key (PKCS#8, mode 0600 on Unix).
    pub client_key: PathBuf,
    /// `server.pem`: the simulated bank's certificate.
    pub server_cert: PathBuf,
    /// `server.key`: its key.
    pub server_key: PathBuf,
}

/// A CA with one server and one client certificate, as PEM text.
#[derive(Clone)]
pub struct TestPki {
    ca_pem: String,
    server_cert_pem: String,
    server_key_pem: String,
    client_cert_pem: String,
    client_key_pem: String,
}

impl fmt::Debug for TestPki {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestPki")
            .field("ca_pem_bytes", &self.ca_pem.len())
            .field("keys", &"***")
            .finish_non_exhaustive()
    }
}

fn generated(what: &'static str) -> impl FnOnce(rcgen::Error) -> TlsError {
    move |source| TlsError::Generate { what, source }
}

impl TestPki {
    /// A new CA named `ca_name` (its common name) with a server certificate for `127.0.0.1`,
    /// `::1` and `localhost` and a client certificate (`CN=gateway`), valid from 2020 to 2100.
    pub fn generate(ca_name: &str) -> Result<Self, TlsError> {
        let ca_key = KeyPair::generate().map_err(generated("CA key"))?;
        let mut ca_params =
            CertificateParams::new(Vec::<String>::new()).map_err(generated("CA"))?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, ca_name);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        validity(&mut ca_params);
        let ca = CertifiedIssuer::self_signed(ca_params, ca_key).map_err(generated("CA"))?;

        let server_key = KeyPair::generate().map_err(generated("server key"))?;
        let mut server_params = CertificateParams::new(vec![
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
            "localhost".to_owned(),
        ])
        .map_err(generated("server certificate"))?;
        server_params
            .distinguished_name
            .push(DnType::CommonName, "bank simulator");
        server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        server_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        validity(&mut server_params);
        let server = server_params
            .signed_by(&server_key, &ca)
            .map_err(generated("server certificate"))?;

        let client_key = KeyPair::generate().map_err(generated("client key"))?;
        let mut client_params = CertificateParams::new(Vec::<String>::new())
            .map_err(generated("client certificate"))?;
        client_params
            .distinguished_name
            .push(DnType::CommonName, "gateway");
        client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        client_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        validity(&mut client_params);
        let client = client_params
            .signed_by(&client_key, &ca)
            .map_err(generated("client certificate"))?;

        Ok(Self {
            ca_pem: ca.pem(),
            server_cert_pem: server.pem(),
            server_key_pem: server_key.serialize_pem(),
            client_cert_pem: client.pem(),
            client_key_pem: client_key.serialize_pem(),
        })
    }

    /// A PKI from PEM texts (e.g. files a bank issued); checked by parsing each.
    pub fn from_pem(
        ca: &str,
        server_cert: &str,
        server_key: &str,
        client_cert: &str,
        client_key: &str,
    ) -> Result<Self, TlsError> {
        let pki = Self {
            ca_pem: ca.to_owned(),
            server_cert_pem: server_cert.to_owned(),
            server_key_pem: server_key.to_owned(),
            client_cert_pem: client_cert.to_owned(),
            client_key_pem: client_key.to_owned(),
        };
        certs("ca", &pki.ca_pem)?;
        certs("server certificate", &pki.server_cert_pem)?;
        key("server key", &pki.server_key_pem)?;
        certs("client certificate", &pki.client_cert_pem)?;
        key("client key", &pki.client_key_pem)?;
        Ok(pki)
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The server certificate, PEM.
    pub fn server_cert_pem(&self) -> &str {
        &self.server_cert_pem
    }

    /// The server's private key, PEM (PKCS#8).
    pub fn server_key_pem(&self) -> &str {
        &self.server_key_pem
    }

    /// The client certificate, PEM.
    pub fn client_cert_pem(&self) -> &str {
        &self.client_cert_pem
    }

    /// The client's private key, PEM (PKCS#8).
    pub fn client_key_pem(&self) -> &str {
        &self.client_key_pem
    }

    /// Writes `ca.pem`, `client.pem`, `client.key`, `server.pem`, `server.key` into `dir` (created if
    /// missing; keys readable by the owner only on Unix).
    pub fn write_to(&self, dir: &Path) -> Result<PkiFiles, TlsError> {
        std::fs::create_dir_all(dir).map_err(|source| TlsError::Io {
            path: dir.to_owned(),
            source,
        })?;
        let files = PkiFiles {
            ca: dir.join("ca.pem"),
            client_cert: dir.join("client.pem"),
            client_key: dir.join("client.key"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server.key"),
        };
        for (path, text, secret) in [
            (&files.ca, &self.ca_pem, false),
            (&files.client_cert, &self.client_cert_pem, false),
            (&files.client_key, &self.client_key_pem, true),
            (&files.server_cert, &self.server_cert_pem, false),
            (&files.server_key, &self.server_key_pem, true),
        ] {
            write_file(path, text, secret)?;
        }
        Ok(files)
    }

    /// Reads back a folder [`write_to`](Self::write_to) wrote.
    pub fn load(dir: &Path) -> Result<Self, TlsError> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read_to_string(&path).map_err(|source| TlsError::Io { path, source })
        };
        Self::from_pem(
            &read("ca.pem")?,
            &read("server.pem")?,
            &read("server.key")?,
            &read("client.pem")?,
            &read("client.key")?,
        )
    }

    /// The server side: presents the server certificate, offers `http/1.1`, and **requires** a client
    /// certificate issued by this CA (TLS 1.2 and 1.3, ring).
    pub fn server_config(&self) -> Result<ServerConfig, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let roots = Arc::new(self.roots()?);
        let verifier = WebPkiClientVerifier::builder_with_provider(roots, Arc::clone(&provider))
            .build()
            .map_err(|e| TlsError::Rustls(e.to_string()))?;
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Rustls(e.to_string()))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                certs("server certificate", &self.server_cert_pem)?,
                key("server key", &self.server_key_pem)?,
            )
            .map_err(|e| TlsError::Rustls(e.to_string()))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }

    /// The client side as the gateway has it: trusts only this CA and presents the client
    /// certificate (for tests; the gateway builds its own from the files).
    pub fn client_config(&self) -> Result<ClientConfig, TlsError> {
        self.client_builder()?
            .with_client_auth_cert(
                certs("client certificate", &self.client_cert_pem)?,
                key("client key", &self.client_key_pem)?,
            )
            .map_err(|e| TlsError::Rustls(e.to_string()))
            .map(with_alpn)
    }

    /// A client that trusts this CA but presents no certificate (refused by the server).
    pub fn client_config_without_certificate(&self) -> Result<ClientConfig, TlsError> {
        Ok(with_alpn(self.client_builder()?.with_no_client_auth()))
    }

    /// A client that trusts this CA but presents `other`'s client certificate (another CA's: refused).
    pub fn client_config_with_certificate_of(
        &self,
        other: &TestPki,
    ) -> Result<ClientConfig, TlsError> {
        self.client_builder()?
            .with_client_auth_cert(
                certs("client certificate", &other.client_cert_pem)?,
                key("client key", &other.client_key_pem)?,
            )
            .map_err(|e| TlsError::Rustls(e.to_string()))
            .map(with_alpn)
    }

    fn client_builder(
        &self,
    ) -> Result<rustls::ConfigBuilder<ClientConfig, rustls::client::WantsClientCert>, TlsError>
    {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Ok(ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Rustls(e.to_string()))?
            .with_root_certificates(self.roots()?))
    }

    fn roots(&self) -> Result<RootCertStore, TlsError> {
        let mut roots = RootCertStore::empty();
        for c in certs("ca", &self.ca_pem)? {
            roots
                .add(c)
                .map_err(|e| TlsError::Rustls(format!("ca: {e}")))?;
        }
        Ok(roots)
    }
}

fn with_alpn(mut c: ClientConfig) -> ClientConfig {
    c.alpn_protocols = vec![b"http/1.1".to_vec()];
    c
}

/// Valid from 2020 to 2100: fixed, so that a test never depends on the clock of the machine.
fn validity(p: &mut CertificateParams) {
    p.not_before = rcgen::date_time_ymd(2020, 1, 1);
    p.not_after = rcgen::date_time_ymd(2100, 1, 1);
}

/// The certificates of a PEM text (at least one).
pub fn certs(what: &str, pem: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            what: what.to_owned(),
            problem: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            what: what.to_owned(),
            problem: "no certificate".into(),
        });
    }
    Ok(certs)
}

/// The private key of a PEM text.
pub fn key(what: &str, pem: &str) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|e| TlsError::Pem {
        what: what.to_owned(),
        problem: e.to_string(),
    })
}

fn write_file(path: &Path, text: &str, secret: bool) -> Result<(), TlsError> {
    let err = |source| TlsError::Io {
        path: path.to_owned(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut f = options.open(path).map_err(err)?;
    io::Write::write_all(&mut f, text.as_bytes()).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn makes_configs_and_round_trips_through_files() {
        let pki = TestPki::generate("test CA").expect("pki");
        assert!(pki.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(pki.client_key_pem().contains("PRIVATE KEY"));
        pki.server_config().expect("server config");
        pki.client_config().expect("client config");
        pki.client_config_without_certificate().expect("anonymous");
        let dir = std::env::temp_dir().join(format!("sim-tls-{}", std::process::id()));
        let files = pki.write_to(&dir).expect("write");
        assert_eq!(files.ca, dir.join("ca.pem"));
        let again = TestPki::load(&dir).expect("load");
        assert_eq!(again.server_cert_pem(), pki.server_cert_pem());
        assert_eq!(again.client_key_pem(), pki.client_key_pem());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&files.client_key)
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "key readable by others: {mode:o}");
        }
        let _ = std::fs::remove_dir_all(&dir);
        let other = TestPki::generate("other CA").expect("other");
        assert_ne!(other.ca_pem(), pki.ca_pem());
        assert!(!format!("{pki:?}").contains("PRIVATE"));
    }

    #[test]
    fn refuses_broken_pem() {
        let pki = TestPki::generate("test CA").expect("pki");
        let e = TestPki::from_pem(
            "not pem",
            pki.server_cert_pem(),
            pki.server_key_pem(),
            pki.client_cert_pem(),
            pki.client_key_pem(),
        )
        .expect_err("broken ca");
        assert!(e.to_string().starts_with("ca:"), "{e}");
        let e = TestPki::from_pem(
            pki.ca_pem(),
            pki.server_cert_pem(),
            pki.ca_pem(),
            pki.client_cert_pem(),
            pki.client_key_pem(),
        )
        .expect_err("a certificate is not a key");
        assert!(e.to_string().starts_with("server key"), "{e}");
    }
}
