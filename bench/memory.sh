#!/usr/bin/env bash
# Peak memory (RSS) of sealback's full backup, incremental and restore as the repository grows:
# the same generated chat store at several sizes (default 1x = 2G and 4x = 8G), one round each
# (peak RSS does not depend on the machine's load the way time does; the wall times printed
# alongside do, and are only indicative). Every restore is compared with the source
# (`corpus compare`).
#
# Usage: bench/memory.sh [--sizes "2G 8G"] [--work DIR] [--bin PATH]
#   --bin PATH   measure this sealback binary (e.g. one built from an earlier commit) instead of
#                building the worktree's (release)
#   --work DIR   generated stores are kept there between runs (default /tmp/sealback-memory)
# Phases: full, incremental (after `corpus day`), restore, and incremental-nocache: one more
# incremental after removing this device's index cache (SPEC 10a), which rebuilds it from the
# index files (the first run on a new device). Rows go to WORK/memory.tsv.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES="2G 8G" WORK=/tmp/sealback-memory SB=""
while [ $# -gt 0 ]; do
  case $1 in
    --sizes) SIZES=$2; shift 2 ;;
    --work) WORK=$2; shift 2 ;;
    --bin) SB=$(realpath "$2"); shift 2 ;;
    *) echo "unknown argument $1 (see the usage at the top of $0)" >&2; exit 2 ;;
  esac
done
command -v /usr/bin/time >/dev/null || { echo "missing GNU time: run 'sudo apt-get install -y time'" >&2; exit 1; }
if [ -z "$SB" ]; then
  echo "building sealback (release)" >&2
  cargo build -q --release -p sealback-cli
  SB="$PWD/target/release/sealback"
fi
mkdir -p "$WORK"
ROWS="$WORK/memory.tsv"
[ -f "$ROWS" ] || printf 'binary\tsize\tphase\twall_s\trss_mib\tcache_bytes\tload1\n' > "$ROWS"

for size in $SIZES; do
  dir="$WORK/$size"
  mkdir -p "$dir"
  if [ ! -d "$dir/source.orig" ]; then
    echo "generating a $size chat store" >&2
    "$SB" corpus generate "$dir/source.orig" --size "$size" --seed 1 >&2
  fi
  rm -rf "$dir/chats" "$dir/repo" "$dir/restore" "$dir/home"
  cp -a "$dir/source.orig" "$dir/chats"
  export HOME="$dir/home" SEALBACK_RECOVERY_KEY_FILE="$dir/sealback.key"
  unset SEALBACK_CACHE_DIR XDG_CACHE_HOME
  mkdir -p "$HOME"; rm -f "$SEALBACK_RECOVERY_KEY_FILE"
  "$SB" --repo "$dir/repo" init > /dev/null
  # measure PHASE COMMAND...: peak RSS and wall time of COMMAND.
  measure() {
    local phase=$1; shift
    local load; load=$(cut -d' ' -f1 /proc/loadavg)
    /usr/bin/time -f "%e %M" -o "$dir/time.out" "$@" > "$dir/$phase.log" 2>&1 || {
      echo "$phase failed:" >&2; tail -20 "$dir/$phase.log" >&2; exit 1; }
    read -r wall rss_kb < "$dir/time.out"
    local cache=0
    [ -d "$HOME/.cache/sealback" ] && cache=$(du -sb "$HOME/.cache/sealback" | cut -f1)
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$SB" "$size" "$phase" "$wall" "$((rss_kb / 1024))" \
      "$cache" "$load" >> "$ROWS"
    printf '%-4s %-20s wall %7.2f s  peak RSS %4d MiB  cache %s bytes  load %s\n' "$size" "$phase" \
      "$wall" "$((rss_kb / 1024))" "$cache" "$load" >&2
  }
  find "$dir/chats" -type f -exec cat {} + > /dev/null
  measure full "$SB" --repo "$dir/repo" backup "$dir/chats"
  "$SB" corpus day "$dir/chats" --messages 2000 --photos 20 --seed 2 >&2
  find "$dir/chats" -type f -exec cat {} + > /dev/null
  measure incremental "$SB" --repo "$dir/repo" backup "$dir/chats"
  mkdir -p "$dir/restore"
  measure restore "$SB" --repo "$dir/repo" restore latest --target "$dir/restore/out"
  "$SB" corpus compare "$dir/chats" "$dir/restore/out/chats" >&2
  rm -rf "$HOME/.cache/sealback" "$dir/restore"
  measure incremental-nocache "$SB" --repo "$dir/repo" backup "$dir/chats"
  rm -rf "$dir/chats" "$dir/repo"
done
echo "rows: $ROWS" >&2
