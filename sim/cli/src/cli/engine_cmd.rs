//! `cloudproxy engine [--compat] OP...`: the engine's rules as a scriptable contract.
//!
//! Each OP is `join`, `leave`, or a setParameters JSON text. One JSON object is printed per op:
//!
//! ```text
//! {"op":"set","code":0,"state":"idle","config":{"rtc.enable_proxy":true,...},"ignored":["x"]}
//! {"op":"set",...,"ignored":["rtc.enable_proxi"],"suggestions":[{"did_you_mean":"rtc.enable_proxy","key":"rtc.enable_proxi","message":"key ... did you mean \"rtc.enable_proxy\"?"}]}
//! {"op":"join","code":-17,"state":"joined","config":{...},"in_force":{...},"error":"join: ..."}
//! ```
//!
//! `config` is the configuration as set (canonical form, an HTTP proxy's password printed as
//! `"<redacted>"`: it never reaches a log); `in_force` the one taken at join,
//! while in a channel; `error` is present on every non-zero code, `ignored` when keys of other
//! SDK features were ignored, `suggestions` when an ignored key looks like a misspelt proxy key.

use std::io::{self, Write};

use clap::Args;
use cloudproxy_core::engine::{Engine, EngineError};
use cloudproxy_core::params::{KeySuggestion, Mode};
use serde_json::Value;

use super::Status;

/// Arguments of `cloudproxy engine`.
#[derive(Debug, Args)]
pub struct EngineArgs {
    /// Also accept the documentation's unescaped type-2 example
    /// (`{"rtc.proxy_server":[2, "["ip1","ip2"]", 0]}`).
    #[arg(long)]
    pub compat: bool,
    /// setParameters texts from files (`-`: standard input), one text per file, at most 64 KiB
    /// each; they run first, in order, before the OPs.
    #[arg(long, value_name = "FILE")]
    pub params_file: Vec<std::path::PathBuf>,
    /// The ops, in order: `join`, `leave`, or a setParameters JSON text.
    #[arg(required_unless_present = "params_file", value_name = "OP")]
    pub ops: Vec<String>,
}

/// One op of the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op<'a> {
    Join,
    Leave,
    Set(&'a str),
}

impl<'a> Op<'a> {
    fn parse(text: &'a str) -> Self {
        match text {
            "join" => Op::Join,
            "leave" => Op::Leave,
            json => Op::Set(json),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Op::Join => "join",
            Op::Leave => "leave",
            Op::Set(_) => "set",
        }
    }
}

/// Runs the ops (the `--params-file` texts first); `Ok` when every op returned 0.
pub fn run(args: &EngineArgs, out: &mut impl Write) -> io::Result<Status> {
    let from_files = match super::params_file::read_all(&args.params_file) {
        Ok(texts) => texts,
        Err(e) => {
            eprintln!("cloudproxy engine: {e}");
            return Ok(Status::Usage);
        }
    };
    let mode = if args.compat {
        Mode::Compat
    } else {
        Mode::Strict
    };
    let mut engine = Engine::new(mode);
    let mut all_ok = true;
    let sets = from_files.iter().map(|t| Op::Set(t));
    for op in sets.chain(args.ops.iter().map(|t| Op::parse(t))) {
        let line = step(&mut engine, op);
        all_ok &= line.code == 0;
        writeln!(out, "{}", line.to_json())?;
    }
    Ok(Status::from(all_ok))
}

/// The seed document's examples, each on a fresh engine (strict, then compat), as the
/// no-argument main job prints them.
pub fn demo(out: &mut impl Write) -> io::Result<bool> {
    const SEED_CALLS: &[(&str, &[&str])] = &[
        (
            "enable the proxy with the default server",
            &[r#"{"rtc.enable_proxy":true}"#, "join"],
        ),
        (
            "SOCKS5 proxy",
            &[
                r#"{"rtc.enable_proxy":true}"#,
                r#"{"rtc.proxy_server":[0, "127.0.0.1", 1080]}"#,
                "join",
            ],
        ),
        (
            "cloud proxy by IP list, as the documentation writes it",
            &[
                r#"{"rtc.enable_proxy":true}"#,
                r#"{"rtc.proxy_server":[2, "["192.168.0.112","127.0.0.1"]", 0]}"#,
                "join",
            ],
        ),
        (
            "cloud proxy by IP list, escaped",
            &[
                r#"{"rtc.enable_proxy":true}"#,
                r#"{"rtc.proxy_server":[2, "[\"192.168.0.112\",\"127.0.0.1\"]", 0]}"#,
                "join",
            ],
        ),
        (
            "changing the proxy in a channel is refused",
            &[
                r#"{"rtc.enable_proxy":true}"#,
                "join",
                r#"{"rtc.enable_proxy":false}"#,
                "leave",
                r#"{"rtc.enable_proxy":false}"#,
            ],
        ),
    ];
    writeln!(
        out,
        "cloudproxy: the seed's setParameters examples on the SDK engine"
    )?;
    writeln!(
        out,
        "(the simulated world comes next; `cloudproxy engine --help` scripts the engine)"
    )?;
    for (title, ops) in SEED_CALLS {
        for mode in [Mode::Strict, Mode::Compat] {
            writeln!(
                out,
                "\n# {title} ({})",
                if mode == Mode::Strict {
                    "strict"
                } else {
                    "--compat"
                }
            )?;
            let mut engine = Engine::new(mode);
            for text in *ops {
                let line = step(&mut engine, Op::parse(text));
                writeln!(out, "  {text}\n    -> {}", line.summary())?;
            }
        }
    }
    Ok(true)
}

/// What one op did.
struct Outcome {
    op: &'static str,
    code: i32,
    state: &'static str,
    config: Value,
    in_force: Option<Value>,
    ignored: Vec<String>,
    suggestions: Vec<KeySuggestion>,
    error: Option<String>,
}

fn step(engine: &mut Engine, op: Op<'_>) -> Outcome {
    let mut ignored = Vec::new();
    let mut suggestions = Vec::new();
    let result: Result<(), EngineError> = match op {
        Op::Join => engine.join().map(|_| ()).map(|()| {
            engine.on_joined();
        }),
        Op::Leave => engine.leave().map(|()| {
            engine.on_left();
        }),
        Op::Set(text) => engine.set_parameters(text).map(|accepted| {
            ignored = accepted.ignored;
            suggestions = accepted.suggestions;
        }),
    };
    Outcome {
        op: op.name(),
        code: result.as_ref().err().map_or(0, |e| e.code().as_i32()),
        state: engine.state().name(),
        config: engine.config().to_json_redacted(),
        in_force: engine.config_in_force().map(|c| c.to_json_redacted()),
        ignored,
        suggestions,
        error: result.err().map(|e| e.to_string()),
    }
}

impl Outcome {
    /// One JSON object with the keys in a stable, readable order.
    fn to_json(&self) -> String {
        let mut fields = vec![
            ("op", Value::from(self.op)),
            ("code", Value::from(self.code)),
            ("state", Value::from(self.state)),
            ("config", self.config.clone()),
        ];
        if let Some(in_force) = &self.in_force {
            fields.push(("in_force", in_force.clone()));
        }
        if !self.ignored.is_empty() {
            fields.push(("ignored", Value::from(self.ignored.clone())));
        }
        if !self.suggestions.is_empty() {
            let list = self.suggestions.iter().map(|s| {
                serde_json::json!({"key": s.key, "did_you_mean": s.did_you_mean, "message": s.to_string()})
            });
            fields.push(("suggestions", Value::Array(list.collect())));
        }
        if let Some(error) = &self.error {
            fields.push(("error", Value::from(error.as_str())));
        }
        let body: Vec<String> = fields
            .iter()
            .map(|(k, v)| format!("{}:{v}", Value::from(*k)))
            .collect();
        format!("{{{}}}", body.join(","))
    }

    fn summary(&self) -> String {
        match &self.error {
            None => format!("code 0, {}, config {}", self.state, self.config),
            Some(e) => format!("code {}: {e}", self.code),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_ops(compat: bool, ops: &[&str]) -> (bool, Vec<Value>) {
        let args = EngineArgs {
            compat,
            params_file: Vec::new(),
            ops: ops.iter().map(|s| s.to_string()).collect(),
        };
        let mut out = Vec::new();
        let ok = run(&args, &mut out).unwrap() == Status::Ok;
        let lines = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (ok, lines)
    }

    #[test]
    fn one_object_per_op_with_codes() {
        let (ok, lines) = run_ops(
            false,
            &[
                r#"{"rtc.enable_proxy":true,"x":1}"#,
                "join",
                r#"{"rtc.enable_proxy":false}"#,
                "join",
                "leave",
                "leave",
            ],
        );
        assert!(!ok);
        let codes: Vec<i64> = lines.iter().map(|l| l["code"].as_i64().unwrap()).collect();
        assert_eq!(codes, [0, 0, -4, -17, 0, -18]);
        assert_eq!(lines[0]["ignored"], serde_json::json!(["x"]));
        assert_eq!(lines[1]["in_force"]["rtc.enable_proxy"], true);
        for line in &lines {
            assert_eq!(line.get("error").is_some(), line["code"] != 0, "{line}");
        }
    }

    #[test]
    fn misspelt_proxy_keys_get_a_suggestion() {
        let (ok, lines) = run_ops(false, &[r#"{"rtc.enable_proxi":true}"#, "{}"]);
        assert!(ok);
        assert_eq!(lines[0]["ignored"], serde_json::json!(["rtc.enable_proxi"]));
        let suggestion = &lines[0]["suggestions"][0];
        assert_eq!(suggestion["key"], "rtc.enable_proxi");
        assert_eq!(suggestion["did_you_mean"], "rtc.enable_proxy");
        assert!(suggestion["message"]
            .as_str()
            .unwrap()
            .ends_with("did you mean \"rtc.enable_proxy\"?"));
        assert!(lines[1].get("suggestions").is_none());
    }

    #[test]
    fn keys_are_printed_in_contract_order() {
        let args = EngineArgs {
            compat: false,
            params_file: Vec::new(),
            ops: vec!["{}".into()],
        };
        let mut out = Vec::new();
        assert_eq!(run(&args, &mut out).unwrap(), Status::Ok);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with(
                r#"{"op":"set","code":0,"state":"idle","config":{"rtc.enable_proxy":false"#
            ),
            "{text}"
        );
    }

    #[test]
    fn compat_flag_accepts_the_seed_example() {
        let seed = r#"{"rtc.proxy_server":[2, "["192.168.0.112","127.0.0.1"]", 0]}"#;
        assert_eq!(run_ops(false, &[seed]).1[0]["code"], -2);
        let (ok, lines) = run_ops(true, &[seed]);
        assert!(ok);
        assert_eq!(
            lines[0]["config"]["rtc.proxy_server"],
            serde_json::json!([2, "[\"192.168.0.112\",\"127.0.0.1\"]", 0])
        );
    }

    #[test]
    fn demo_runs() {
        let mut out = Vec::new();
        assert!(demo(&mut out).unwrap());
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("is not escaped"));
    }
}
