//! The SDK engine's life cycle and the rule of when proxy settings may change.
//!
//! The proxy keys may be set only before joining a channel or after leaving it. The
//! configuration in force during a call is the one taken at `join`; changes made later (after
//! leaving) apply from the next join.
//!
//! **Beyond the seed** (Agora 4.x `setCloudProxy`): [`Engine::set_cloud_proxy`] chooses
//! automatic, force-UDP or force-TCP mode ([`CloudProxyType`], module [`cloud`]), under the
//! same rule (idle only, code -4 otherwise) and Agora's own: a forced type changes to another
//! only through automatic (code -5 otherwise). Until it is called, the engine behaves exactly
//! as the seed's.

pub mod cloud;
#[cfg(test)]
mod tests;

use std::fmt;

use crate::params::{self, Mode, ParamUpdate, ParamsError, ProxyConfig};

pub use cloud::CloudProxyType;

/// The return codes of the SDK family, as `setParameters`, `joinChannel` and `leaveChannel`
/// return them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Code {
    /// `0`: the call succeeded.
    Ok,
    /// `-2`: an argument is invalid.
    InvalidArgument,
    /// `-4`: not supported in the current state (proxy keys or `setCloudProxy` while in a
    /// channel).
    NotSupported,
    /// `-5`: the call is refused (`setCloudProxy` from one forced type to another without
    /// automatic in between).
    Refused,
    /// `-17`: join rejected, the engine is already in a channel.
    JoinRejected,
    /// `-18`: leave rejected, the engine is not in a channel.
    LeaveRejected,
}

impl Code {
    /// The integer the SDK returns.
    pub fn as_i32(self) -> i32 {
        match self {
            Code::Ok => 0,
            Code::InvalidArgument => -2,
            Code::NotSupported => -4,
            Code::Refused => -5,
            Code::JoinRejected => -17,
            Code::LeaveRejected => -18,
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.as_i32())
    }
}

/// Why an engine call was refused. A refused call changes nothing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The `setParameters` text is invalid (code -2).
    #[error(transparent)]
    InvalidParams(#[from] ParamsError),
    /// Proxy keys were given while in a channel (code -4).
    #[error(
        "{keys}: the proxy can only be configured before joining a channel or after leaving it, \
         and the engine is {state}"
    )]
    ProxyKeysInChannel {
        /// The proxy keys of the call, e.g. `"rtc.enable_proxy"`.
        keys: String,
        /// The engine's state.
        state: EngineState,
    },
    /// `setCloudProxy` while in a channel (code -4).
    #[error(
        "setCloudProxy({requested}): the cloud proxy type can only be set before joining a \
         channel or after leaving it, and the engine is {state}"
    )]
    CloudProxyInChannel {
        /// The type asked for.
        requested: CloudProxyType,
        /// The engine's state.
        state: EngineState,
    },
    /// `setCloudProxy` from one forced type to another (code -5): Agora's rule is to go through
    /// automatic first.
    #[error(
        "setCloudProxy({requested}): the cloud proxy type is {current}; to change it, call \
         setCloudProxy(0) (automatic) first, then setCloudProxy({})",
        .requested.as_i32()
    )]
    CloudProxyTypeChange {
        /// The type in place.
        current: CloudProxyType,
        /// The type asked for.
        requested: CloudProxyType,
    },
    /// `join` while already in a channel (code -17).
    #[error("join: the engine is {state}; leave the channel first")]
    JoinRejected {
        /// The engine's state.
        state: EngineState,
    },
    /// `leave` while not in a channel (code -18).
    #[error("leave: the engine is {state}, not in a channel")]
    LeaveRejected {
        /// The engine's state.
        state: EngineState,
    },
}

impl EngineError {
    /// The SDK return code for this error.
    pub fn code(&self) -> Code {
        match self {
            EngineError::InvalidParams(_) => Code::InvalidArgument,
            EngineError::ProxyKeysInChannel { .. } | EngineError::CloudProxyInChannel { .. } => {
                Code::NotSupported
            }
            EngineError::CloudProxyTypeChange { .. } => Code::Refused,
            EngineError::JoinRejected { .. } => Code::JoinRejected,
            EngineError::LeaveRejected { .. } => Code::LeaveRejected,
        }
    }
}

/// The life-cycle state of an [`Engine`].
///
/// ```text
///            join()                on_joined()
///   Idle ───────────────▶ Joining ─────────────▶ Joined
///    ▲                       │                     │
///    │                       │ leave()             │ leave()
///    │       on_left()       ▼                     │
///    └─────────────────── Leaving ◀────────────────┘
/// ```
///
/// Proxy keys are accepted in `Idle` only; `join` is accepted in `Idle` only; `leave` in
/// `Joining` and `Joined`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum EngineState {
    /// Not in a channel: before the first join, or after leaving.
    #[default]
    Idle,
    /// `join` was called; the connection is being set up.
    Joining,
    /// In a channel.
    Joined,
    /// `leave` was called; the connection is being torn down.
    Leaving,
}

impl EngineState {
    /// The state's name in lower case, as the CLI prints it.
    pub fn name(self) -> &'static str {
        match self {
            EngineState::Idle => "idle",
            EngineState::Joining => "joining",
            EngineState::Joined => "joined",
            EngineState::Leaving => "leaving",
        }
    }
}

impl fmt::Display for EngineState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A `setParameters` call that was accepted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Accepted {
    /// Keys of other SDK features that were ignored, in input order.
    pub ignored: Vec<String>,
    /// The ignored keys that look like a misspelt proxy key, with the key probably meant
    /// (see [`ParamUpdate::suggestions`]).
    pub suggestions: Vec<params::KeySuggestion>,
}

/// The SDK engine, as far as the proxy is concerned.
///
/// ```
/// use cloudproxy_core::engine::{Code, Engine};
///
/// let mut engine = Engine::default();
/// assert!(engine.set_parameters(r#"{"rtc.enable_proxy":true}"#).is_ok());
/// engine.join()?;
/// let err = engine.set_parameters(r#"{"rtc.enable_proxy":false}"#).unwrap_err();
/// assert_eq!(err.code(), Code::NotSupported);
/// assert!(engine.config_in_force().unwrap().enabled);
/// # Ok::<(), cloudproxy_core::engine::EngineError>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct Engine {
    state: EngineState,
    mode: Mode,
    config: ProxyConfig,
    in_force: Option<ProxyConfig>,
    /// `setCloudProxy`'s type, `None` until it is called (the seed's behaviour).
    cloud_proxy: Option<CloudProxyType>,
    /// The type taken at join, while in a channel.
    cloud_in_force: Option<CloudProxyType>,
}

impl Engine {
    /// A fresh engine reading `setParameters` in the given mode.
    pub fn new(mode: Mode) -> Self {
        Engine {
            mode,
            ..Engine::default()
        }
    }

    /// The life-cycle state.
    pub fn state(&self) -> EngineState {
        self.state
    }

    /// The configuration as set so far (what the next join takes).
    pub fn config(&self) -> &ProxyConfig {
        &self.config
    }

    /// The configuration taken at join, while in a channel (`Joining`, `Joined`, `Leaving`):
    /// [`config`](Self::config), mapped by the cloud proxy type when one was set
    /// ([`CloudProxyType::map`]).
    pub fn config_in_force(&self) -> Option<&ProxyConfig> {
        self.in_force.as_ref()
    }

    /// The cloud proxy type set with [`set_cloud_proxy`](Self::set_cloud_proxy), `None` if it
    /// was never called.
    pub fn cloud_proxy(&self) -> Option<CloudProxyType> {
        self.cloud_proxy
    }

    /// The cloud proxy type taken at join, while in a channel.
    pub fn cloud_proxy_in_force(&self) -> Option<CloudProxyType> {
        self.cloud_in_force
    }

    /// `setCloudProxy(type)` (**beyond the seed**, Agora 4.x): refused while in a channel
    /// (code -4), and from one forced type to another (code -5: set
    /// [`Automatic`](CloudProxyType::Automatic) first). Setting the type in place again is
    /// accepted and changes nothing. A refused call changes nothing.
    pub fn set_cloud_proxy(&mut self, requested: CloudProxyType) -> Result<(), EngineError> {
        if self.state != EngineState::Idle {
            return Err(EngineError::CloudProxyInChannel {
                requested,
                state: self.state,
            });
        }
        match self.cloud_proxy {
            Some(current)
                if current != requested
                    && current != CloudProxyType::Automatic
                    && requested != CloudProxyType::Automatic =>
            {
                Err(EngineError::CloudProxyTypeChange { current, requested })
            }
            _ => {
                self.cloud_proxy = Some(requested);
                Ok(())
            }
        }
    }

    /// `setParameters(text)`: all or nothing. Proxy keys are refused (code -4) unless the engine
    /// is idle; keys of other features are accepted and listed as ignored in any state.
    pub fn set_parameters(&mut self, text: &str) -> Result<Accepted, EngineError> {
        let update = params::parse(text, self.mode)?;
        self.apply(update)
    }

    /// Applies an already parsed update under the same state rule as
    /// [`Engine::set_parameters`].
    pub fn apply(&mut self, update: ParamUpdate) -> Result<Accepted, EngineError> {
        if update.touches_proxy() && self.state != EngineState::Idle {
            let mut keys = Vec::new();
            if update.enable_proxy.is_some() {
                keys.push(format!("\"{}\"", params::KEY_ENABLE_PROXY));
            }
            if update.proxy_server.is_some() {
                keys.push(format!("\"{}\"", params::KEY_PROXY_SERVER));
            }
            return Err(EngineError::ProxyKeysInChannel {
                keys: keys.join(", "),
                state: self.state,
            });
        }
        self.config.apply(&update);
        Ok(Accepted {
            ignored: update.ignored,
            suggestions: update.suggestions,
        })
    }

    /// `joinChannel`: takes the current configuration (mapped by the cloud proxy type, if one
    /// was set) into force and starts joining.
    pub fn join(&mut self) -> Result<&ProxyConfig, EngineError> {
        if self.state != EngineState::Idle {
            return Err(EngineError::JoinRejected { state: self.state });
        }
        self.state = EngineState::Joining;
        self.cloud_in_force = self.cloud_proxy;
        let config = match self.cloud_proxy {
            None => self.config.clone(),
            Some(kind) => kind.map(&self.config),
        };
        Ok(self.in_force.insert(config))
    }

    /// The connection is up: `Joining` becomes `Joined`. Returns whether the state changed.
    pub fn on_joined(&mut self) -> bool {
        self.transition(EngineState::Joining, EngineState::Joined)
    }

    /// `leaveChannel`: starts leaving from `Joining` or `Joined`.
    pub fn leave(&mut self) -> Result<(), EngineError> {
        match self.state {
            EngineState::Joining | EngineState::Joined => {
                self.state = EngineState::Leaving;
                Ok(())
            }
            state => Err(EngineError::LeaveRejected { state }),
        }
    }

    /// The connection is torn down: `Leaving` becomes `Idle` and the configuration in force is
    /// dropped. Returns whether the state changed.
    pub fn on_left(&mut self) -> bool {
        let changed = self.transition(EngineState::Leaving, EngineState::Idle);
        if changed {
            self.in_force = None;
            self.cloud_in_force = None;
        }
        changed
    }

    fn transition(&mut self, from: EngineState, to: EngineState) -> bool {
        let matches = self.state == from;
        if matches {
            self.state = to;
        }
        matches
    }
}
