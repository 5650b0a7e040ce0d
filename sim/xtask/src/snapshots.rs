//! Unreferenced snapshots: every `.snap` file under `snapshots/` must belong to a test, or it
//! is a stale record that nobody checks any more (a renamed scenario, a removed test).
//!
//! Two checks, because a plain `cargo test` has no hook after the last test binary:
//!
//! - **Static, under plain `cargo test`** ([`unnamed`], run by this crate's tests): each
//!   snapshot's header names its `source:` file, and that file must exist and hold the
//!   snapshot's name as a string literal (every snapshot in this workspace is named by a
//!   literal). It needs no network and no tool, but cannot see a literal that is still in the
//!   source and no longer asserted.
//! - **Exact, in `cargo xtask test`** ([`unreferenced`]): insta appends every snapshot file it
//!   asserts to `$INSTA_SNAPSHOT_REFERENCES_FILE` (the mechanism behind `cargo insta test
//!   --unreferenced=reject`); after the whole suite ran, every file not in that list is
//!   rejected.

use std::path::{Path, PathBuf};

/// Every `.snap` file under `dir`, sorted.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                todo.push(path);
            } else if path.extension().is_some_and(|e| e == "snap") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The snapshot files whose `source:` file does not name them, each with why.
pub fn unnamed(root: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    for file in files(&root.join("snapshots")) {
        let shown = file
            .strip_prefix(root)
            .unwrap_or(&file)
            .display()
            .to_string();
        let Ok(text) = std::fs::read_to_string(&file) else {
            problems.push(format!("{shown}: unreadable"));
            continue;
        };
        let Some(source) = text
            .lines()
            .take_while(|l| !l.is_empty())
            .skip(1)
            .take_while(|l| *l != "---")
            .find_map(|l| l.strip_prefix("source: "))
        else {
            problems.push(format!("{shown}: no `source:` in its header"));
            continue;
        };
        let name = file.file_stem().unwrap_or_default().to_string_lossy();
        match std::fs::read_to_string(root.join(source.trim())) {
            Err(_) => problems.push(format!("{shown}: its source {source} does not exist")),
            Ok(code) if !code.contains(&format!("\"{name}\"")) => problems.push(format!(
                "{shown}: its source {source} never names the snapshot \"{name}\""
            )),
            Ok(_) => {}
        }
    }
    problems
}

/// The snapshot files under `root/snapshots` that are not in `references` (insta's list of
/// the files it asserted, one path per line).
pub fn unreferenced(root: &Path, references: &str) -> Vec<PathBuf> {
    let canonical = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
    let seen: Vec<PathBuf> = references
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| canonical(Path::new(l.trim())))
        .collect();
    files(&root.join("snapshots"))
        .into_iter()
        .filter(|f| !seen.contains(&canonical(f)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    /// The check that runs under plain `cargo test`: no snapshot file outlives its test.
    #[test]
    fn every_snapshot_file_is_named_by_its_source() {
        let problems = unnamed(&root());
        assert!(
            problems.is_empty(),
            "unreferenced snapshot files (delete them, or fix the test that should write them):\n  {}",
            problems.join("\n  ")
        );
        assert!(files(&root().join("snapshots")).len() >= 17);
    }

    #[test]
    fn a_stale_snapshot_is_caught_by_both_checks() {
        let dir = std::env::temp_dir().join(format!("xtask-snap-{}", std::process::id()));
        let snaps = dir.join("snapshots/sim");
        std::fs::create_dir_all(&snaps).unwrap();
        std::fs::create_dir_all(dir.join("tests")).unwrap();
        std::fs::write(dir.join("tests/t.rs"), "assert_snapshot!(\"kept\", x);").unwrap();
        for name in ["kept", "gone"] {
            std::fs::write(
                snaps.join(format!("{name}.snap")),
                "---\nsource: tests/t.rs\n---\nbody\n",
            )
            .unwrap();
        }
        std::fs::write(snaps.join("orphan.snap"), "no header\n").unwrap();
        let problems = unnamed(&dir);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("gone.snap: its source tests/t.rs never names"));
        assert!(problems[1].contains("orphan.snap: no `source:`"));
        let references = format!("{}\n", snaps.join("kept.snap").display());
        let stale = unreferenced(&dir, &references);
        assert_eq!(stale, [snaps.join("gone.snap"), snaps.join("orphan.snap")]);
        let _ = std::fs::remove_dir_all(dir);
    }
}
