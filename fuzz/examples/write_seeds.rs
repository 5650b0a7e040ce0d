//! Writes the named seed files into `fuzz/corpus/<target>/` (run from anywhere):
//!
//! ```sh
//! cargo run --manifest-path fuzz/Cargo.toml --example write_seeds
//! ```
//!
//! Only the named seeds are written (other files in the folders are left alone); commit them.
//! `core/tests/fuzz_replay.rs` fails when a committed seed differs from what this writes.

use std::path::Path;

fn main() -> std::io::Result<()> {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    for seed in cloudproxy_fuzz::targets::seeds::all() {
        let dir = corpus.join(seed.target);
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(seed.name);
        std::fs::write(&path, &seed.bytes)?;
        println!("{} ({} bytes)", path.display(), seed.bytes.len());
    }
    Ok(())
}
