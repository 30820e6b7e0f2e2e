#!/usr/bin/env bash
# The key vault's own CPU time per password login (user + system, from /proc), which unlike
# logins/s does not depend much on what else the machine is doing. Starts a vault (SQLite, key
# file, development mode), runs the load tool against it, and prints one JSON line per run.
# Usage: bench/vault-cpu.sh [--seconds N] [--clients N] [--rounds N] [--baseline BIN]
#   --baseline BIN   another `sealback` binary, run in turn with this build in every round
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN=10 CLIENTS=64 ROUNDS=2 BASELINE=""
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) SECONDS_PER_RUN=$2; shift 2 ;;
    --clients) CLIENTS=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --baseline) BASELINE=$2; shift 2 ;;
    *) echo "unknown argument $1 (see the usage at the top of $0)" >&2; exit 2 ;;
  esac
done
cargo build -q --release -p sealback-cli -p sealback-vault-load
LOAD=target/release/sealback-vault-load
TICKS=$(getconf CLK_TCK)

one_run() { # one_run LABEL BIN
  local dir port vault out
  dir=$(mktemp -d)
  "$2" vault serve --listen 127.0.0.1:0 --dev --rate-per-account 0 --rate-per-source 0 \
    --database "sqlite://$dir/vault.db" --key-file "$dir/vault.key" >"$dir/out" 2>/dev/null &
  vault=$!
  for _ in $(seq 100); do grep -q '^http://' "$dir/out" 2>/dev/null && break; sleep 0.05; done
  out=$("$LOAD" --url "$(head -1 "$dir/out")" --clients "$CLIENTS" --seconds "$SECONDS_PER_RUN" --json | tail -1)
  read -r user system < <(awk '{print $14, $15}' "/proc/$vault/stat")
  kill "$vault"; wait "$vault" 2>/dev/null || true
  rm -rf "$dir"
  python3 -c '
import json, sys
o = json.loads(sys.argv[1]); cpu = (int(sys.argv[2]) + int(sys.argv[3])) / int(sys.argv[4])
print(json.dumps({"build": sys.argv[5], "logins": o["logins"], "logins_per_second": round(o["logins_per_second"]),
                  "vault_cpu_s": cpu, "vault_cpu_ms_per_login": round(1000 * cpu / o["logins"], 3)}))
' "$out" "$user" "$system" "$TICKS" "$1"
}

for _ in $(seq "$ROUNDS"); do
  [ -n "$BASELINE" ] && one_run baseline "$BASELINE"
  one_run this target/release/sealback
done
