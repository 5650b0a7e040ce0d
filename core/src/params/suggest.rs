//! "Did you mean ...?" for keys that look like a misspelt proxy key.
//!
//! A key that is not a proxy key belongs to another SDK feature and is ignored, so a misspelt
//! proxy key (`rtc.enable_proxi`, `RTC.ENABLE_PROXY`) would be ignored silently. The call still
//! succeeds (other features' keys must pass), but the result carries a [`KeySuggestion`] when
//! the key, compared without regard to ASCII case, is within [`MAX_SUGGESTION_DISTANCE`] edits
//! of a proxy key. Edits are those of the optimal string alignment distance (restricted
//! Damerau-Levenshtein: insert, delete or replace a character, or swap two adjacent ones),
//! counted in characters. Only the two proxy keys are candidates, so keys of other features
//! are never "corrected" into each other.

use std::fmt;

use super::host::quote;
use super::{KEY_ENABLE_PROXY, KEY_PROXY_SERVER};

/// The most edits between an ignored key (ASCII case folded) and a proxy key for which the
/// result suggests the proxy key.
pub const MAX_SUGGESTION_DISTANCE: usize = 2;

/// An ignored key that looks like a misspelt proxy key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeySuggestion {
    /// The key as given (it is also listed in `ignored`).
    pub key: String,
    /// The proxy key it is probably meant to be: [`KEY_ENABLE_PROXY`] or [`KEY_PROXY_SERVER`].
    pub did_you_mean: &'static str,
}

impl fmt::Display for KeySuggestion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "key {} is not a proxy key and was ignored: did you mean \"{}\"?",
            quote(&self.key),
            self.did_you_mean
        )?;
        if self.key.eq_ignore_ascii_case(self.did_you_mean) {
            f.write_str(" (keys are case-sensitive)")?;
        }
        Ok(())
    }
}

/// The suggestion for an ignored `key`, if it is close to a proxy key.
pub(crate) fn suggest(key: &str) -> Option<KeySuggestion> {
    [KEY_ENABLE_PROXY, KEY_PROXY_SERVER]
        .into_iter()
        .filter_map(|candidate| distance(key, candidate).map(|d| (d, candidate)))
        .min()
        .map(|(_, candidate)| KeySuggestion {
            key: key.to_owned(),
            did_you_mean: candidate,
        })
}

/// The edit distance from `key` (ASCII case folded) to `candidate`, when it is at most
/// [`MAX_SUGGESTION_DISTANCE`]. Keys whose length alone rules them out are not compared, so a
/// long key costs nothing.
fn distance(key: &str, candidate: &str) -> Option<usize> {
    let len = candidate.chars().count();
    // A key of more than len + MAX characters has at least that many characters too many
    // (checked on a bounded prefix, so that a huge key is not counted through).
    let key_len = key.chars().take(len + MAX_SUGGESTION_DISTANCE + 1).count();
    if key_len.abs_diff(len) > MAX_SUGGESTION_DISTANCE {
        return None;
    }
    let folded = key.to_ascii_lowercase();
    let d = strsim::osa_distance(&folded, candidate);
    (d <= MAX_SUGGESTION_DISTANCE).then_some(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meant(key: &str) -> Option<&'static str> {
        suggest(key).map(|s| s.did_you_mean)
    }

    #[test]
    fn misspellings_of_the_proxy_keys() {
        for key in [
            "rtc.enable_proxi",
            "RTC.ENABLE_PROXY",
            "rtc.enableproxy",
            "rtc.enable-proxy",
            "rtc.enbale_proxy",
            "rtc.enable_proxy ",
            "rtc_enable_proxy",
            "Rtc.Enable_Proxy",
        ] {
            assert_eq!(meant(key), Some(KEY_ENABLE_PROXY), "{key}");
        }
        for key in [
            "rtc.proxy_sever",
            "rtc.proxyserver",
            "RTC.PROXY_SERVER",
            "rtc.proxy_servers",
            "rtc.porxy_server",
        ] {
            assert_eq!(meant(key), Some(KEY_PROXY_SERVER), "{key}");
        }
    }

    #[test]
    fn other_keys_get_no_suggestion() {
        for key in [
            "",
            "rtc.log_filter",
            "che.audio.level",
            "rtc.enable",
            "rtc.proxy",
            "rtc.enable_proxy_server",
            "enable_proxy",
            "rtc.disable_proxy_x",
        ] {
            assert_eq!(meant(key), None, "{key}");
        }
        // A huge key is ruled out by its length.
        assert_eq!(meant(&"r".repeat(60_000)), None);
    }

    #[test]
    fn the_message_names_both_keys_and_the_case_rule() {
        assert_eq!(
            suggest("rtc.enable_proxi").unwrap().to_string(),
            "key \"rtc.enable_proxi\" is not a proxy key and was ignored: did you mean \"rtc.enable_proxy\"?"
        );
        assert_eq!(
            suggest("RTC.ENABLE_PROXY").unwrap().to_string(),
            "key \"RTC.ENABLE_PROXY\" is not a proxy key and was ignored: did you mean \"rtc.enable_proxy\"? (keys are case-sensitive)"
        );
    }
}
