//! The relay's TLS identity: a self-signed certificate made on first run and kept, owner-only,
//! in the data dir. Clients pin its SHA-256 fingerprint.

use std::path::Path;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::fsutil;

const CERT_FILE: &str = "relay-cert.der";
const KEY_FILE: &str = "relay-key.der";

/// The relay's certificate and key.
#[derive(Debug)]
pub struct Identity {
    /// The certificate (DER).
    pub cert: CertificateDer<'static>,
    /// The private key (PKCS#8 DER).
    pub key: PrivateKeyDer<'static>,
    /// SHA-256 of the certificate, hex.
    pub fingerprint: String,
    /// Whether it was made just now.
    pub created: bool,
}

/// Why the identity could not be loaded or made.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// Reading or writing the files failed.
    #[error("certificate files: {0}")]
    Io(#[from] std::io::Error),
    /// Generating the certificate failed.
    #[error("certificate generation: {0}")]
    Generate(#[from] rcgen::Error),
}

/// Loads the identity from `data_dir`, making it on first use.
///
/// It is made once per data dir: the check and the creation happen under the data dir's lock, so
/// a `serve` and a `fingerprint` started at the same moment on a new data dir agree on one
/// certificate (the second reads what the first wrote).
pub fn load_or_create(data_dir: &Path) -> Result<Identity, IdentityError> {
    let _lock = fsutil::lock_dir(data_dir)?;
    let cert_path = data_dir.join(CERT_FILE);
    let key_path = data_dir.join(KEY_FILE);
    let created = !(cert_path.exists() && key_path.exists());
    if created {
        let names = vec![tether_net::SERVER_NAME.to_string(), "localhost".to_string()];
        let ck = rcgen::generate_simple_self_signed(names)?;
        fsutil::write_private(&key_path, &ck.signing_key.serialize_der())?;
        fsutil::write_private(&cert_path, ck.cert.der())?;
    }
    let cert = std::fs::read(&cert_path)?;
    let key = std::fs::read(&key_path)?;
    Ok(Identity {
        fingerprint: tether_net::fingerprint(&cert),
        cert: CertificateDer::from(cert),
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)),
        created,
    })
}

/// A certificate chain and its key from PEM files (a CA-issued certificate, say), with the
/// fingerprint of the first certificate (clients may pin it as they pin the self-signed one).
pub fn load_pem(
    cert: &Path,
    key: &Path,
) -> anyhow::Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>, String)> {
    use rustls::pki_types::pem::PemObject as _;
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| anyhow::anyhow!("{}: {e}", cert.display()))?;
    let first = certs
        .first()
        .ok_or_else(|| anyhow::anyhow!("{}: no certificate in it", cert.display()))?;
    let fingerprint = tether_net::fingerprint(first);
    let key =
        PrivateKeyDer::from_pem_file(key).map_err(|e| anyhow::anyhow!("{}: {e}", key.display()))?;
    Ok((certs, key, fingerprint))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_is_made_once_and_owner_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = load_or_create(dir.path()).expect("create");
        assert!(a.created);
        assert_eq!(a.fingerprint.len(), 64);
        let b = load_or_create(dir.path()).expect("load");
        assert!(!b.created);
        assert_eq!(a.fingerprint, b.fingerprint);
        // Racing threads on a new data dir all get the same certificate.
        let fresh = tempfile::tempdir().expect("tempdir");
        let prints: Vec<String> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| load_or_create(fresh.path()).expect("race").fingerprint))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("join"))
                .collect()
        });
        assert!(prints.iter().all(|p| *p == prints[0]), "{prints:?}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for f in [CERT_FILE, KEY_FILE] {
                let mode = std::fs::metadata(dir.path().join(f))
                    .expect("meta")
                    .permissions()
                    .mode();
                assert_eq!(mode & 0o077, 0, "{f} is private");
            }
        }
    }
}
