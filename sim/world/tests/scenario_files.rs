//! Scenarios as files: every catalogue scenario shipped in `sim/scenarios/` gives the same
//! world, the same trace and the same verdicts as its built-in twin; bad files are refused with
//! the line and the field.

use std::path::{Path, PathBuf};

use cloudproxy_sim::scenario::{catalogue, find, FileError, RunOptions, Scenario, ScenarioFile};

/// The scenarios beyond the seed (issue 18) that the file schema cannot express yet: their
/// worlds use an HTTP proxy, `setCloudProxy` or the network-change faults, and their checks are
/// their own functions rather than the vocabulary's. Not shipped as files;
/// [`beyond_the_seed_worlds_are_refused_by_the_writer_not_mistranslated`] proves the writer
/// refuses each rather than writing a different world.
const NOT_YET_FILES: [&str; 9] = [
    "nat-rebinding",
    "address-change",
    "vpn-blocks-udp",
    "ap-failover-racing",
    "automatic-open",
    "automatic-fallback",
    "force-tcp-443",
    "http-proxy",
    "http-proxy-auth",
];

/// The catalogue's scenarios that are shipped as files.
fn shipped_catalogue() -> impl Iterator<Item = &'static Scenario> {
    catalogue()
        .iter()
        .filter(|s| !NOT_YET_FILES.contains(&s.name))
}

fn shipped(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios")
        .join(format!("{name}.toml"))
}

fn load(name: &str) -> &'static Scenario {
    let file = ScenarioFile::load(&shipped(name)).unwrap_or_else(|e| panic!("{e}"));
    Scenario::from_file(file)
}

#[test]
fn every_catalogue_scenario_is_shipped_as_a_file_that_builds_the_same_world() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    files.sort();
    let mut names: Vec<String> = shipped_catalogue()
        .map(|s| format!("{}.toml", s.name))
        .collect();
    names.sort();
    assert_eq!(files, names, "sim/scenarios/ holds exactly the catalogue");
    for builtin in shipped_catalogue() {
        let file = load(builtin.name);
        assert_eq!(file.name, builtin.name);
        assert_eq!(file.proves, builtin.proves);
        for seed in [1, 7] {
            assert_eq!(
                format!("{:?}", file.world(seed)),
                format!("{:?}", builtin.world(seed)),
                "{}: the file's world differs from the built-in one",
                builtin.name
            );
        }
    }
}

#[test]
fn every_shipped_file_gives_the_same_trace_and_verdicts_as_its_builtin_twin() {
    for builtin in shipped_catalogue() {
        let file = load(builtin.name);
        let options = RunOptions::seed(1);
        let (a, b) = (builtin.run_with(&options), file.run_with(&options));
        assert_eq!(
            a.outcome.trace.hash(),
            b.outcome.trace.hash(),
            "{}: trace hash",
            builtin.name
        );
        assert_eq!(a.checks, b.checks, "{}: checks", builtin.name);
        assert!(b.passed(), "{}: {:?}", builtin.name, b.checks);
        assert_eq!(
            b.reproduce(),
            format!(
                "cargo run --release -- run --scenario-file {} --seed 1",
                shipped(builtin.name).display()
            )
        );
    }
}

#[test]
fn a_swarm_run_of_a_file_matches_its_twin() {
    let builtin = find("relay-crash").unwrap();
    let file = load("relay-crash");
    let options = RunOptions {
        swarm: true,
        ..RunOptions::seed(3)
    };
    let (a, b) = (builtin.run_with(&options), file.run_with(&options));
    assert_eq!(a.outcome.trace.hash(), b.outcome.trace.hash());
    assert_eq!(a.checks, b.checks);
    assert_eq!(a.swarm_kinds, b.swarm_kinds);
}

fn parse(text: &str) -> Result<ScenarioFile, FileError> {
    ScenarioFile::parse(text, Path::new("bad.toml"))
}

fn error(text: &str) -> String {
    match parse(text) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e.to_string(),
    }
}

const BASE: &str = r#"duration_s = 10

[[enterprise]]
name = "bank"
host = "10.1.0.10"
policy = "seed"

[[enterprise.client]]
name = "alice"
uid = 1
params = ['{"rtc.enable_proxy":true}']
"#;

#[test]
fn bad_files_name_the_line_and_the_field() {
    // Syntax and unknown keys: toml's errors, with line and key.
    let e = error(&format!("{BASE}colour = \"red\"\n"));
    assert!(
        e.contains("bad.toml") && e.contains("line 12") && e.contains("colour"),
        "{e}"
    );
    let e = error("duration_s = \"long\"\n");
    assert!(e.contains("line 1") && e.contains("duration_s"), "{e}");
    let e = error("name = \"x\"\n");
    assert!(e.contains("duration_s"), "a missing field is named: {e}");
    // Values out of bounds or naming nothing: our errors, with line and field.
    let e = error(&format!(
        "{BASE}\n[[fault]]\nat_s = 3\ncrash_relay_of = \"zoe\"\n"
    ));
    assert_eq!(
        e,
        "bad.toml:15: `fault[1].crash_relay_of`: no client named \"zoe\" in this scenario"
    );
    let e = error(&format!("{BASE}\n[[fault]]\nat_s = 3\ncrash = \"ap9\"\n"));
    assert!(
        e.starts_with("bad.toml:15: `fault[1].crash`: \"ap9\" is not a host"),
        "{e}"
    );
    let e = error(&format!(
        "{BASE}\n[[fault]]\nat_s = -1\ndns_outage = true\n"
    ));
    assert!(
        e.starts_with("bad.toml:14: `fault[1].at_s`: -1 s is out of range"),
        "{e}"
    );
    let e = error(&format!(
        "{BASE}\n[[fault]]\nat_s = 1\ndns_outage = true\ncrash = \"ap1\"\n"
    ));
    assert!(
        e.contains("`fault[1]`: a fault has exactly one kind, this one has 2: crash, dns_outage"),
        "{e}"
    );
    let e = error(&format!(
        "{BASE}\n[[check]]\nhears = [\"alice\", \"bob\"]\nmin_packets = 1\n"
    ));
    assert!(
        e.contains("`check[1].hears`: no client named \"bob\""),
        "{e}"
    );
    let e = error(&format!("{BASE}\n[[check]]\nproxy_type = \"alice\"\n"));
    assert!(
        e.contains("`check[1].type`: `proxy_type` needs `type`"),
        "{e}"
    );
    let e = error(&BASE.replace("policy = \"seed\"", "policy = \"strict\""));
    assert!(
        e.starts_with("bad.toml:6: `enterprise[1].policy`: no preset \"strict\""),
        "{e}"
    );
    let e = error(&BASE.replace("host = \"10.1.0.10\"", "host = \"10.1.0\""));
    assert!(e.starts_with("bad.toml:5: `enterprise[1].host`"), "{e}");
    let e = error(&format!("{BASE}give_up_after_s = 7\n"));
    assert!(
        e.contains("`enterprise[1].client[1].give_up_after_s`: one of"),
        "{e}"
    );
    let e = error(&BASE.replace(
        "policy = \"seed\"",
        "policy = { default = \"drop\", allow = [{ proto = \"tcp\", to = [\"nowhere\"], ports = [\"1\"] }] }",
    ));
    assert!(
        e.contains("`enterprise[1].policy`") && e.contains("nowhere"),
        "{e}"
    );
    let e = error(&BASE.replace("name = \"alice\"", "name = \"alice-{j}\""));
    assert!(e.contains("`enterprise[1].client[1].name`"), "{e}");
}

#[test]
fn a_policy_file_is_found_beside_the_scenario_file_and_hosts_have_names() {
    let dir = std::env::temp_dir().join(format!("cloudproxy-scenario-file-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("fw.toml"), "default = \"pass\"\n").unwrap();
    let text = BASE.replace("policy = \"seed\"", "policy_file = \"fw.toml\"")
        + "\n[[fault]]\nat_s = 1\nlatency = [\"bank\", \"relay2\"]\nlatency_ms = 80\n";
    std::fs::write(dir.join("s.toml"), &text).unwrap();
    let file = ScenarioFile::load(&dir.join("s.toml")).unwrap();
    let world = file.world(5);
    assert_eq!(world.seed, 5);
    assert_eq!(
        world.enterprises[0].policy,
        cloudproxy_sim::policy::Policy::open()
    );
    assert_eq!(
        world.faults[0].1.to_string(),
        "latency 10.1.0.10 <-> 120.92.18.162 80 ms"
    );
    let missing = ScenarioFile::load(&dir.join("none.toml")).unwrap_err();
    assert!(missing.to_string().contains("none.toml"), "{missing}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The world of `scenario` with `options`, written as a file and read back.
fn round_trip(spec: &cloudproxy_sim::world::WorldSpec) -> cloudproxy_sim::world::WorldSpec {
    use cloudproxy_sim::scenario::file_writer::to_toml;
    let text = to_toml(spec, "written", "a round trip", &[]).unwrap();
    let file = ScenarioFile::parse(&text, Path::new("written.toml"))
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
    file.world(spec.seed)
}

#[test]
fn every_world_written_as_a_file_reads_back_the_same_with_and_without_swarm_faults() {
    for scenario in shipped_catalogue() {
        for (seed, swarm) in [(1, false), (5, true), (9, true)] {
            let options = RunOptions {
                swarm,
                ..RunOptions::seed(seed)
            };
            let (spec, _) = scenario.spec(&options);
            assert_eq!(
                format!("{:?}", round_trip(&spec)),
                format!("{spec:?}"),
                "{} seed {seed} swarm {swarm}",
                scenario.name
            );
        }
    }
}

#[test]
fn beyond_the_seed_worlds_are_refused_by_the_writer_not_mistranslated() {
    use cloudproxy_sim::scenario::file_writer::to_toml;
    let mut refused = 0;
    for name in NOT_YET_FILES {
        let scenario = find(name).unwrap_or_else(|| panic!("{name} is in the catalogue"));
        let spec = scenario.world(1);
        match to_toml(&spec, name, scenario.proves, &[]) {
            Err(e) => {
                assert!(
                    e.to_string().contains("a scenario file cannot say"),
                    "{name}: {e}"
                );
                refused += 1;
            }
            // Written: then it must read back as the same world, or the file would lie.
            Ok(text) => {
                let file = ScenarioFile::parse(&text, Path::new("written.toml"))
                    .unwrap_or_else(|e| panic!("{name}: {e}\n{text}"));
                assert_ne!(
                    format!("{:?}", file.world(1)),
                    format!("{spec:?}"),
                    "{name} can be written as a file now: ship it and take it off NOT_YET_FILES"
                );
                panic!("{name}: the writer wrote a world that reads back differently:\n{text}");
            }
        }
    }
    assert_eq!(refused, NOT_YET_FILES.len());
}
