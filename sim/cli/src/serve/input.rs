//! The operator's files, read with bounds: `serve` reads its configuration and its ticket key
//! file with [`read_text`], which reads at most the file's bound plus one byte, so that
//! `--config /dev/zero` or a multi-gigabyte file fails at once with an error naming the file
//! and the bound instead of reading until the allocator gives up. [`key_file_warning`] says
//! when a ticket key file can be read or changed by others than its owner.

use std::io::Read;
use std::path::Path;

use thiserror::Error;

/// The most bytes a `serve` configuration file may hold (the example config is under 4 KiB).
pub const MAX_CONFIG_BYTES: usize = 1024 * 1024;
/// The most bytes a ticket key file may hold (a key is 64 hex characters; whitespace aside).
pub const MAX_KEY_FILE_BYTES: usize = 4096;

/// Why a bounded read failed. The messages leave the file's name to the caller.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The file cannot be opened or read.
    #[error("cannot be read: {0}")]
    Io(#[from] std::io::Error),
    /// The file holds more than its bound (it may be endless, like `/dev/zero`).
    #[error("holds more than {limit} bytes, the most it may hold (is it the right file?)")]
    TooLarge {
        /// The bound, in bytes.
        limit: usize,
    },
    /// The file is not UTF-8 text.
    #[error("is not UTF-8 text (invalid byte at offset {offset})")]
    NotText {
        /// Where the first invalid byte is.
        offset: usize,
    },
}

/// The text of `path`, read with at most `limit + 1` bytes taken from it.
pub fn read_text(path: &Path, limit: usize) -> Result<String, ReadError> {
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    let take = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    file.take(take).read_to_end(&mut bytes)?;
    if bytes.len() > limit {
        return Err(ReadError::TooLarge { limit });
    }
    String::from_utf8(bytes).map_err(|e| ReadError::NotText {
        offset: e.utf8_error().valid_up_to(),
    })
}

/// A warning when the ticket key file `path` can be read or written by its group or by
/// others (Unix permission bits `0o066`): whoever reads the key can mint tickets. `None`
/// when the permissions are the owner's only, or cannot be read (the read of the key
/// itself then says why).
pub fn key_file_warning(path: &Path) -> Option<String> {
    mode_warning(path, "ticket key", "whoever reads the key can mint tickets")
}

/// `path`'s mode, when its group or others may read or change it.
fn mode_warning(path: &Path, what: &str, consequence: &str) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o066 != 0).then(|| {
        format!(
            "the {what} file {} has mode {mode:04o}: its group or others can read or change it, and {consequence}; `chmod 600 {}`",
            path.display(),
            path.display()
        )
    })
}

/// The same warning for a TLS private key file (**beyond the seed**): whoever reads it can
/// impersonate the access points or relays to clients.
pub fn tls_key_file_warning(path: &Path) -> Option<String> {
    mode_warning(
        path,
        "TLS key",
        "whoever reads the key can impersonate this proxy to clients",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::path::PathBuf;

    fn temp(name: &str, bytes: &[u8]) -> PathBuf {
        let path =
            std::env::temp_dir().join(format!("cloudproxy-input-{}-{name}", std::process::id()));
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn an_endless_file_fails_at_its_bound() {
        let err = read_text(Path::new("/dev/zero"), 1000).unwrap_err();
        assert!(matches!(err, ReadError::TooLarge { limit: 1000 }), "{err}");
        assert!(err.to_string().contains("more than 1000 bytes"), "{err}");
    }

    #[test]
    fn the_bound_itself_is_allowed_one_more_byte_is_not() {
        let exact = temp("exact", &[b'a'; 64]);
        assert_eq!(read_text(&exact, 64).unwrap().len(), 64);
        assert!(matches!(
            read_text(&exact, 63),
            Err(ReadError::TooLarge { limit: 63 })
        ));
        let binary = temp("binary", &[b'a', 0xFF, b'b']);
        assert!(matches!(
            read_text(&binary, 64),
            Err(ReadError::NotText { offset: 1 })
        ));
        let missing = read_text(Path::new("/nonexistent/cloudproxy.toml"), 64).unwrap_err();
        assert!(matches!(missing, ReadError::Io(_)), "{missing}");
        let _ = std::fs::remove_file(exact);
        let _ = std::fs::remove_file(binary);
    }

    #[test]
    fn a_key_file_others_can_read_is_warned_about() {
        let path = temp("key", b"00");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(key_file_warning(&path), None);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let warning = key_file_warning(&path).unwrap();
        assert!(warning.contains("mode 0644"), "{warning}");
        assert!(warning.contains("chmod 600"), "{warning}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o620)).unwrap();
        assert!(key_file_warning(&path).is_some());
        let tls = tls_key_file_warning(&path).unwrap();
        assert!(
            tls.starts_with("the TLS key file") && tls.contains("0620"),
            "{tls}"
        );
        assert_eq!(key_file_warning(Path::new("/nonexistent/key")), None);
        let _ = std::fs::remove_file(path);
    }
}
