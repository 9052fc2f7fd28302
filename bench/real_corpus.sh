#!/usr/bin/env bash
# Builds a real-data corpus from files this machine already has (no network):
#   source.tar   - source and library text: the crates under $CARGO_HOME/registry/src
#                  and the C headers under /usr/include
#   binaries.tar - shared libraries and binaries: /usr/lib/x86_64-linux-gnu
#                  (or the multiarch lib dir of this machine) and /usr/bin
# Tars are deterministic for the same files (sorted, fixed mtime and owner),
# so two runs on one machine measure the same bytes; across machines the
# content differs, so quote ratios against peers from the same run.
#
# Usage: bench/real_corpus.sh [OUTDIR]   (default bench/corpus-real)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench/corpus-real}
mkdir -p "$out"
deterministic_tar() { # OUT DIR...
  local dest=$1; shift
  local present=()
  for d in "$@"; do [ -d "$d" ] && present+=("${d#/}"); done
  [ ${#present[@]} -gt 0 ] || { echo "none of $* exists" >&2; return 1; }
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
    --warning=no-file-changed --ignore-failed-read -cf "$dest.part" -C / "${present[@]}" 2>/dev/null || true
  mv "$dest.part" "$dest"
}
cargo_home=${CARGO_HOME:-$HOME/.cargo}
if [ ! -s "$out/source.tar" ]; then
  echo "building $out/source.tar from $cargo_home/registry/src and /usr/include"
  deterministic_tar "$out/source.tar" "$cargo_home/registry/src" /usr/include
fi
if [ ! -s "$out/binaries.tar" ]; then
  libdir=/usr/lib/$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
  echo "building $out/binaries.tar from $libdir and /usr/bin"
  deterministic_tar "$out/binaries.tar" "$libdir" /usr/bin
fi
ls -l "$out"/*.tar
