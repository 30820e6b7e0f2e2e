#!/usr/bin/env bash
# The backup engine side by side with restic and borg, in one run, on one generated chat store:
# full backup, an incremental after a day of use (2,000 messages with read receipts, 20 photos),
# and a restore. For each: wall and CPU time, peak RSS, bytes added to the repository.
#
# Usage: bench/engine.sh [SIZE] [WORK_DIR]     SIZE like 2G (default) or 512M
#        SEALBACK_BENCH_TOOLS="sealback restic borg" selects tools.
# Needs: restic and borgbackup (sudo apt-get install -y restic borgbackup), GNU time.
# Prints a table and the ratios the engine issue targets; raw lines go to WORK_DIR/results.tsv.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE="${1:-2G}"
WORK="${2:-$(mktemp -d /tmp/sealback-bench-XXXXXX)}"
TOOLS="${SEALBACK_BENCH_TOOLS:-sealback restic borg}"

for tool in $TOOLS; do
  command -v "$tool" >/dev/null 2>&1 || [ "$tool" = sealback ] || {
    echo "missing $tool: run 'sudo apt-get install -y ${tool/borg/borgbackup}'" >&2; exit 1; }
done
[ -x /usr/bin/time ] || { echo "missing GNU time: run 'sudo apt-get install -y time'" >&2; exit 1; }

echo "building sealback (release)" >&2
cargo build -q --release -p sealback-cli
SB="$PWD/target/release/sealback"

mkdir -p "$WORK"
CHATS="$WORK/chats"
if [ ! -d "$CHATS" ]; then
  echo "generating a $SIZE chat store in $CHATS" >&2
  "$SB" corpus generate "$CHATS" --size "$SIZE" --seed 1 >&2
fi
# Start from the generated state every run (the day of use is applied below).
if [ -d "$WORK/chats.orig" ]; then rm -rf "$CHATS"; cp -a "$WORK/chats.orig" "$CHATS"; else cp -a "$CHATS" "$WORK/chats.orig"; fi

export RESTIC_PASSWORD=bench-password BORG_PASSPHRASE=bench-password BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes
export BORG_RELOCATED_REPO_ACCESS_IS_OK=yes BORG_BASE_DIR="$WORK/borg-home" RESTIC_CACHE_DIR="$WORK/restic-cache"
export SEALBACK_RECOVERY_KEY_FILE="$WORK/sealback.key" HOME="$WORK/home"
mkdir -p "$HOME"
RESULTS="$WORK/results.tsv"
: > "$RESULTS"

repo_bytes() { du -sb "$1" | cut -f1; }
warm() { find "$CHATS" -type f -exec cat {} + > /dev/null; }

# measure TOOL PHASE REPO COMMAND...: runs COMMAND under GNU time, records wall, user+sys, RSS.
measure() {
  local tool=$1 phase=$2 repo=$3; shift 3
  local before after
  before=$(repo_bytes "$repo")
  /usr/bin/time -f "%e %U %S %M" -o "$WORK/time.out" "$@" > "$WORK/$tool-$phase.log" 2>&1 || {
    echo "$tool $phase failed:" >&2; tail -20 "$WORK/$tool-$phase.log" >&2; exit 1; }
  after=$(repo_bytes "$repo")
  read -r wall user sys rss_kb < "$WORK/time.out"
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$tool" "$phase" "$wall" "$(echo "$user + $sys" | bc)" \
    "$((rss_kb / 1024))" "$((after - before))" >> "$RESULTS"
  printf '%-9s %-12s wall %7.2f s  cpu %7.2f s  rss %5d MiB  added %8.1f MiB\n' "$tool" "$phase" \
    "$wall" "$(echo "$user + $sys" | bc)" "$((rss_kb / 1024))" "$(echo "($after - $before) / 1048576" | bc -l)" >&2
}

init() {
  local tool=$1 repo="$WORK/repo-$1"
  rm -rf "$repo" "$WORK/restore-$tool"
  case $tool in
    sealback) rm -f "$SEALBACK_RECOVERY_KEY_FILE"; "$SB" --repo "$repo" init > /dev/null ;;
    restic) restic init --repo "$repo" > /dev/null ;;
    borg) borg init --encryption repokey-blake2 "$repo" > /dev/null ;;
  esac
}

backup() {
  local tool=$1 phase=$2 repo="$WORK/repo-$1"
  warm
  case $tool in
    sealback) measure "$tool" "$phase" "$repo" "$SB" --repo "$repo" backup "$CHATS" ;;
    restic) measure "$tool" "$phase" "$repo" restic --repo "$repo" backup "$CHATS" ;;
    borg) measure "$tool" "$phase" "$repo" borg create --compression zstd,3 "$repo::$phase" "$CHATS" ;;
  esac
}

restore() {
  local tool=$1 repo="$WORK/repo-$1" target="$WORK/restore-$1"
  rm -rf "$target"; mkdir -p "$target"
  case $tool in
    sealback) measure "$tool" restore "$repo" "$SB" --repo "$repo" restore latest --target "$target/out" ;;
    restic) measure "$tool" restore "$repo" restic --repo "$repo" restore latest --target "$target" ;;
    borg) (cd "$target" && measure "$tool" restore "$repo" borg extract "$repo::incremental") ;;
  esac
}

for tool in $TOOLS; do init "$tool"; done
for tool in $TOOLS; do backup "$tool" full; done
echo "applying a day of use: 2,000 messages (and read receipts), 20 photos" >&2
"$SB" corpus day "$CHATS" --messages 2000 --photos 20 --seed 2 >&2
for tool in $TOOLS; do backup "$tool" incremental; done
for tool in $TOOLS; do restore "$tool"; done

# Verify sealback's restore (the others are trusted as references).
if [[ " $TOOLS " == *" sealback "* ]]; then
  "$SB" corpus compare "$CHATS" "$WORK/restore-sealback/out/chats" >&2
fi

echo
printf '| tool | phase | wall s | CPU s | peak RSS MiB | added MiB |\n| --- | --- | ---: | ---: | ---: | ---: |\n'
while IFS=$'\t' read -r tool phase wall cpu rss added; do
  printf '| %s | %s | %.2f | %.2f | %d | %.1f |\n' "$tool" "$phase" "$wall" "$cpu" "$rss" "$(echo "$added / 1048576" | bc -l)"
done < "$RESULTS"

get() { awk -F'\t' -v t="$1" -v p="$2" -v c="$3" '$1 == t && $2 == p { print $c }' "$RESULTS"; }
if [[ " $TOOLS " == *" sealback "* && " $TOOLS " == *" restic "* && " $TOOLS " == *" borg "* ]]; then
  ratio() { echo "scale=2; $1 / $2" | bc; }
  fastest_incr=$(printf '%s\n%s\n' "$(get restic incremental 3)" "$(get borg incremental 3)" | sort -g | head -1)
  echo
  echo "targets (sealback / peer):"
  echo "  full backup wall vs restic      $(ratio "$(get sealback full 3)" "$(get restic full 3)")   (target <= 0.5)"
  echo "  full backup wall vs borg        $(ratio "$(get sealback full 3)" "$(get borg full 3)")   (target <= 0.8)"
  echo "  incremental wall vs fastest     $(ratio "$(get sealback incremental 3)" "$fastest_incr")   (target <= 0.5)"
  echo "  incremental bytes vs restic     $(ratio "$(get sealback incremental 6)" "$(get restic incremental 6)")   (target <= 0.25)"
  echo "  restore wall vs restic          $(ratio "$(get sealback restore 3)" "$(get restic restore 3)")   (target <= 0.6)"
  echo "  peak RSS (MiB) full/incr/restore $(get sealback full 5)/$(get sealback incremental 5)/$(get sealback restore 5)   (target <= 150)"
fi
echo "raw: $RESULTS" >&2
