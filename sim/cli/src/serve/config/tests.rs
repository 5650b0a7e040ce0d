//! The configuration's tests.

use super::*;

#[test]
fn defaults_map_the_seed_onto_loopback() {
    let plan = ServeConfig::parse("").unwrap().plan().unwrap();
    assert_eq!(plan.aps.len(), 4);
    assert_eq!(plan.ap_ports, AP_PORTS);
    assert_eq!(plan.relays, [parse_ip("127.0.2.1"), parse_ip("127.0.2.2")]);
    assert_eq!(plan.relay.udp_ports, 4500..=4650);
    assert_eq!(plan.ap.relays.len(), 2);
    assert_eq!(plan.ap.relays[0].tcp_port, 4000);
    assert!(plan.relay.sdrtn[0].contains(parse_ip("127.0.3.1")));
}

#[test]
fn the_example_config_is_the_defaults() {
    let example =
        ServeConfig::parse(include_str!("../../../../../deploy/cloudproxy.toml")).unwrap();
    let plan = example.plan().unwrap();
    let defaults = ServeConfig::default().plan().unwrap();
    assert_eq!(plan.aps, defaults.aps);
    assert_eq!(plan.ap_ports, defaults.ap_ports);
    assert_eq!(plan.relays, defaults.relays);
    assert_eq!(plan.relay.udp_ports, defaults.relay.udp_ports);
    assert_eq!(plan.relay.idle_timeout, defaults.relay.idle_timeout);
    assert_eq!(
        plan.relay.max_pending_handshakes,
        defaults.relay.max_pending_handshakes
    );
    assert_eq!(plan.ap.ticket_lifetime, defaults.ap.ticket_lifetime);
    let (a, d) = (&plan.ap, &defaults.ap);
    assert_eq!(
        (a.max_requests_per_ip, a.max_requests_per_prefix),
        (d.max_requests_per_ip, d.max_requests_per_prefix)
    );
    assert_eq!(
        (a.max_tracked_ips, a.max_tracked_prefixes),
        (d.max_tracked_ips, d.max_tracked_prefixes)
    );
    assert_eq!(
        (
            a.max_tcp_connections,
            a.max_tcp_connections_per_ip,
            a.max_tcp_connections_per_prefix
        ),
        (
            d.max_tcp_connections,
            d.max_tcp_connections_per_ip,
            d.max_tcp_connections_per_prefix
        )
    );
    assert_eq!(a.tcp_idle_timeout, d.tcp_idle_timeout);
    assert_eq!(
        a.max_requests_per_tcp_connection,
        d.max_requests_per_tcp_connection
    );
    assert_eq!(plan.metrics, Some("127.0.0.1:9464".parse().unwrap()));
    let (e, d) = (plan.metrics_limits, defaults.metrics_limits);
    assert_eq!(
        (e.max_connections, e.request_timeout, e.write_timeout),
        (d.max_connections, d.request_timeout, d.write_timeout)
    );
}

#[test]
fn errors_name_the_field() {
    let err = |text: &str| {
        ServeConfig::parse(text)
            .unwrap()
            .plan()
            .unwrap_err()
            .to_string()
    };
    assert!(err("sdrtn = []").starts_with("sdrtn: no SD-RTN block"));
    assert!(err("[relay]\nudp_ports = \"10-5\"").starts_with("relay.udp_ports:"));
    assert!(err("[ap]\nlisten = []\n[relay]\nlisten = []").contains("nothing to serve"));
    assert!(err("[relay]\nlisten = []").starts_with("ap.relays:"));
    assert!(err("[relay]\nhandshake_timeout_ms = 0").starts_with("relay.handshake_timeout_ms"));
    assert!(err("metrics_max_connections = 0").starts_with("metrics_max_connections"));
    assert!(err("metrics_request_timeout_ms = 0").starts_with("metrics_request_timeout_ms"));
    let syntax = ServeConfig::parse("[relay]\ntcp_prot = 4000").unwrap_err();
    assert!(syntax.contains("tcp_prot"), "{syntax}");
}

#[test]
fn relays_handed_out_may_live_elsewhere() {
    let config = ServeConfig::parse(
        "[ap]\nrelays = [\"127.0.2.1\", \"127.0.2.9:4400\"]\n[relay]\nlisten = []",
    )
    .unwrap();
    let plan = config.plan().unwrap();
    assert!(plan.relays.is_empty());
    assert_eq!(plan.ap.relays[1].tcp_port, 4400);
    assert_eq!(plan.ap.relays[0].tcp_port, 4000);
}

#[test]
fn the_key_is_required_and_checked() {
    let config = ServeConfig::default();
    assert!(matches!(
        config.ticket_key(None, None),
        Err(ConfigError::NoTicketKey)
    ));
    let good = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    assert!(config.ticket_key(None, Some(good.into())).is_ok());
    assert!(config.ticket_key(None, Some(format!("{good}\n"))).is_ok());
    let short = config.ticket_key(None, Some("abcd".into())).unwrap_err();
    assert!(short.to_string().contains("not 64 hex"), "{short}");
    let zeros = config.ticket_key(None, Some("0".repeat(64))).unwrap_err();
    assert!(zeros.to_string().contains("all zeros"));
    let not_hex = config.ticket_key(None, Some("zz".repeat(32))).unwrap_err();
    assert!(not_hex.to_string().contains("non-hex"));
    let both = config
        .ticket_key(Some(Path::new("/nonexistent")), Some(good.into()))
        .unwrap_err();
    assert!(matches!(both, ConfigError::TwoTicketKeys(_)));
}

#[test]
fn port_ranges() {
    assert_eq!(parse_port_range("4500-4503"), Ok(4500..=4503));
    assert_eq!(parse_port_range("4500"), Ok(4500..=4500));
    assert!(parse_port_range("").unwrap().is_empty());
    assert!(parse_port_range("0-4").is_err());
    assert!(parse_port_range("1000-9000").is_err());
}

#[test]
fn an_endless_or_huge_config_fails_at_its_bound_naming_the_file() {
    let err = ServeConfig::load(Path::new("/dev/zero")).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("/dev/zero"), "{text}");
    assert!(text.contains(&MAX_CONFIG_BYTES.to_string()), "{text}");
    assert!(matches!(
        err,
        ConfigError::Read {
            source: ReadError::TooLarge { .. },
            ..
        }
    ));
    let missing = ServeConfig::load(Path::new("/nonexistent/serve.toml")).unwrap_err();
    assert!(
        missing.to_string().contains("/nonexistent/serve.toml"),
        "{missing}"
    );
}

#[test]
fn an_endless_key_file_fails_at_its_bound_naming_the_file() {
    let err = ServeConfig::default()
        .ticket_key(Some(Path::new("/dev/zero")), None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("/dev/zero"), "{err}");
    assert!(err.contains(&MAX_KEY_FILE_BYTES.to_string()), "{err}");
}

#[test]
fn an_open_relay_is_refused_unless_asked_for() {
    for block in ["0.0.0.0/0", "::/0", "10.0.0.0/7", "2001::/15"] {
        let text = format!("sdrtn = [\"127.0.3.0/24\", \"{block}\"]");
        let err = ServeConfig::parse(&text)
            .unwrap()
            .plan()
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("sdrtn: "), "{err}");
        assert!(err.contains("open relay"), "{err}");
        assert!(err.contains("allow_open_relay"), "{err}");
        let config = ServeConfig::parse(&format!("allow_open_relay = true\n{text}")).unwrap();
        assert!(config.plan().is_ok(), "{block}");
        let warnings = config.warnings();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("open relay") || warnings[0].contains("most of the internet"));
    }
    // The widest blocks still accepted without it; no warning.
    let config = ServeConfig::parse("sdrtn = [\"10.0.0.0/8\", \"2001::/16\"]").unwrap();
    assert!(config.plan().is_ok());
    assert!(config.warnings().is_empty());
}

#[test]
fn a_keepalive_not_below_the_idle_timeout_is_refused_naming_both() {
    for (keepalive, idle) in [(30_000, 30_000), (40_000, 30_000)] {
        let text =
            format!("[relay]\nkeepalive_interval_ms = {keepalive}\nidle_timeout_ms = {idle}");
        let err = ServeConfig::parse(&text)
            .unwrap()
            .plan()
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("relay.keepalive_interval_ms: "), "{err}");
        assert!(err.contains("relay.idle_timeout_ms"), "{err}");
        assert!(err.contains(&format!("{keepalive} ms")), "{err}");
        assert!(err.contains(&format!("({idle} ms)")), "{err}");
    }
    let ok = ServeConfig::parse("[relay]\nkeepalive_interval_ms = 29999\nidle_timeout_ms = 30000");
    assert!(ok.unwrap().plan().is_ok());
}
