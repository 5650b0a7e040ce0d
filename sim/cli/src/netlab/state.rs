//! What a lab made, written down as it is made: `down` removes exactly that, also after the
//! `up` or `run` that made it was killed.
//!
//! The state file is `<dir>/state.json` in the lab's own directory (`/run/cloudproxy-netlab/<id>/`
//! by default; `$CLOUDPROXY_NETLAB_DIR` moves the parent). It is rewritten after every step,
//! before the next one: a namespace is recorded before `ip netns add`, a process right after
//! it started (with its start time, so that a recycled process id is never signalled).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::NetlabError;

/// The parent of every lab's directory.
pub fn labs_dir() -> PathBuf {
    std::env::var_os("CLOUDPROXY_NETLAB_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/run/cloudproxy-netlab"))
}

/// A process the lab started.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessRecord {
    /// What it is (`serve`, `edge`, `resolver bank`, `call alice`).
    pub name: String,
    /// Its process id.
    pub pid: u32,
    /// Its start time (field 22 of `/proc/PID/stat`, clock ticks since boot).
    pub start: u64,
    /// The namespace it runs in.
    pub netns: String,
}

/// Everything a lab made.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabState {
    /// The lab's id (`cpnl-<id>-...` names its namespaces).
    pub id: String,
    /// The process that made it.
    pub owner_pid: u32,
    /// Network namespaces, in the order they were made.
    pub namespaces: Vec<String>,
    /// `/etc/netns/<namespace>` directories (resolver configuration for `ip netns exec`).
    pub etc_netns: Vec<PathBuf>,
    /// Processes started.
    pub processes: Vec<ProcessRecord>,
    /// The address table printed by `up`.
    pub mapping: serde_json::Value,
}

impl LabState {
    /// The state file of lab `id`.
    pub fn path_of(id: &str) -> PathBuf {
        labs_dir().join(id).join("state.json")
    }

    /// The lab's directory.
    pub fn dir(&self) -> PathBuf {
        labs_dir().join(&self.id)
    }

    /// Writes the state file (atomically: a temporary file renamed over it).
    pub fn save(&self) -> Result<(), NetlabError> {
        let path = Self::path_of(&self.id);
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(self).unwrap_or_default();
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| NetlabError::io(&path, e))
    }

    /// Reads a state file.
    pub fn load(path: &Path) -> Result<LabState, NetlabError> {
        let text = std::fs::read_to_string(path).map_err(|e| NetlabError::io(path, e))?;
        serde_json::from_str(&text).map_err(|e| NetlabError::Io {
            what: path.display().to_string(),
            error: format!("not a netlab state file: {e}"),
        })
    }

    /// The state files of every lab recorded under [`labs_dir`].
    pub fn all() -> Vec<PathBuf> {
        let Ok(dir) = std::fs::read_dir(labs_dir()) else {
            return Vec::new();
        };
        let mut found: Vec<PathBuf> = dir
            .flatten()
            .map(|e| e.path().join("state.json"))
            .filter(|p| p.is_file())
            .collect();
        found.sort();
        found
    }
}
