//! Tests of the engine's state rules, and a reference model they are checked against.

use proptest::prelude::*;

use super::*;

const ENABLE: &str = r#"{"rtc.enable_proxy":true}"#;
const DISABLE: &str = r#"{"rtc.enable_proxy":false}"#;
const SOCKS: &str = r#"{"rtc.proxy_server":[0, "127.0.0.1", 1080]}"#;

fn joined_engine() -> Engine {
    let mut engine = Engine::default();
    engine.set_parameters(ENABLE).unwrap();
    engine.join().unwrap();
    assert!(engine.on_joined());
    engine
}

#[test]
fn proxy_keys_in_a_channel_return_minus_4_and_change_nothing() {
    let mut engine = joined_engine();
    let before = engine.config().clone();
    for text in [
        ENABLE,
        DISABLE,
        SOCKS,
        r#"{"x":1,"rtc.enable_proxy":false}"#,
    ] {
        let err = engine.set_parameters(text).unwrap_err();
        assert_eq!(err.code().as_i32(), -4, "{text}");
        assert_eq!(engine.config(), &before);
    }
    assert_eq!(
        engine.set_parameters(DISABLE).unwrap_err().to_string(),
        "\"rtc.enable_proxy\": the proxy can only be configured before joining a channel or after leaving it, and the engine is joined"
    );
}

#[test]
fn proxy_keys_are_refused_while_joining_and_leaving_too() {
    let mut engine = Engine::default();
    engine.join().unwrap();
    assert_eq!(
        engine.set_parameters(ENABLE).unwrap_err().code(),
        Code::NotSupported
    );
    engine.leave().unwrap();
    assert_eq!(engine.state(), EngineState::Leaving);
    assert_eq!(
        engine.set_parameters(ENABLE).unwrap_err().code(),
        Code::NotSupported
    );
    assert!(engine.on_left());
    assert!(engine.set_parameters(ENABLE).is_ok());
}

#[test]
fn other_keys_are_accepted_in_a_channel() {
    let mut engine = joined_engine();
    let accepted = engine
        .set_parameters(r#"{"rtc.log_filter":65535}"#)
        .unwrap();
    assert_eq!(accepted.ignored, ["rtc.log_filter"]);
}

#[test]
fn invalid_text_is_minus_2_in_any_state() {
    let mut engine = joined_engine();
    assert_eq!(engine.set_parameters("{").unwrap_err().code().as_i32(), -2);
    let mut idle = Engine::default();
    assert_eq!(idle.set_parameters("[1]").unwrap_err().code().as_i32(), -2);
}

#[test]
fn join_takes_the_config_in_force_and_later_changes_apply_at_the_next_join() {
    let mut engine = joined_engine();
    assert!(engine.config_in_force().unwrap().enabled);
    engine.leave().unwrap();
    engine.on_left();
    assert_eq!(engine.config_in_force(), None);
    engine.set_parameters(DISABLE).unwrap();
    let taken = engine.join().unwrap().clone();
    assert!(!taken.enabled);
    assert_eq!(engine.config_in_force(), Some(&taken));
}

#[test]
fn join_in_a_channel_is_minus_17_and_leave_outside_is_minus_18() {
    let mut engine = Engine::default();
    assert_eq!(engine.leave().unwrap_err().code().as_i32(), -18);
    engine.join().unwrap();
    assert_eq!(engine.join().unwrap_err().code().as_i32(), -17);
    engine.on_joined();
    assert_eq!(engine.join().unwrap_err().code().as_i32(), -17);
    engine.leave().unwrap();
    assert_eq!(engine.join().unwrap_err().code().as_i32(), -17);
    assert_eq!(engine.leave().unwrap_err().code().as_i32(), -18);
    engine.on_left();
    assert_eq!(engine.leave().unwrap_err().code().as_i32(), -18);
}

#[test]
fn completion_events_out_of_state_are_ignored() {
    let mut engine = Engine::default();
    assert!(!engine.on_joined());
    assert!(!engine.on_left());
    engine.join().unwrap();
    assert!(!engine.on_left());
    assert_eq!(engine.state(), EngineState::Joining);
}

#[test]
fn compat_mode_engine_accepts_the_seed_type_two_example() {
    let seed = r#"{"rtc.proxy_server":[2, "["192.168.0.112","127.0.0.1"]", 0]}"#;
    assert_eq!(
        Engine::default().set_parameters(seed).unwrap_err().code(),
        Code::InvalidArgument
    );
    assert!(Engine::new(Mode::Compat).set_parameters(seed).is_ok());
}

// --- setCloudProxy (beyond the seed) ---------------------------------------------------------

#[test]
fn a_fresh_engine_has_no_cloud_proxy_type_and_joins_as_the_seed() {
    let mut engine = Engine::default();
    engine.set_parameters(SOCKS).unwrap();
    assert_eq!(engine.cloud_proxy(), None);
    let taken = engine.join().unwrap().clone();
    assert_eq!(&taken, engine.config());
    assert_eq!(engine.cloud_proxy_in_force(), None);
}

#[test]
fn cloud_proxy_types_map_onto_the_proxy_config() {
    use crate::params::ProxyServer;
    let list = r#"{"rtc.proxy_server":[2,"[\"1.1.1.1\"]",0]}"#;
    for (kind, enabled) in [
        (CloudProxyType::ForceUdp, true),
        (CloudProxyType::ForceTcp, true),
        (CloudProxyType::Automatic, false),
    ] {
        // The cloud server chosen with setParameters is the one used...
        let mut engine = Engine::default();
        engine.set_parameters(list).unwrap();
        engine.set_cloud_proxy(kind).unwrap();
        let taken = engine.join().unwrap().clone();
        assert_eq!(taken.enabled, enabled, "{kind}");
        assert_eq!(taken.server.proxy_type(), 2, "{kind}");
        assert_eq!(engine.cloud_proxy_in_force(), Some(kind));
        // ... and a SOCKS5 server is not the cloud proxy: the default is.
        let mut engine = Engine::default();
        engine.set_parameters(SOCKS).unwrap();
        engine.set_parameters(ENABLE).unwrap();
        engine.set_cloud_proxy(kind).unwrap();
        assert_eq!(engine.join().unwrap().server, ProxyServer::default_cloud());
        // The configuration as set is untouched.
        assert_eq!(engine.config().server.proxy_type(), 0);
        engine.leave().unwrap();
        engine.on_left();
        assert_eq!(engine.cloud_proxy_in_force(), None);
        assert_eq!(engine.cloud_proxy(), Some(kind));
    }
}

#[test]
fn cloud_proxy_in_a_channel_is_minus_4_and_changes_nothing() {
    let mut engine = joined_engine();
    let err = engine
        .set_cloud_proxy(CloudProxyType::ForceTcp)
        .unwrap_err();
    assert_eq!(err.code().as_i32(), -4);
    assert_eq!(engine.cloud_proxy(), None);
    assert_eq!(
        err.to_string(),
        "setCloudProxy(2 (force-tcp)): the cloud proxy type can only be set before joining a \
         channel or after leaving it, and the engine is joined"
    );
}

#[test]
fn changing_between_forced_types_needs_automatic_first() {
    let mut engine = Engine::default();
    engine.set_cloud_proxy(CloudProxyType::ForceUdp).unwrap();
    // The same type again is fine.
    engine.set_cloud_proxy(CloudProxyType::ForceUdp).unwrap();
    let err = engine
        .set_cloud_proxy(CloudProxyType::ForceTcp)
        .unwrap_err();
    assert_eq!(err.code(), Code::Refused);
    assert_eq!(err.code().as_i32(), -5);
    assert_eq!(engine.cloud_proxy(), Some(CloudProxyType::ForceUdp));
    assert_eq!(
        err.to_string(),
        "setCloudProxy(2 (force-tcp)): the cloud proxy type is 1 (force-udp); to change it, \
         call setCloudProxy(0) (automatic) first, then setCloudProxy(2)"
    );
    engine.set_cloud_proxy(CloudProxyType::Automatic).unwrap();
    engine.set_cloud_proxy(CloudProxyType::ForceTcp).unwrap();
    assert_eq!(engine.cloud_proxy(), Some(CloudProxyType::ForceTcp));
    assert_eq!(CloudProxyType::from_i32(2), Some(CloudProxyType::ForceTcp));
    assert_eq!(CloudProxyType::from_i32(3), None);
    assert_eq!(CloudProxyType::from_i32(-1), None);
}

// --- The reference model --------------------------------------------------------------------

/// One engine operation.
#[derive(Clone, Debug)]
enum Op {
    Set(&'static str),
    Cloud(CloudProxyType),
    Join,
    Joined,
    Leave,
    Left,
}

/// The calls the model knows: (text, proxy keys touched, valid, enable value, server label).
const CALLS: &[(&str, Option<bool>, Option<&str>, bool)] = &[
    (ENABLE, Some(true), None, true),
    (DISABLE, Some(false), None, true),
    (SOCKS, None, Some("socks"), true),
    (
        r#"{"rtc.proxy_server":[2,"[\"1.1.1.1\"]",0]}"#,
        None,
        Some("list"),
        true,
    ),
    (
        r#"{"rtc.enable_proxy":true,"rtc.proxy_server":[1,"a.example",0]}"#,
        Some(true),
        Some("domain"),
        true,
    ),
    (r#"{"rtc.log_filter":1}"#, None, None, true),
    (r#"{"rtc.enable_proxy":"yes"}"#, None, None, false),
    (
        r#"{"rtc.enable_proxy":true,"rtc.proxy_server":[9,"x",0]}"#,
        None,
        None,
        false,
    ),
    ("not json", None, None, false),
    (
        r#"{"rtc.proxy_server":[3,"proxy.corp",3128,"u","p"]}"#,
        None,
        Some("http"),
        true,
    ),
];

/// A deliberately simple restatement of the rules.
#[derive(Debug, Default)]
struct Model {
    /// 0 idle, 1 joining, 2 joined, 3 leaving.
    state: u8,
    enabled: bool,
    server: &'static str,
    /// setCloudProxy's type, as its integer.
    cloud: Option<i32>,
}

impl Model {
    fn step(&mut self, op: &Op) -> i32 {
        match op {
            Op::Set(text) => {
                let (_, enable, server, valid) = CALLS.iter().find(|c| c.0 == *text).unwrap();
                if !valid {
                    return -2;
                }
                if (enable.is_some() || server.is_some()) && self.state != 0 {
                    return -4;
                }
                if let Some(e) = enable {
                    self.enabled = *e;
                }
                if let Some(s) = server {
                    self.server = s;
                }
                0
            }
            Op::Cloud(_) if self.state != 0 => -4,
            Op::Cloud(kind) => {
                let asked = kind.as_i32();
                match self.cloud {
                    Some(current) if current != asked && current != 0 && asked != 0 => -5,
                    _ => {
                        self.cloud = Some(asked);
                        0
                    }
                }
            }
            Op::Join if self.state == 0 => {
                self.state = 1;
                0
            }
            Op::Join => -17,
            Op::Leave if self.state == 1 || self.state == 2 => {
                self.state = 3;
                0
            }
            Op::Leave => -18,
            Op::Joined => {
                if self.state == 1 {
                    self.state = 2;
                }
                0
            }
            Op::Left => {
                if self.state == 3 {
                    self.state = 0;
                }
                0
            }
        }
    }
}

fn server_label(server: &crate::params::ProxyServer) -> &'static str {
    match server.proxy_type() {
        0 => "socks",
        1 if server == &crate::params::ProxyServer::default_cloud() => "",
        1 => "domain",
        2 => "list",
        _ => "http",
    }
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => proptest::sample::select(CALLS).prop_map(|c| Op::Set(c.0)),
        1 => Just(Op::Join),
        1 => Just(Op::Joined),
        1 => Just(Op::Leave),
        1 => Just(Op::Left),
        1 => proptest::sample::select(vec![
            CloudProxyType::Automatic,
            CloudProxyType::ForceUdp,
            CloudProxyType::ForceTcp,
        ])
        .prop_map(Op::Cloud),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn engine_matches_the_reference_model(ops in proptest::collection::vec(arb_op(), 0..40)) {
        let mut engine = Engine::default();
        let mut model = Model::default();
        let mut in_force_at_join = None;
        for op in &ops {
            let expected = model.step(op);
            let code = match op {
                Op::Set(text) => engine.set_parameters(text).map(|_| ()).map_err(|e| e.code()),
                Op::Cloud(kind) => engine.set_cloud_proxy(*kind).map_err(|e| e.code()),
                Op::Join => engine.join().map(|c| in_force_at_join = Some(c.clone())).map_err(|e| e.code()),
                Op::Joined => { engine.on_joined(); Ok(()) }
                Op::Leave => engine.leave().map_err(|e| e.code()),
                Op::Left => { engine.on_left(); Ok(()) }
            };
            let code = code.err().map_or(0, Code::as_i32);
            prop_assert_eq!(code, expected, "op {:?}", op);
            prop_assert_eq!(engine.state() as u8, model.state);
            prop_assert_eq!(engine.config().enabled, model.enabled);
            prop_assert_eq!(server_label(&engine.config().server), model.server);
            prop_assert_eq!(engine.cloud_proxy().map(CloudProxyType::as_i32), model.cloud);
            if model.state == 0 {
                prop_assert_eq!(engine.config_in_force(), None);
            } else {
                prop_assert_eq!(engine.config_in_force(), in_force_at_join.as_ref());
            }
            if let (Op::Join, 0, Some(taken)) = (op, expected, &in_force_at_join) {
                // The configuration taken: the seed's as set, or mapped by the cloud type.
                let (enabled, label) = match model.cloud {
                    None => (model.enabled, model.server),
                    Some(kind) => (
                        kind != 0,
                        if model.server == "domain" || model.server == "list" { model.server } else { "" },
                    ),
                };
                prop_assert_eq!(taken.enabled, enabled);
                prop_assert_eq!(server_label(&taken.server), label);
            }
        }
    }
}
