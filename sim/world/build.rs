//! Generates one test per line of `sim/seeds/ci-swarm.txt` (the swarm seeds CI gates on), named
//! after the scenario, the seed and what it broke: `partition_heal_seed_446_liveness_...`. The
//! file stays the only source; `tests/sweep_gate.rs` includes the generated tests. A malformed
//! line becomes a `compile_error!` in that test target only, naming the line.

use std::fmt::Write as _;
use std::path::Path;

const SEEDS: &str = "../seeds/ci-swarm.txt";

/// One line of the seed file.
struct Seed {
    line: usize,
    seed: u64,
    scenario: String,
    story: Option<String>,
}

fn parse(text: &str) -> Result<Vec<Seed>, String> {
    let mut seeds = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let raw = raw.trim();
        if raw.is_empty() || raw.starts_with('#') {
            continue;
        }
        let words: Vec<&str> = raw.split_whitespace().collect();
        let bad = |why: &str| format!("sim/seeds/ci-swarm.txt line {line}: {why}: {raw:?}");
        if !(2..=3).contains(&words.len()) {
            return Err(bad("expected `SEED SCENARIO [STORY]`"));
        }
        let seed = words[0]
            .parse::<u64>()
            .map_err(|_| bad("the seed is not a whole number"))?;
        let scenario = words[1];
        if !scenario
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(bad(
                "the scenario is a catalogue name (lowercase, digits, -)",
            ));
        }
        let story = words.get(2).map(|s| s.to_string());
        if story.as_deref().is_some_and(|s| {
            !s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        }) {
            return Err(bad("the story is lower_snake_case"));
        }
        if seeds
            .iter()
            .any(|s: &Seed| s.seed == seed && s.scenario == scenario)
        {
            return Err(bad("this seed and scenario are listed twice"));
        }
        seeds.push(Seed {
            line,
            seed,
            scenario: scenario.to_owned(),
            story,
        });
    }
    Ok(seeds)
}

fn test_name(seed: &Seed) -> String {
    let mut name = format!("{}_seed_{}", seed.scenario.replace('-', "_"), seed.seed);
    if let Some(story) = &seed.story {
        name.push('_');
        name.push_str(story);
    }
    name
}

fn generate(seeds: &[Seed]) -> String {
    let mut out = String::new();
    for seed in seeds {
        let story = seed.story.as_deref().unwrap_or("kept for coverage");
        writeln!(
            out,
            "/// {} with seed {} and its swarm faults ({}; sim/seeds/ci-swarm.txt line {}).\n#[test]\nfn {}() {{\n    gate({:?}, {});\n}}\n",
            seed.scenario,
            seed.seed,
            story.replace('_', " "),
            seed.line,
            test_name(seed),
            seed.scenario,
            seed.seed
        )
        .unwrap();
    }
    out.push_str("/// Every line of the seed file: (seed, scenario, test name).\nconst SEEDS: &[(u64, &str, &str)] = &[\n");
    for seed in seeds {
        writeln!(
            out,
            "    ({}, {:?}, {:?}),",
            seed.seed,
            seed.scenario,
            test_name(seed)
        )
        .unwrap();
    }
    out.push_str("];\n");
    out
}

fn main() {
    println!("cargo:rerun-if-changed={SEEDS}");
    println!("cargo:rerun-if-changed=build.rs");
    let text = std::fs::read_to_string(SEEDS).unwrap_or_default();
    let code = match parse(&text) {
        Ok(seeds) if seeds.is_empty() => {
            "compile_error!(\"sim/seeds/ci-swarm.txt lists no seed\");\n".to_owned()
        }
        Ok(seeds) => generate(&seeds),
        Err(why) => format!("compile_error!({why:?});\n"),
    };
    let out = Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("swarm_seed_tests.rs");
    std::fs::write(out, code).expect("write the generated seed tests");
}
