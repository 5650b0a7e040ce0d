//! `params`: the `setParameters` grammar on arbitrary text.
//!
//! Properties, for any input (taken as UTF-8, invalid sequences replaced):
//!
//! 1. [`parse`] never panics, in either mode, and every error prints, in at most
//!    [`MAX_MESSAGE_CHARS`] characters (an error never echoes more than an excerpt of a huge
//!    input).
//! 2. Compat accepts everything strict accepts, with the same result (compat ⊇ strict).
//! 3. A valid update applied to a configuration (the fresh one, or one that differs from it
//!    in every key) gives a configuration whose canonical form parses strictly to an update
//!    that sets both proxy keys and nothing else (so it gives the configuration back from any
//!    other), gives it back from the fresh one, and is a fixed point.
//! 4. Every "did you mean" names an ignored key and a proxy key, and none names a proxy key
//!    itself.

use cloudproxy_core::params::{
    parse, Mode, ParamUpdate, ParamsError, ProxyConfig, ProxyServer, KEY_ENABLE_PROXY,
    KEY_PROXY_SERVER, MAX_MESSAGE_CHARS,
};

/// The target: see the module docs.
pub fn run(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let strict = parse(&text, Mode::Strict);
    let compat = parse(&text, Mode::Compat);

    let valid = match (&strict, &compat) {
        (Ok(update), compat) => {
            assert_eq!(
                compat.as_ref(),
                Ok(update),
                "compat mode must accept what strict mode accepts, with the same result: {text:?}"
            );
            Some(update)
        }
        (Err(err), compat) => {
            check_message(err);
            compat.as_ref().ok()
        }
    };
    if let Err(err) = &compat {
        check_message(err);
    }
    if let Some(update) = valid {
        check_suggestions(update);
        for start in starting_configs() {
            let mut config = start;
            config.apply(update);
            check_canonical(&config);
        }
    }
}

fn check_message(err: &ParamsError) {
    let message = err.to_string();
    assert!(!message.is_empty());
    let chars = message.chars().count();
    assert!(
        chars <= MAX_MESSAGE_CHARS,
        "an error message of {chars} characters: {message}"
    );
}

fn check_suggestions(update: &ParamUpdate) {
    for suggestion in &update.suggestions {
        assert!(update.ignored.contains(&suggestion.key), "{suggestion}");
        assert!([KEY_ENABLE_PROXY, KEY_PROXY_SERVER].contains(&suggestion.did_you_mean));
        assert!(![KEY_ENABLE_PROXY, KEY_PROXY_SERVER].contains(&suggestion.key.as_str()));
    }
}

/// Configurations an update may be applied to: the fresh one and one that differs in every key.
fn starting_configs() -> [ProxyConfig; 2] {
    let socks5 = ProxyConfig {
        enabled: true,
        server: ProxyServer::Socks5(([127, 0, 0, 1], 1080).into()),
    };
    [ProxyConfig::default(), socks5]
}

fn check_canonical(config: &ProxyConfig) {
    let canonical = config.canonical();
    let again = match parse(&canonical, Mode::Strict) {
        Ok(update) => update,
        Err(err) => panic!("canonical form {canonical} does not parse: {err}"),
    };
    assert!(
        again.ignored.is_empty() && again.enable_proxy.is_some() && again.proxy_server.is_some(),
        "canonical form {canonical} does not set exactly the proxy keys"
    );
    // Both keys are set, so the canonical form gives this configuration back from any other.
    let mut back = ProxyConfig::default();
    back.apply(&again);
    assert_eq!(
        &back, config,
        "canonical form {canonical} does not give the configuration back"
    );
    assert_eq!(
        back.canonical(),
        canonical,
        "canonical form is not a fixed point"
    );
}
