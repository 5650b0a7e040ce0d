//! TLS on the access points' and relays' 443 listeners (**beyond the seed**,
//! docs/protocol.md §13): `tls_port`, `tls_cert_file` and `tls_key_file` in `[ap]` and
//! `[relay]`. A section serves TLS when both files are set; the files are read and checked
//! (PEM, the key matching the certificate) when the plan is made, so that a bad file stops
//! `serve` at start with its name.

use std::path::{Path, PathBuf};

use cloudproxy_node::tls::{self, pem, Tls};

use super::{invalid, ConfigError};

/// The TLS listener of one section, from its three fields.
pub(super) fn section_tls(
    section: &'static str,
    port: u16,
    cert: Option<&Path>,
    key: Option<&Path>,
) -> Result<Option<Tls>, ConfigError> {
    let (cert_field, key_field, port_field) = match section {
        "ap" => ("ap.tls_cert_file", "ap.tls_key_file", "ap.tls_port"),
        _ => (
            "relay.tls_cert_file",
            "relay.tls_key_file",
            "relay.tls_port",
        ),
    };
    let (cert, key) = match (cert, key) {
        (None, None) => return Ok(None),
        (Some(cert), Some(key)) => (cert, key),
        (Some(_), None) => {
            return Err(invalid(
                key_field,
                format!("{cert_field} is set but not {key_field}: TLS on {port_field} needs both"),
            ))
        }
        (None, Some(_)) => {
            return Err(invalid(
                cert_field,
                format!("{key_field} is set but not {cert_field}: TLS on {port_field} needs both"),
            ))
        }
    };
    if port == 0 {
        return Err(invalid(port_field, "port 0 cannot be served on".into()));
    }
    let tls_error = |field: &'static str| move |source| ConfigError::Tls { field, source };
    let chain = pem::load_certs(cert).map_err(tls_error(cert_field))?;
    let private = pem::load_key(key).map_err(tls_error(key_field))?;
    let server = tls::server_config(chain, private, tls::real_provider(), tls::real_time())
        .map_err(|e| ConfigError::Tls {
            field: key_field,
            source: tls::TlsError::File {
                path: format!("{} with {}", key.display(), cert.display()),
                reason: e.to_string(),
            },
        })?;
    Ok(Some(Tls::server(server).on_ports(&[port])))
}

impl super::ServeConfig {
    /// The access points' TLS listener, checked against their other ports.
    pub(super) fn ap_tls(&self) -> Result<Option<Tls>, ConfigError> {
        let ap = &self.ap;
        let served = section_tls(
            "ap",
            ap.tls_port,
            ap.tls_cert_file.as_deref(),
            ap.tls_key_file.as_deref(),
        )?;
        if served.is_some() && ap.ports.contains(&ap.tls_port) {
            return Err(invalid(
                "ap.tls_port",
                format!(
                    "{} is also in ap.ports: one port cannot be both plain and TLS",
                    ap.tls_port
                ),
            ));
        }
        Ok(served)
    }

    /// The relays' TLS listener, checked against their plain port.
    pub(super) fn relay_tls(&self) -> Result<Option<Tls>, ConfigError> {
        let r = &self.relay;
        let served = section_tls(
            "relay",
            r.tls_port,
            r.tls_cert_file.as_deref(),
            r.tls_key_file.as_deref(),
        )?;
        if served.is_some() && r.tls_port == r.tcp_port {
            return Err(invalid(
                "relay.tls_port",
                format!(
                    "{} is also relay.tcp_port: one port cannot be both plain and TLS",
                    r.tls_port
                ),
            ));
        }
        Ok(served)
    }

    /// The TLS private key files configured (each gets the ticket key's permission check).
    pub fn tls_key_files(&self) -> Vec<&Path> {
        key_files([
            self.ap.tls_key_file.as_ref(),
            self.relay.tls_key_file.as_ref(),
        ])
    }
}

/// A warning when this instance serves TLS on its access points but not its relays, or the
/// other way round: a force-TCP client needs both on 443.
pub(super) fn half_warning(config: &super::ServeConfig) -> Option<String> {
    let (ap, relay) = (&config.ap, &config.relay);
    if ap.listen.is_empty() || relay.listen.is_empty() {
        return None;
    }
    let ap_tls = ap.tls_cert_file.is_some() && ap.tls_key_file.is_some();
    let relay_tls = relay.tls_cert_file.is_some() && relay.tls_key_file.is_some();
    let (with, without) = match (ap_tls, relay_tls) {
        (true, false) => ("[ap]", "[relay]"),
        (false, true) => ("[relay]", "[ap]"),
        _ => return None,
    };
    Some(format!(
        "TLS is configured in {with} but not in {without}: clients that may use only TCP 443 (force TCP) need both there, and cannot join through this instance"
    ))
}

/// The TLS key files of a configuration, for the permission warning.
pub(super) fn key_files(files: [Option<&PathBuf>; 2]) -> Vec<&Path> {
    files.into_iter().flatten().map(PathBuf::as_path).collect()
}

#[cfg(test)]
mod tests {
    use super::super::ServeConfig;
    use cloudproxy_core::entropy::Entropy;
    use cloudproxy_node::tls::TestCa;
    use std::path::PathBuf;

    /// A directory of PEM files: a certificate and key for 127.0.2.1, a key of another
    /// certificate, and garbage.
    fn files(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("cloudproxy-tls-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut ca = TestCa::new(Entropy::from_u64(5)).unwrap();
        let ip = "127.0.2.1".parse().unwrap();
        let (ours, other) = (ca.issue(&[], &[ip]).unwrap(), ca.issue(&[], &[ip]).unwrap());
        std::fs::write(dir.join("cert.pem"), &ours.chain_pem).unwrap();
        std::fs::write(dir.join("key.pem"), &ours.key_pem).unwrap();
        std::fs::write(dir.join("other.key"), &other.key_pem).unwrap();
        std::fs::write(dir.join("garbage.pem"), "not a certificate\n").unwrap();
        dir
    }

    fn plan_error(text: &str) -> String {
        ServeConfig::parse(text)
            .unwrap()
            .plan()
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn both_files_serve_tls_on_the_port_and_the_defaults_serve_none() {
        let dir = files("ok");
        let text = format!(
            "[relay]\ntls_port = 8443\ntls_cert_file = \"{}\"\ntls_key_file = \"{}\"",
            dir.join("cert.pem").display(),
            dir.join("key.pem").display()
        );
        let plan = ServeConfig::parse(&text).unwrap().plan().unwrap();
        let tls = plan.relay_tls.expect("TLS on the relays");
        assert_eq!(tls.ports, [8443]);
        assert!(tls.server.is_some() && tls.client.is_none());
        assert!(plan.ap_tls.is_none());
        let defaults = ServeConfig::parse("").unwrap().plan().unwrap();
        assert!(defaults.ap_tls.is_none() && defaults.relay_tls.is_none());
    }

    #[test]
    fn one_file_without_the_other_is_refused_naming_the_missing_field() {
        let err = plan_error("[ap]\ntls_cert_file = \"/x/ap.crt\"");
        assert_eq!(
            err,
            "ap.tls_key_file: ap.tls_cert_file is set but not ap.tls_key_file: TLS on ap.tls_port needs both"
        );
        let err = plan_error("[relay]\ntls_key_file = \"/x/relay.key\"");
        assert!(
            err.starts_with("relay.tls_cert_file: relay.tls_key_file is set"),
            "{err}"
        );
    }

    #[test]
    fn missing_garbage_or_mismatched_files_are_refused_naming_the_file() {
        let dir = files("bad");
        let cert = dir.join("cert.pem").display().to_string();
        let with = |cert: &str, key: &str| {
            plan_error(&format!(
                "[relay]\ntls_cert_file = \"{cert}\"\ntls_key_file = \"{key}\""
            ))
        };
        let key = dir.join("key.pem").display().to_string();
        let err = with("/nonexistent/relay.crt", &key);
        assert!(
            err.starts_with("relay.tls_cert_file: /nonexistent/relay.crt: cannot be read"),
            "{err}"
        );
        let garbage = dir.join("garbage.pem").display().to_string();
        let err = with(&garbage, &key);
        assert!(
            err.contains(&garbage) && err.contains("holds no certificate"),
            "{err}"
        );
        let err = with(&cert, &garbage);
        assert!(
            err.starts_with(&format!(
                "relay.tls_key_file: {garbage}: holds no usable private key"
            )),
            "{err}"
        );
        let other = dir.join("other.key").display().to_string();
        let err = with(&cert, &other);
        assert!(
            err.starts_with("relay.tls_key_file: ") && err.contains(&other),
            "{err}"
        );
        assert!(err.to_lowercase().contains("key"), "{err}");
    }

    #[test]
    fn tls_on_one_section_only_is_warned_about() {
        let only_relay = "[relay]\ntls_cert_file = \"/x/r.crt\"\ntls_key_file = \"/x/r.key\"";
        let warnings = ServeConfig::parse(only_relay).unwrap().warnings();
        assert!(
            warnings
                .iter()
                .any(|w| w.starts_with("TLS is configured in [relay] but not in [ap]")),
            "{warnings:?}"
        );
        assert!(ServeConfig::parse("").unwrap().warnings().is_empty());
        // A relay-only instance: its access points are elsewhere.
        let relay_only = format!("[ap]\nlisten = []\nrelays = [\"127.0.2.1\"]\n{only_relay}");
        assert!(ServeConfig::parse(&relay_only)
            .unwrap()
            .warnings()
            .is_empty());
    }

    #[test]
    fn a_tls_port_that_is_also_a_plain_port_is_refused() {
        let dir = files("port");
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        let files = format!(
            "tls_cert_file = \"{}\"\ntls_key_file = \"{}\"",
            cert.display(),
            key.display()
        );
        let err = plan_error(&format!("[ap]\ntls_port = 8000\n{files}"));
        assert!(
            err.starts_with("ap.tls_port: 8000 is also in ap.ports"),
            "{err}"
        );
        let err = plan_error(&format!("[relay]\ntls_port = 4000\n{files}"));
        assert!(
            err.starts_with("relay.tls_port: 4000 is also relay.tcp_port"),
            "{err}"
        );
    }
}
