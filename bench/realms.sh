#!/usr/bin/env bash
# Threshold realms (tvr1): recoveries per second and recovery latency (p50/p99) of a 2-of-3
# realm password against three `sealback vault serve --realm` processes on loopback (SQLite),
# beside the single vault's password logins measured by the same build. Realm evaluations per
# second are twice the recoveries per second (plus one confirm per realm per recovery).
# Usage: bench/realms.sh [--seconds N] [--clients 1,16,64] [--release]
set -euo pipefail
cd "$(dirname "$0")/.."
profile=debug
args=()
for a in "$@"; do
  if [ "$a" = "--release" ]; then profile=release; else args+=("$a"); fi
done
if [ "$profile" = release ]; then
  cargo build -q --release -p sealback-cli -p sealback-vault-load
else
  cargo build -q -p sealback-cli -p sealback-vault-load
fi
bin="target/$profile/sealback-vault-load"
"$bin" --database sqlite --clients 1,16,64 --seconds 6 --protector realm "${args[@]}"
"$bin" --database sqlite --clients 1,16,64 --seconds 6 --protector password "${args[@]}"
