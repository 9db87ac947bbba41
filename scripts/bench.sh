#!/usr/bin/env bash
# Benchmarks, side by side with the seed's Python producer, in one run on this machine: builds the
# release handler, makes a Python venv with the seed's packages (requests, azure-eventhub), runs the
# criterion bench of EventHubSink's pure work (benches/sink_batch.rs) and the comparison bench
# (benches/compare.rs), which prints one table at the end, and the warehouse bench
# (benches/warehouse_write.rs: one 1000-row batch into an empty history and into 1 million rows,
# and their ratio). A few minutes on 2 cores.
#
# Settings: CARGO_TARGET_DIR (default: target/), COINCAP_TEST_MSSQL (an ADO.NET connection string
# to a SQL Server-family database: measures the SQL writer there; the warehouse bench EMPTIES
# assets.asset_statistics_history_v3 there, so point it at a test database; unset, the
# SQL Server-compatible engine beside the repository is started for the run when it is there,
# see scripts/tsql-engine.sh),
# BENCH_TIMER_ITERATIONS (30), BENCH_WAREHOUSE_SAMPLES (15).
# Needs python3 (3.8+) with venv, and access to PyPI the first time.
set -euo pipefail
cd "$(dirname "$0")/.."

target_dir="${CARGO_TARGET_DIR:-target}"
. scripts/tsql-engine.sh
if [ -z "${COINCAP_TEST_MSSQL:-}" ]; then
  engine=0
  use_tsql_engine || engine=$?
  case $engine in
    0) ;;
    1) echo "== the SQL writer is not measured: COINCAP_TEST_MSSQL is unset and there is no engine at $TSQL_ENGINE_BIN/start" >&2 ;;
    *) exit 1 ;;
  esac
fi
venv="$target_dir/bench-venv"
say() { printf '== %s\n' "$*" >&2; }

say "cargo build --release"
cargo build --release --locked
handler="$target_dir/release/handler"

if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import requests, azure.eventhub' 2>/dev/null; then
  say "python venv with the seed's packages in $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check requests azure-eventhub
fi
"$venv/bin/python" -c 'import sys, requests, azure.eventhub; print("python", sys.version.split()[0], "requests", requests.__version__, "azure-eventhub", azure.eventhub.__version__)' >&2

# BENCH_ONLY=callgrind: the instruction counts alone (compare.rs prints only those).
if [ "${BENCH_ONLY:-}" != callgrind ]; then
  say "criterion: EventHubSink decode + map + render of a 1000-event batch"
  cargo bench --locked --bench sink_batch -- --noplot >&2

  say "warehouse: one 1000-row batch into an empty history and into 1 million rows"
  cargo bench --locked --bench warehouse_write
fi

say "comparison (handler vs seed producer)"
HANDLER_BIN="$(cd "$(dirname "$handler")" && pwd)/handler" \
BENCH_PYTHON="$(cd "$venv/bin" && pwd)/python" \
CRITERION_DIR="$(cd "$target_dir" && pwd)/criterion" \
  cargo bench --locked --bench compare

printf '\nMachine: %s x %s, %s RAM; %s (UTC)\n' "$(nproc)" \
  "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')" \
  "$(free -h | awk '/^Mem:/ {print $2}')" "$(date -u '+%Y-%m-%d %H:%M')"
