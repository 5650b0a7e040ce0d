#!/bin/bash -eu
# Builds the cargo-fuzz targets of fuzz/ unchanged for ClusterFuzzLite / OSS-Fuzz: one binary
# per fuzz/fuzz_targets/*.rs in $OUT, each with its committed corpus (and regressions) as
# <target>_seed_corpus.zip.
cd "$SRC/cloudproxy"
cargo fuzz build -O --debug-assertions

out_dir=fuzz/target/x86_64-unknown-linux-gnu/release
for src in fuzz/fuzz_targets/*.rs; do
  target=$(basename "${src%.rs}")
  cp "$out_dir/$target" "$OUT/"
  seeds=()
  for dir in "fuzz/corpus/$target" "fuzz/regressions/$target"; do
    if [ -d "$dir" ]; then
      while IFS= read -r -d '' f; do seeds+=("$f"); done \
        < <(find "$dir" -maxdepth 1 -type f ! -name '.*' -print0)
    fi
  done
  if [ ${#seeds[@]} -gt 0 ]; then
    zip -q -j "$OUT/${target}_seed_corpus.zip" "${seeds[@]}"
  fi
done
