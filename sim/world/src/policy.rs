//! Enterprise firewall policies: the model lives in `cloudproxy-testkit`
//! ([`cloudproxy_testkit::policy`]), shared with core's pair harness; this module keeps the
//! simulation's paths and the user-facing file of the seed's whitelist.

pub use cloudproxy_testkit::policy::{DnsPolicy, Policy, PolicyError, Proto, Rule, Verdict};

/// The seed document's whitelist as a policy file (`sim/policies/seed.toml`), for users to copy;
/// the same as [`Policy::seed`] (tested).
pub const SEED_POLICY_TOML: &str = include_str!("../../policies/seed.toml");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_seed_file_is_the_seed_preset() {
        let parsed: Policy = SEED_POLICY_TOML.parse().unwrap();
        assert_eq!(parsed, Policy::seed());
    }
}
