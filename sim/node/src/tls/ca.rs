//! [`TestCa`]: a certificate authority for the simulation and the tests (rcgen). Every key is
//! Ed25519 made from 32 bytes of an [`Entropy`] stream, every field fixed (serials count up,
//! validity 2020-01-01 to 2100-01-01), and Ed25519 signatures are deterministic: the same
//! stream gives the same certificates, byte for byte.

use std::net::IpAddr;

use cloudproxy_core::entropy::Entropy;
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::TlsError;

/// The PKCS#8 v1 prefix of an Ed25519 private key (RFC 8410 §7), followed by its 32 bytes.
const PKCS8_ED25519_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// A certificate and its key, as rustls takes them and as PEM files hold them.
#[derive(Debug)]
pub struct Issued {
    /// The chain, leaf first (the CA's root is not in it: clients hold it).
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's private key (PKCS#8).
    pub key: PrivateKeyDer<'static>,
    /// The chain in PEM.
    pub chain_pem: String,
    /// The key in PEM (`PRIVATE KEY`).
    pub key_pem: String,
}

/// A test certificate authority (see the module docs).
pub struct TestCa {
    cert: Certificate,
    key: KeyPair,
    entropy: Entropy,
    serial: u64,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa")
            .field("issued", &(self.serial - 1))
            .finish_non_exhaustive()
    }
}

fn cert_error(e: rcgen::Error) -> TlsError {
    TlsError::Certificate(e.to_string())
}

/// An Ed25519 key from the next 32 bytes of `entropy`.
fn ed25519_key(entropy: &mut Entropy) -> Result<KeyPair, TlsError> {
    let seed: [u8; 32] = entropy.next_array();
    let mut der = PKCS8_ED25519_PREFIX.to_vec();
    der.extend_from_slice(&seed);
    KeyPair::from_pkcs8_der_and_sign_algo(&PrivatePkcs8KeyDer::from(der), &rcgen::PKCS_ED25519)
        .map_err(cert_error)
}

/// Parameters with every field fixed: the serial given, the project's validity.
fn params(common_name: &str, serial: u64) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2100, 1, 1);
    params.serial_number = Some(SerialNumber::from_slice(&serial.to_be_bytes()));
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    params.distinguished_name = dn;
    params
}

impl TestCa {
    /// A CA whose keys (its own, then every leaf's) come from `entropy`, in order.
    pub fn new(mut entropy: Entropy) -> Result<Self, TlsError> {
        let key = ed25519_key(&mut entropy)?;
        // Its name carries its key, so that two test CAs never share a name (a client of
        // one then says "unknown issuer" of the other's certificates).
        let tag: String = key
            .public_key_raw()
            .iter()
            .take(4)
            .map(|b| format!("{b:02x}"))
            .collect();
        let mut params = params(&format!("cloudproxy test CA {tag}"), 1);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).map_err(cert_error)?;
        Ok(TestCa {
            cert,
            key,
            entropy,
            serial: 2,
        })
    }

    /// The CA's certificate, the clients' trust anchor.
    pub fn root(&self) -> CertificateDer<'static> {
        self.cert.der().clone()
    }

    /// The CA's certificate in PEM (what `cloudproxy call --tls-ca` reads).
    pub fn root_pem(&self) -> String {
        self.cert.pem()
    }

    /// A server certificate for `names` (DNS SANs) and `ips` (IP SANs), with a fresh key.
    pub fn issue(&mut self, names: &[&str], ips: &[IpAddr]) -> Result<Issued, TlsError> {
        let key = ed25519_key(&mut self.entropy)?;
        let common_name = names
            .first()
            .map(|n| (*n).to_owned())
            .or_else(|| ips.first().map(IpAddr::to_string))
            .unwrap_or_else(|| "cloudproxy".to_owned());
        let mut params = params(&common_name, self.serial);
        self.serial += 1;
        for name in names {
            let name = rcgen::Ia5String::try_from(*name).map_err(cert_error)?;
            params.subject_alt_names.push(SanType::DnsName(name));
        }
        params
            .subject_alt_names
            .extend(ips.iter().map(|ip| SanType::IpAddress(*ip)));
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let leaf = params
            .signed_by(&key, &self.cert, &self.key)
            .map_err(cert_error)?;
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        Ok(Issued {
            chain: vec![leaf.der().clone()],
            key: key_der,
            chain_pem: leaf.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}
