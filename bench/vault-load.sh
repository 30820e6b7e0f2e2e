#!/usr/bin/env bash
# Logins per second and p50/p99 latency of the key vault at 64 and 512 concurrent clients,
# against SQLite and against PostgreSQL (a throwaway server on loopback). Each login is a login
# start (the guess is counted durably before the vault answers) plus a login finish.
# Usage: bench/vault-load.sh [--seconds N] [--clients 64,512] [--database sqlite,postgres] [--protector password|passkey] [--json]
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  echo "PostgreSQL is missing: run 'sudo apt-get install -y postgresql' (or pass --database sqlite)" >&2
fi
cargo build -q --release -p sealback-cli -p sealback-vault-load
exec target/release/sealback-vault-load "$@"
