# Sourced by .ci/run and scripts/bench.sh: a SQL Server-compatible engine for the live suite and the
# warehouse benches, when COINCAP_TEST_MSSQL names no server of the user's. `use_tsql_engine`
# looks for the engine beside the repository (../shared/tsql-engine, or beside the local repository
# a clean clone was made from; TSQL_ENGINE_HOME overrides), starts it in a directory and on ports of
# its own, stops and wipes it when the calling script exits, and exports COINCAP_TEST_MSSQL (its
# connection string, naming database coincap, which init-warehouse creates: never master) and
# COINCAP_TEST_MSSQL_STOP / _START (the commands the outage tests run).
# Returns 1 when there is no engine (TSQL_ENGINE_BIN then says where it was looked for), 2 when it
# is there but did not start. Run from the repository root.

use_tsql_engine() {
  local engine origin free_port
  engine=${TSQL_ENGINE_HOME:-$(pwd)/../shared/tsql-engine}
  origin=$(git config --get remote.origin.url 2>/dev/null || true)
  if [ ! -x "$engine/start" ] && [ -d "$origin" ]; then
    engine=$(cd "$origin" && pwd)/../shared/tsql-engine
  fi
  TSQL_ENGINE_BIN=$engine
  [ -x "$engine/start" ] || return 1
  free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
  TSQL_ENGINE_DIR=$(mktemp -d "${TMPDIR:-/tmp}/coincap-engine.XXXXXX")
  TSQL_ENGINE_PORT=$(free_port)
  TSQL_ENGINE_PG_PORT=$(free_port)
  export TSQL_ENGINE_DIR TSQL_ENGINE_PORT TSQL_ENGINE_PG_PORT
  trap '"$TSQL_ENGINE_BIN/stop" --wipe >/dev/null 2>&1; rm -rf "$TSQL_ENGINE_DIR"' EXIT
  echo "== start the SQL Server-compatible engine ($engine/start, TDS on 127.0.0.1:$TSQL_ENGINE_PORT)" >&2
  COINCAP_TEST_MSSQL=$("$engine/start" | tail -n 1) || { echo "the engine did not start" >&2; return 2; }
  COINCAP_TEST_MSSQL=${COINCAP_TEST_MSSQL/Database=master;/Database=coincap;}
  COINCAP_TEST_MSSQL_STOP="$engine/stop"
  COINCAP_TEST_MSSQL_START="$engine/start"
  export COINCAP_TEST_MSSQL COINCAP_TEST_MSSQL_STOP COINCAP_TEST_MSSQL_START
}
