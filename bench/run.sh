#!/usr/bin/env bash
# The one benchmark command: builds bench/ (and its OpenDAL-sqlite peer,
# bench/peer-sqlite) in release mode and runs every group, writing
# BENCHMARKS.md, bench/results.json and bench/scale.svg.
#
#   bash bench/run.sh              # full run
#   bash bench/run.sh --quick      # smoke run
#   bash bench/run.sh --help       # every flag (also BENCH_* variables)
#
# CARGO_BUILD_JOBS limits build parallelism on a shared machine.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

# DuckDB: link DuckDB's own release build of libduckdb 1.4.5 (shipped in
# its Node bindings on npm) instead of compiling the bundled C++; both the
# adapter and the raw duckdb side use it.
duck="$root/bench/target/libduckdb"
if [ ! -f "$duck/libduckdb.so" ]; then
  command -v npm >/dev/null 2>&1 || { echo "error: npm is needed to fetch libduckdb.so" >&2; exit 1; }
  mkdir -p "$duck"
  (cd "$duck" \
    && npm pack --silent @duckdb/node-bindings-linux-x64@1.4.5-r.1 >/dev/null \
    && tar xzf duckdb-node-bindings-linux-x64-1.4.5-r.1.tgz --strip-components=1 package/libduckdb.so)
fi
export DUCKDB_LIB_DIR="$duck" LD_LIBRARY_PATH="$duck${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

for bin in redis-server redis-benchmark; do
  command -v "$bin" >/dev/null 2>&1 || echo "warning: $bin not found; its rows will be missing" >&2
done
# The S3 rows use moto_server: $MOTO_SERVER if set, else the pinned venv
# .ci/install-moto.sh makes (idempotent; the first time it needs PyPI).
# Without it the s3 backend is reported as not available.
if [ -z "${MOTO_SERVER:-}" ]; then
  if moto="$(bash .ci/install-moto.sh)"; then
    export MOTO_SERVER="$moto"
  else
    echo "warning: could not install moto; the s3 rows will be missing" >&2
  fi
fi
# Throwaway servers only: never a server from the environment.
unset REDIS_URL REDIS_CLUSTER_URLS S3_ENDPOINT S3_BUCKET

cargo build --release --quiet --manifest-path bench/Cargo.toml
cargo build --release --quiet --manifest-path bench/peer-sqlite/Cargo.toml

# The report names the command, with the BENCH_* settings it ran under.
settings=""
for v in $(compgen -e | grep '^BENCH_' | sort); do
  settings+="$v=${!v} "
done

exec bench/target/release/bench \
  --peer-sqlite bench/peer-sqlite/target/release/peer-sqlite \
  --command "${settings}bash bench/run.sh${*:+ $*}" \
  "$@"
