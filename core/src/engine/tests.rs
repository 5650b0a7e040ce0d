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

// --- The reference model --------------------------------------------------------------------

/// One engine operation.
#[derive(Clone, Debug)]
enum Op {
    Set(&'static str),
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
];

/// A deliberately simple restatement of the rules.
#[derive(Debug, Default)]
struct Model {
    /// 0 idle, 1 joining, 2 joined, 3 leaving.
    state: u8,
    enabled: bool,
    server: &'static str,
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
        _ => "list",
    }
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => proptest::sample::select(CALLS).prop_map(|c| Op::Set(c.0)),
        1 => Just(Op::Join),
        1 => Just(Op::Joined),
        1 => Just(Op::Leave),
        1 => Just(Op::Left),
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
            if model.state == 0 {
                prop_assert_eq!(engine.config_in_force(), None);
            } else {
                prop_assert_eq!(engine.config_in_force(), in_force_at_join.as_ref());
            }
        }
    }
}
