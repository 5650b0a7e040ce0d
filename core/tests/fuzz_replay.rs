//! Replays every fuzz corpus and regression file through the fuzz targets, on stable.
//!
//! The fuzz crate (`fuzz/`, outside the workspace, built by `cargo fuzz` on nightly) keeps its
//! target bodies in `fuzz/src/targets/`, which needs only this crate and `arbitrary`; this
//! test includes that module tree as is, so `cargo test` runs exactly what the fuzzer runs:
//!
//! - every file of `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/` goes through the
//!   target of its folder's name (a folder without a target, or a target without a corpus
//!   file, fails the test);
//! - the committed named seeds are exactly what `fuzz/src/targets/seeds.rs` builds (regenerate
//!   them with `cargo run --manifest-path fuzz/Cargo.toml --example write_seeds`, or, on
//!   stable without building libFuzzer, `FUZZ_WRITE_SEEDS=1 cargo test -p cloudproxy-core
//!   --test fuzz_replay`).

#[path = "../../fuzz/src/targets/mod.rs"]
mod targets;

use std::collections::BTreeMap;
use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The files of `<fuzz>/<kind>/<target>/`, by target folder name. Files and folders whose
/// name starts with a dot, and plain files directly in `<kind>/` (a README), are skipped.
fn files(kind: &str) -> BTreeMap<String, Vec<PathBuf>> {
    let root = fuzz_dir().join(kind);
    let mut out = BTreeMap::new();
    let Ok(entries) = fs::read_dir(&root) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !path.is_dir() {
            continue;
        }
        let mut list: Vec<PathBuf> = fs::read_dir(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.is_file()
                    && !p
                        .file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            })
            .collect();
        list.sort();
        out.insert(name, list);
    }
    out
}

/// Runs `files` through their targets; returns the failures (path and panic message).
fn replay(by_target: &BTreeMap<String, Vec<PathBuf>>) -> (usize, Vec<String>) {
    let mut ran = 0;
    let mut failures = Vec::new();
    for (name, paths) in by_target {
        let Some(run) = targets::target(name) else {
            failures.push(format!(
                "folder `{name}` has no fuzz target (targets: {:?})",
                targets::TARGETS.iter().map(|(n, _)| *n).collect::<Vec<_>>()
            ));
            continue;
        };
        for path in paths {
            let data = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            ran += 1;
            if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| run(&data))) {
                let message = payload
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_else(|| "(non-string panic)".to_owned());
                failures.push(format!("{}: {message}", path.display()));
            }
        }
    }
    (ran, failures)
}

#[test]
fn corpus_replays_through_every_target() {
    let corpus = files("corpus");
    for (name, _) in targets::TARGETS {
        let count = corpus.get(*name).map_or(0, Vec::len);
        assert!(count > 0, "fuzz/corpus/{name}/ holds no file");
    }
    let (ran, failures) = replay(&corpus);
    assert!(
        failures.is_empty(),
        "{} of {ran} corpus files failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn regressions_replay() {
    let (_, failures) = replay(&files("regressions"));
    assert!(
        failures.is_empty(),
        "{} regression files failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn committed_seeds_are_up_to_date() {
    let hint = "regenerate with `cargo run --manifest-path fuzz/Cargo.toml --example write_seeds` \
                (or `FUZZ_WRITE_SEEDS=1 cargo test -p cloudproxy-core --test fuzz_replay`)";
    for seed in targets::seeds::all() {
        let path = fuzz_dir().join("corpus").join(seed.target).join(seed.name);
        if std::env::var_os("FUZZ_WRITE_SEEDS").is_some() {
            // The same files write_seeds writes, on stable and without libFuzzer.
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, &seed.bytes).unwrap();
        }
        let committed =
            fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}; {hint}", path.display()));
        assert!(
            committed == seed.bytes,
            "{} differs from the seed built in fuzz/src/targets/seeds.rs; {hint}",
            path.display()
        );
    }
}

#[test]
fn structured_seeds_round_trip_through_their_format() {
    for seed in targets::seeds::all() {
        let again = match seed.target {
            "engine_ops" => targets::engine_ops::Script::decode(&seed.bytes).encode(),
            "relay" => targets::relay::Script::decode(&seed.bytes).encode(),
            "ap" => targets::ap::Script::decode(&seed.bytes).encode(),
            "client" => targets::client::Script::decode(&seed.bytes).encode(),
            "http_connect" => targets::http_connect::Script::decode(&seed.bytes).encode(),
            _ => continue,
        };
        assert_eq!(again, seed.bytes, "{}/{}", seed.target, seed.name);
    }
}
