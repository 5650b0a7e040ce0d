//! PEM files: a certificate chain, a private key, a CA bundle (`cloudproxy serve`'s
//! `tls_cert_file` / `tls_key_file`, `cloudproxy call --tls-ca`). Each error names the file
//! and what is wrong with it.

use std::io::Read;
use std::path::Path;

use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::TlsError;

/// The largest PEM file read (a long chain or a system CA bundle fits many times over).
pub const MAX_PEM_BYTES: u64 = 4 * 1024 * 1024;

fn file_error(path: &Path, reason: impl Into<String>) -> TlsError {
    TlsError::File {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

/// The bytes of `path`, at most [`MAX_PEM_BYTES`].
fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    let file =
        std::fs::File::open(path).map_err(|e| file_error(path, format!("cannot be read: {e}")))?;
    let mut bytes = Vec::new();
    file.take(MAX_PEM_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| file_error(path, format!("cannot be read: {e}")))?;
    if bytes.len() as u64 > MAX_PEM_BYTES {
        return Err(file_error(
            path,
            format!("is larger than {MAX_PEM_BYTES} bytes: not a PEM file"),
        ));
    }
    Ok(bytes)
}

/// The certificates of a PEM file, in order (a chain: leaf first).
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(path, format!("is not valid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(file_error(
            path,
            "holds no certificate (expected PEM blocks \"-----BEGIN CERTIFICATE-----\")",
        ));
    }
    Ok(certs)
}

/// The private key of a PEM file (PKCS#8 `PRIVATE KEY`, `RSA PRIVATE KEY` or `EC PRIVATE
/// KEY`).
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read(path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| {
        file_error(
            path,
            format!("holds no usable private key (expected a PEM \"PRIVATE KEY\" block): {e}"),
        )
    })
}

/// The trust anchors of a PEM CA file (one or more certificates).
pub fn load_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let certs = load_certs(path)?;
    let mut store = RootCertStore::empty();
    for cert in certs {
        store.add(cert).map_err(|e| {
            file_error(
                path,
                format!("holds a certificate that is not a usable CA: {e}"),
            )
        })?;
    }
    Ok(store)
}
