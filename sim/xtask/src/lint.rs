//! The dependency gates: `cloudproxy-core` stays sans-IO (no IO, socket or clock crate among
//! its normal dependencies) and `cloudproxy-node` knows no turmoil (the nodes run on real
//! sockets unchanged).

/// Crates `cloudproxy-core` must not depend on.
pub const CORE_FORBIDDEN: &[&str] = &[
    "tokio",
    "turmoil",
    "socket2",
    "mio",
    "chrono",
    "time",
    "quinn-udp",
    "libc",
    "nix",
];

/// What `cloudproxy-core` must not depend on outside its tests: the testkit is a
/// dev-dependency only (and is itself bound by [`CORE_FORBIDDEN`], as core's tests pull it in).
pub const CORE_TEST_ONLY: &[&str] = &["cloudproxy-testkit"];

/// Crates `cloudproxy-node` must not depend on.
pub const NODE_FORBIDDEN: &[&str] = &["turmoil"];

/// The forbidden crates in `cargo tree -e normal --prefix none` output, each once.
pub fn forbidden_in(tree: &str, forbidden: &[&str]) -> Vec<String> {
    let mut found: Vec<String> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| forbidden.contains(name))
        .map(str::to_owned)
        .collect();
    found.sort();
    found.dedup();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_crates_are_found_by_exact_name() {
        let tree = "cloudproxy-core v0.1.0 (/x/core)\nhmac v0.12.1\ntokio v1.47.0\ntime-macros v0.2\ntokio v1.47.0 (*)\n";
        assert_eq!(forbidden_in(tree, CORE_FORBIDDEN), ["tokio"]);
        let tree = "cloudproxy-core v0.1.0\ncloudproxy-testkit v0.1.0 (/x/core/testkit)\n";
        assert_eq!(forbidden_in(tree, CORE_TEST_ONLY), ["cloudproxy-testkit"]);
        assert!(forbidden_in("cloudproxy-node v0.1.0\ntokio v1\n", NODE_FORBIDDEN).is_empty());
    }
}
