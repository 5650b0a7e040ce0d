//! `--params-file FILE` (`-` for standard input): setParameters texts from files, for texts too
//! long or too awkward to quote on a command line (the OS caps one argument at 128 KiB).
//!
//! Each file holds one setParameters text. Files are read in the order given and their texts
//! come before the command line's own (`--params` or the OPs of `engine`). A file is bounded by
//! [`MAX_PARAMS_FILE_BYTES`], the most a setParameters text may hold
//! ([`cloudproxy_core::params::MAX_INPUT_LEN`], 64 KiB): at most that many bytes plus one are
//! read, and a longer file is refused before anything runs. Standard input can be read once.

use std::io::Read;
use std::path::{Path, PathBuf};

/// The most bytes one `--params-file` may hold.
pub const MAX_PARAMS_FILE_BYTES: usize = cloudproxy_core::params::MAX_INPUT_LEN;

/// The setParameters texts of `paths`, in order; the error names the file and what was
/// wrong.
pub fn read_all(paths: &[PathBuf]) -> Result<Vec<String>, String> {
    if paths.iter().filter(|p| is_stdin(p)).count() > 1 {
        return Err("--params-file -: standard input can be read only once".to_owned());
    }
    paths.iter().map(|p| read_one(p)).collect()
}

fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == "-"
}

fn read_one(path: &Path) -> Result<String, String> {
    let name = if is_stdin(path) {
        "standard input".to_owned()
    } else {
        path.display().to_string()
    };
    let fail = |why: String| format!("--params-file {name}: {why}");
    let mut bytes = Vec::new();
    let limit = MAX_PARAMS_FILE_BYTES as u64 + 1;
    let read = if is_stdin(path) {
        std::io::stdin().lock().take(limit).read_to_end(&mut bytes)
    } else {
        std::fs::File::open(path).and_then(|f| f.take(limit).read_to_end(&mut bytes))
    };
    read.map_err(|e| fail(e.to_string()))?;
    if bytes.len() > MAX_PARAMS_FILE_BYTES {
        return Err(fail(format!(
            "longer than {MAX_PARAMS_FILE_BYTES} bytes, the most a setParameters text may hold"
        )));
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        fail(format!(
            "not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ))
    })?;
    // One text per file: the newline editors end files with is not part of it.
    let text = text.trim_end_matches(['\n', '\r']).to_owned();
    if text.trim().is_empty() {
        return Err(fail(
            "empty; it should hold one setParameters JSON text".to_owned(),
        ));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, bytes: &[u8]) -> PathBuf {
        let path =
            std::env::temp_dir().join(format!("cloudproxy-params-{}-{name}", std::process::id()));
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn a_file_holds_one_text_without_its_final_newline() {
        let a = file("a.json", b"{\"rtc.enable_proxy\":true}\n");
        let b = file("b.json", b"{\"rtc.enable_proxy\":false}\r\n");
        assert_eq!(
            read_all(&[a.clone(), b.clone()]).unwrap(),
            [
                r#"{"rtc.enable_proxy":true}"#,
                r#"{"rtc.enable_proxy":false}"#
            ]
        );
        let _ = (std::fs::remove_file(a), std::fs::remove_file(b));
    }

    #[test]
    fn bad_files_are_refused_naming_the_file_and_the_bound() {
        let big = file("big.json", &vec![b' '; MAX_PARAMS_FILE_BYTES + 1]);
        let exact = file("exact.json", &vec![b'x'; MAX_PARAMS_FILE_BYTES]);
        let empty = file("empty.json", b"\n");
        let binary = file("binary.json", b"{\xff}");
        let err = read_all(std::slice::from_ref(&big)).unwrap_err();
        assert!(err.contains(&big.display().to_string()), "{err}");
        assert!(err.contains("longer than 65536 bytes"), "{err}");
        assert_eq!(
            read_all(std::slice::from_ref(&exact)).unwrap()[0].len(),
            MAX_PARAMS_FILE_BYTES
        );
        assert!(read_all(std::slice::from_ref(&empty))
            .unwrap_err()
            .contains("empty"));
        assert!(read_all(std::slice::from_ref(&binary))
            .unwrap_err()
            .contains("not UTF-8 text (invalid byte at offset 1)"));
        let missing = read_all(&[PathBuf::from("/nonexistent/params.json")]).unwrap_err();
        assert!(
            missing.starts_with("--params-file /nonexistent/params.json: "),
            "{missing}"
        );
        let twice = read_all(&[PathBuf::from("-"), PathBuf::from("-")]).unwrap_err();
        assert!(twice.contains("only once"), "{twice}");
        for p in [big, exact, empty, binary] {
            let _ = std::fs::remove_file(p);
        }
    }
}
