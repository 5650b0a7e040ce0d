//! `engine_ops`: sequences of engine calls checked against a reference model of the rules.
//!
//! Input: a mode byte (even = strict, odd = compat), then [`Op`]s. After every op the engine's
//! return code, state, configuration and configuration in force must be the model's:
//!
//! - `setParameters`: an invalid text is `-2` in any state; proxy keys outside `idle` are `-4`;
//!   otherwise `0`, and the update is applied (keys of other features are listed as ignored);
//! - `join`: `0` in `idle` (taking the configuration into force), else `-17`;
//! - `leave`: `0` in `joining` or `joined`, else `-18`;
//! - the connection callbacks (`on_joined`, `on_left`) move `joining → joined` and
//!   `leaving → idle` (dropping the configuration in force) and do nothing elsewhere;
//! - `setCloudProxy(type)` (beyond the seed): `-4` outside `idle`, `-5` from one forced type
//!   to another, else `0`; once set, `join` takes the configuration mapped by the type (on with
//!   the cloud server for a forced type, off with it for automatic; the cloud server is the
//!   configured one when it is a cloud proxy, else the default).
//!
//! The model uses the grammar ([`parse`]) to know what a text means: the grammar itself is
//! the `params` target's business.

use arbitrary::{Arbitrary, Unstructured};
use cloudproxy_core::engine::{CloudProxyType, Code, Engine, EngineError, EngineState};
use cloudproxy_core::params::{parse, Mode, ProxyConfig, ProxyServer};

use super::input::{self, Writer};

/// Texts that mean something, so that short inputs reach every rule.
pub const TEXTS: &[&str] = &[
    r#"{"rtc.enable_proxy":true}"#,
    r#"{"rtc.enable_proxy":false}"#,
    r#"{"rtc.proxy_server":[0, "127.0.0.1", 1080]}"#,
    r#"{"rtc.proxy_server":[1, "ap-proxy.agora.io", 0]}"#,
    r#"{"rtc.proxy_server":[2,"[\"192.168.0.112\",\"127.0.0.1\"]",0]}"#,
    // The seed's type-2 example as Java unescapes it: compat mode only.
    r#"{"rtc.proxy_server":[2, "["192.168.0.112","127.0.0.1"]", 0]}"#,
    r#"{"rtc.enable_proxy":true,"rtc.proxy_server":[0,"::1",1]}"#,
    r#"{"che.video.lowBitRateStreamParameter":{"width":160}}"#,
    r#"{"rtc.enable_proxy":true,"che.audio.level":1}"#,
    r#"{"rtc.enable_proxy":1}"#,
    r#"{"rtc.proxy_server":[3, "x", 0]}"#,
    r#"{"rtc.enable_proxy":true,"rtc.enable_proxy":false}"#,
    "not json",
    "",
    // Beyond the seed: an HTTP proxy (type 3), with and without credentials.
    r#"{"rtc.enable_proxy":true,"rtc.proxy_server":[3,"proxy.corp",3128]}"#,
    r#"{"rtc.proxy_server":[3,"10.0.0.8",8080,"alice","secret"]}"#,
];

/// What a `setParameters` call is given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Text {
    /// One of [`TEXTS`] (index taken modulo its length).
    Known(u8),
    /// Arbitrary bytes, as UTF-8 (invalid sequences replaced).
    Raw(Vec<u8>),
}

impl Text {
    /// The text.
    pub fn text(&self) -> String {
        match self {
            Text::Known(i) => TEXTS[usize::from(*i) % TEXTS.len()].to_owned(),
            Text::Raw(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        }
    }
}

/// One call on the engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// `setParameters(text)`.
    Set(Text),
    /// `joinChannel`.
    Join,
    /// The connection came up (`on_joined`).
    Joined,
    /// `leaveChannel`.
    Leave,
    /// The connection was torn down (`on_left`).
    Left,
    /// `setCloudProxy(type)` (beyond the seed): 0, 1, 2, or an out-of-range value (refused by
    /// the API's type, so it is not called).
    Cloud(u8),
}

impl<'a> Arbitrary<'a> for Op {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(match input::tag(u, 7) {
            0 => Op::Set(Text::Known(input::byte(u))),
            1 => Op::Set(Text::Raw(input::short_bytes(u))),
            2 => Op::Join,
            3 => Op::Joined,
            4 => Op::Leave,
            6 => Op::Cloud(input::byte(u)),
            _ => Op::Left,
        })
    }
}

impl Op {
    /// Writes the op in the format [`Op::arbitrary`] reads.
    pub fn encode(&self, w: &mut Writer) {
        match self {
            Op::Set(Text::Known(i)) => w.byte(0).byte(*i),
            Op::Set(Text::Raw(bytes)) => w.byte(1).short_bytes(bytes),
            Op::Join => w.byte(2),
            Op::Joined => w.byte(3),
            Op::Leave => w.byte(4),
            Op::Left => w.byte(5),
            Op::Cloud(kind) => w.byte(6).byte(*kind),
        };
    }
}

/// A whole input: the mode, then the ops.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Script {
    /// How the engine reads `setParameters`.
    pub compat: bool,
    /// The calls.
    pub ops: Vec<Op>,
}

impl Script {
    /// Reads a script.
    pub fn decode(data: &[u8]) -> Script {
        let mut u = Unstructured::new(data);
        let compat = input::flag(&mut u);
        Script {
            compat,
            ops: input::ops(&mut u),
        }
    }

    /// Writes a script.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.flag(self.compat);
        for op in &self.ops {
            op.encode(&mut w);
        }
        w.into_bytes()
    }
}

/// The reference model: the rules, written as plainly as possible.
#[derive(Debug, Default)]
struct Model {
    state: EngineState,
    config: ProxyConfig,
    in_force: Option<ProxyConfig>,
    /// setCloudProxy's type, as its integer.
    cloud: Option<i32>,
}

impl Model {
    /// The configuration `join` takes.
    fn taken(&self) -> ProxyConfig {
        match self.cloud {
            None => self.config.clone(),
            Some(kind) => ProxyConfig {
                enabled: kind != 0,
                server: match self.config.server.proxy_type() {
                    1 | 2 => self.config.server.clone(),
                    _ => ProxyServer::default_cloud(),
                },
            },
        }
    }
}

/// The target: see the module docs.
pub fn run(data: &[u8]) {
    let script = Script::decode(data);
    let mode = if script.compat {
        Mode::Compat
    } else {
        Mode::Strict
    };
    let mut engine = Engine::new(mode);
    let mut model = Model::default();
    for (i, op) in script.ops.iter().enumerate() {
        let code = step(&mut engine, &mut model, mode, op);
        assert!(
            [0, -2, -4, -5, -17, -18].contains(&code),
            "op {i} {op:?}: unknown code {code}"
        );
        assert_eq!(engine.state(), model.state, "op {i} {op:?}: state");
        assert_eq!(engine.config(), &model.config, "op {i} {op:?}: config");
        assert_eq!(
            engine.cloud_proxy().map(CloudProxyType::as_i32),
            model.cloud,
            "op {i} {op:?}: cloud proxy type"
        );
        assert_eq!(
            engine.config_in_force(),
            model.in_force.as_ref(),
            "op {i} {op:?}: config in force"
        );
        // The configuration in force is the one taken at join, whatever came after.
        assert_eq!(
            model.in_force.is_some(),
            model.state != EngineState::Idle,
            "op {i} {op:?}: a configuration is in force exactly while in a channel"
        );
    }
}

/// Runs one op on the engine and the model, checks the engine's answer against the model's,
/// and returns the code.
fn step(engine: &mut Engine, model: &mut Model, mode: Mode, op: &Op) -> i32 {
    match op {
        Op::Set(text) => {
            let text = text.text();
            let got = engine.set_parameters(&text);
            let expected = match parse(&text, mode) {
                Err(_) => Code::InvalidArgument,
                Ok(update) if update.touches_proxy() && model.state != EngineState::Idle => {
                    Code::NotSupported
                }
                Ok(update) => {
                    model.config.apply(&update);
                    let accepted = got.as_ref().map(|a| a.ignored.clone());
                    assert_eq!(accepted, Ok(update.ignored), "setParameters({text:?})");
                    Code::Ok
                }
            };
            code_of(
                got.map(|_| ()),
                expected,
                &format!("setParameters({text:?})"),
            )
        }
        Op::Join => {
            let got = engine.join().cloned();
            let expected = if model.state == EngineState::Idle {
                model.state = EngineState::Joining;
                model.in_force = Some(model.taken());
                assert_eq!(
                    got.as_ref().ok(),
                    model.in_force.as_ref(),
                    "join returns the config"
                );
                Code::Ok
            } else {
                Code::JoinRejected
            };
            code_of(got.map(|_| ()), expected, "join")
        }
        Op::Leave => {
            let got = engine.leave();
            let expected = match model.state {
                EngineState::Joining | EngineState::Joined => {
                    model.state = EngineState::Leaving;
                    Code::Ok
                }
                _ => Code::LeaveRejected,
            };
            code_of(got, expected, "leave")
        }
        Op::Cloud(value) => {
            let Some(kind) = CloudProxyType::from_i32(i32::from(*value)) else {
                assert!(*value > 2, "{value} is a cloud proxy type");
                return 0;
            };
            let asked = kind.as_i32();
            let got = engine.set_cloud_proxy(kind);
            let expected = match model.cloud {
                _ if model.state != EngineState::Idle => Code::NotSupported,
                Some(current) if current != asked && current != 0 && asked != 0 => Code::Refused,
                _ => {
                    model.cloud = Some(asked);
                    Code::Ok
                }
            };
            code_of(got, expected, &format!("setCloudProxy({asked})"))
        }
        Op::Joined => {
            let changed = model.state == EngineState::Joining;
            if changed {
                model.state = EngineState::Joined;
            }
            assert_eq!(engine.on_joined(), changed, "on_joined");
            0
        }
        Op::Left => {
            let changed = model.state == EngineState::Leaving;
            if changed {
                model.state = EngineState::Idle;
                model.in_force = None;
            }
            assert_eq!(engine.on_left(), changed, "on_left");
            0
        }
    }
}

/// The code of an engine result, checked against the expected one.
fn code_of(got: Result<(), EngineError>, expected: Code, what: &str) -> i32 {
    let code = match &got {
        Ok(()) => Code::Ok,
        Err(err) => {
            assert!(!err.to_string().is_empty(), "{what}: empty error message");
            err.code()
        }
    };
    assert_eq!(code, expected, "{what}: code");
    code.as_i32()
}
