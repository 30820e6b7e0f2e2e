#!/usr/bin/env bash
# The backup engine against restic, borg (and rustic when installed), run the way their users run
# them, several rounds, interleaved: in every round each tool does a full backup in turn, then
# (after one day of use applied to the source) an incremental in turn, then a restore in turn.
# The order of the tools rotates from round to round, and the source is read once before every
# measurement so each tool starts with it in the page cache. Medians with min-max per phase.
#
# Usage: bench/engine.sh [--size 2G | --corpus DIR] [--rounds N] [--work DIR]
#   --size SIZE    generate a chat store of SIZE (default 2G) with `sealback corpus generate`
#   --corpus DIR   back up a copy of any folder instead; its "day of use" adds 20 new 1 MiB files
#                  of random bytes and rewrites 1 MiB in the middle of its largest file
#   --rounds N     rounds (default 3, at least 3 for a median that means something)
#   --work DIR     where repositories, copies and results go (default: a new /tmp folder)
#   SEALBACK_BENCH_TOOLS="sealback restic borg borg-zstd rustic" selects tools (default: all
#   that are installed; borg is borg's default compression, lz4, and borg-zstd is zstd,3).
# Needs: restic and borgbackup (`sudo apt-get install -y restic borgbackup`), GNU time, bc.
# Raw rows (round, tool, phase, wall, cpu, rss, added, load) go to WORK/results.tsv; the summary
# (markdown) to stdout. The machine's load is recorded with every row: numbers taken while other
# work ran are provisional.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=2G CORPUS="" ROUNDS=3 WORK=""
while [ $# -gt 0 ]; do
  case $1 in
    --size) SIZE=$2; shift 2 ;;
    --corpus) CORPUS=$(realpath "$2"); shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --work) WORK=$2; shift 2 ;;
    *) echo "unknown argument $1 (see the usage at the top of $0)" >&2; exit 2 ;;
  esac
done
WORK=${WORK:-$(mktemp -d /tmp/sealback-bench-XXXXXX)}
[ "$ROUNDS" -ge 3 ] || echo "warning: fewer than 3 rounds; the medians are not worth much" >&2

if [ -z "${SEALBACK_BENCH_TOOLS:-}" ]; then
  SEALBACK_BENCH_TOOLS="sealback restic borg borg-zstd"
  command -v rustic >/dev/null 2>&1 && SEALBACK_BENCH_TOOLS+=" rustic"
fi
TOOLS=($SEALBACK_BENCH_TOOLS)
for tool in "${TOOLS[@]}"; do
  bin=${tool%-zstd}
  [ "$bin" = sealback ] || command -v "$bin" >/dev/null 2>&1 || {
    echo "missing $bin: run 'sudo apt-get install -y ${bin/borg/borgbackup}'" >&2; exit 1; }
done
for bin in /usr/bin/time bc; do
  command -v "$bin" >/dev/null 2>&1 || { echo "missing $bin: run 'sudo apt-get install -y ${bin##*/}'" >&2; exit 1; }
done

echo "building sealback (release)" >&2
cargo build -q --release -p sealback-cli
SB="$PWD/target/release/sealback"

mkdir -p "$WORK"
ORIG="$WORK/source.orig" SRC="$WORK/chats"
if [ ! -d "$ORIG" ]; then
  if [ -n "$CORPUS" ]; then
    echo "copying $CORPUS" >&2; cp -a "$CORPUS" "$ORIG"
  else
    echo "generating a $SIZE chat store" >&2; "$SB" corpus generate "$ORIG" --size "$SIZE" --seed 1 >&2
  fi
fi

export RESTIC_PASSWORD=bench-password BORG_PASSPHRASE=bench-password RUSTIC_PASSWORD=bench-password
export BORG_RELOCATED_REPO_ACCESS_IS_OK=yes BORG_BASE_DIR="$WORK/borg-home" RESTIC_CACHE_DIR="$WORK/restic-cache"
export SEALBACK_RECOVERY_KEY_FILE="$WORK/sealback.key" HOME="$WORK/home"
mkdir -p "$HOME"
RESULTS="$WORK/results.tsv"
printf 'round\ttool\tphase\twall_s\tcpu_s\trss_mib\tadded_bytes\tload1\n' > "$RESULTS"

repo_bytes() { du -sb "$1" | cut -f1; }
# Every file of the source read once: the page cache holds it for whichever tool comes next.
warm() { find "$SRC" -type f -exec cat {} + > /dev/null; }
load1() { cut -d' ' -f1 /proc/loadavg; }

# measure ROUND TOOL PHASE REPO COMMAND...: COMMAND under GNU time: wall, user+sys, peak RSS.
measure() {
  local round=$1 tool=$2 phase=$3 repo=$4; shift 4
  local before after load
  before=$(repo_bytes "$repo")
  load=$(load1)
  /usr/bin/time -f "%e %U %S %M" -o "$WORK/time.out" "$@" > "$WORK/$tool-$phase.log" 2>&1 || {
    echo "$tool $phase failed:" >&2; tail -20 "$WORK/$tool-$phase.log" >&2; exit 1; }
  after=$(repo_bytes "$repo")
  read -r wall user sys rss_kb < "$WORK/time.out"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$tool" "$phase" "$wall" "$(echo "$user + $sys" | bc)" \
    "$((rss_kb / 1024))" "$((after - before))" "$load" >> "$RESULTS"
  printf 'round %s %-9s %-12s wall %7.2f s  cpu %7.2f s  rss %5d MiB  added %8.1f MiB  load %s\n' "$round" \
    "$tool" "$phase" "$wall" "$(echo "$user + $sys" | bc)" "$((rss_kb / 1024))" \
    "$(echo "($after - $before) / 1048576" | bc -l)" "$load" >&2
}

init() {
  local tool=$1 repo="$WORK/repo-$1"
  rm -rf "$repo"
  case $tool in
    sealback) rm -f "$SEALBACK_RECOVERY_KEY_FILE"; "$SB" --repo "$repo" init > /dev/null ;;
    restic) restic init --repo "$repo" > /dev/null ;;
    rustic) rustic init --repo "$repo" > /dev/null 2>&1 ;;
    borg | borg-zstd) borg init --encryption repokey "$repo" > /dev/null ;;
  esac
}

backup() {
  local round=$1 tool=$2 phase=$3 repo="$WORK/repo-$2"
  warm
  case $tool in
    sealback) measure "$round" "$tool" "$phase" "$repo" "$SB" --repo "$repo" backup "$SRC" ;;
    restic) measure "$round" "$tool" "$phase" "$repo" restic --repo "$repo" backup "$SRC" ;;
    rustic) measure "$round" "$tool" "$phase" "$repo" rustic --repo "$repo" backup "$SRC" ;;
    borg) measure "$round" "$tool" "$phase" "$repo" borg create "$repo::$phase" "$SRC" ;;
    borg-zstd) measure "$round" "$tool" "$phase" "$repo" borg create --compression zstd,3 "$repo::$phase" "$SRC" ;;
  esac
}

restore() {
  local round=$1 tool=$2 repo="$WORK/repo-$2" target="$WORK/restore-$2"
  rm -rf "$target"; mkdir -p "$target"
  case $tool in
    sealback) measure "$round" "$tool" restore "$repo" "$SB" --repo "$repo" restore latest --target "$target/out" ;;
    restic) measure "$round" "$tool" restore "$repo" restic --repo "$repo" restore latest --target "$target" ;;
    rustic) measure "$round" "$tool" restore "$repo" rustic --repo "$repo" restore latest "$target" ;;
    borg | borg-zstd) (cd "$target" && measure "$round" "$tool" restore "$repo" borg extract "$repo::incremental") ;;
  esac
}

day_of_use() {
  if [ -z "$CORPUS" ]; then
    "$SB" corpus day "$SRC" --messages 2000 --photos 20 --seed 2 >&2
  else
    local i largest
    for i in $(seq 1 20); do head -c 1048576 /dev/urandom > "$SRC/bench-new-$i.bin"; done
    largest=$(find "$SRC" -type f -printf '%s %p\n' | sort -n | tail -1 | cut -d' ' -f2-)
    head -c 1048576 /dev/urandom | dd of="$largest" bs=1M seek=$(( $(stat -c %s "$largest") / 2097152 )) conv=notrunc status=none
  fi
}

for round in $(seq 1 "$ROUNDS"); do
  # This round's order: the tools rotated by one more place each round.
  order=("${TOOLS[@]:$(( (round - 1) % ${#TOOLS[@]} ))}" "${TOOLS[@]:0:$(( (round - 1) % ${#TOOLS[@]} ))}")
  echo "round $round: ${order[*]} (load $(load1))" >&2
  rm -rf "$SRC"; cp -a "$ORIG" "$SRC"
  for tool in "${order[@]}"; do init "$tool"; done
  for tool in "${order[@]}"; do backup "$round" "$tool" full; done
  day_of_use
  for tool in "${order[@]}"; do backup "$round" "$tool" incremental; done
  for tool in "${order[@]}"; do restore "$round" "$tool"; done
  # sealback's restore must be the source as it is now, byte for byte.
  if [[ " ${TOOLS[*]} " == *" sealback "* ]]; then
    if [ -z "$CORPUS" ]; then
      "$SB" corpus compare "$SRC" "$WORK/restore-sealback/out/chats" >&2
    else
      diff -r "$SRC" "$WORK/restore-sealback/out/chats" >&2
    fi
  fi
done

# Summary: median (min-max) per tool and phase, then the ratios of the issue's targets.
stat_of() { # TOOL PHASE COLUMN -> "median min max"
  awk -F'\t' -v t="$1" -v p="$2" -v c="$3" 'NR > 1 && $2 == t && $3 == p { print $c }' "$RESULTS" |
    sort -g | awk '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; print m, v[1], v[NR] }'
}
med() { stat_of "$1" "$2" "$3" | cut -d' ' -f1; }
echo
echo "$ROUNDS rounds; source $(du -sh "$ORIG" | cut -f1) ($( [ -n "$CORPUS" ] && echo "copy of $CORPUS" || echo "generated, $SIZE")); load average during the runs $(awk -F'\t' 'NR > 1 { print $8 }' "$RESULTS" | sort -g | sed -n '1p;$p' | paste -sd- -)"
echo
printf '| tool | phase | wall s median (min-max) | CPU s median | peak RSS MiB median | added MiB median |\n| --- | --- | --- | ---: | ---: | ---: |\n'
for phase in full incremental restore; do
  for tool in "${TOOLS[@]}"; do
    read -r m lo hi < <(stat_of "$tool" "$phase" 4)
    printf '| %s | %s | %.2f (%.2f-%.2f) | %.2f | %d | %.1f |\n' "$tool" "$phase" "$m" "$lo" "$hi" \
      "$(med "$tool" "$phase" 5)" "$(med "$tool" "$phase" 6)" "$(echo "$(med "$tool" "$phase" 7) / 1048576" | bc -l)"
  done
done
has() { [[ " ${TOOLS[*]} " == *" $1 "* ]]; }
if has sealback && has restic; then
  ratio() { echo "scale=2; $1 / $2" | bc; }
  best() { # PHASE COLUMN TOOLS...: the smallest median among the peers
    local phase=$1 col=$2; shift 2
    for t in "$@"; do has "$t" && med "$t" "$phase" "$col"; done | sort -g | head -1; }
  peers=(restic borg borg-zstd rustic)
  echo
  echo "| target | ratio (medians) | goal |"
  echo "| --- | ---: | --- |"
  echo "| full backup wall vs restic | $(ratio "$(med sealback full 4)" "$(med restic full 4)") | <= 0.5 |"
  has borg && echo "| full backup wall vs borg (lz4) | $(ratio "$(med sealback full 4)" "$(med borg full 4)") | <= 0.8 |"
  has borg-zstd && echo "| full backup wall vs borg (zstd,3) | $(ratio "$(med sealback full 4)" "$(med borg-zstd full 4)") | <= 0.8 |"
  echo "| incremental wall vs the fastest peer | $(ratio "$(med sealback incremental 4)" "$(best incremental 4 "${peers[@]}")") | <= 0.5 |"
  echo "| incremental bytes added vs restic | $(ratio "$(med sealback incremental 7)" "$(med restic incremental 7)") | <= 0.25 |"
  echo "| restore wall vs restic | $(ratio "$(med sealback restore 4)" "$(med restic restore 4)") | <= 0.6 |"
  has borg && echo "| restore wall vs borg (lz4) | $(ratio "$(med sealback restore 4)" "$(med borg restore 4)") | <= 0.6 |"
  has borg-zstd && echo "| restore wall vs borg (zstd,3) | $(ratio "$(med sealback restore 4)" "$(med borg-zstd restore 4)") | <= 0.6 |"
  echo "| peak RSS MiB full / incremental / restore | $(med sealback full 6) / $(med sealback incremental 6) / $(med sealback restore 6) | <= 150 |"
fi
echo "raw rows: $RESULTS" >&2
