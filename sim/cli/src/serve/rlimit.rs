//! The descriptor limit of `cloudproxy serve`: every session holds two or three descriptors
//! (the client's connection, the upstream one, its UDP socket), so a relay that keeps the
//! usual soft limit of 1 024 refuses work long before its configured session limits. At
//! start-up `serve` raises its soft `RLIMIT_NOFILE` to the hard limit (what an unprivileged
//! process may do) and logs both.

use nix::sys::resource::{getrlimit, setrlimit, Resource};

/// The descriptor limit before and after [`raise_nofile_limit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NofileLimit {
    /// The soft limit found at start-up.
    pub before: u64,
    /// The soft limit now.
    pub soft: u64,
    /// The hard limit (the ceiling of the soft one).
    pub hard: u64,
}

/// Raises the soft descriptor limit to the hard limit. Never lowers it.
pub fn raise_nofile_limit() -> Result<NofileLimit, String> {
    let (before, hard) =
        getrlimit(Resource::RLIMIT_NOFILE).map_err(|e| format!("getrlimit(RLIMIT_NOFILE): {e}"))?;
    if before < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)
            .map_err(|e| format!("setrlimit(RLIMIT_NOFILE, {hard}): {e}"))?;
    }
    let (soft, hard) =
        getrlimit(Resource::RLIMIT_NOFILE).map_err(|e| format!("getrlimit(RLIMIT_NOFILE): {e}"))?;
    Ok(NofileLimit { before, soft, hard })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_reaches_the_hard_one() {
        let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        // Start from a lower soft limit, as a fresh login shell would give.
        let low = hard.min(1024);
        setrlimit(Resource::RLIMIT_NOFILE, low, hard).unwrap();
        let limit = raise_nofile_limit().unwrap();
        assert_eq!(limit.before, low);
        assert_eq!(limit.soft, hard);
        assert_eq!(limit.hard, hard);
        assert_eq!(getrlimit(Resource::RLIMIT_NOFILE).unwrap(), (hard, hard));
        // Again: nothing to raise, nothing lowered.
        assert_eq!(raise_nofile_limit().unwrap().before, hard);
    }
}
