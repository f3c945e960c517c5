#!/usr/bin/env bash
# Switchyard's load harness (docs/benchmarks.md). From the project root:
#
#   bench/run.sh
#
# builds the release binaries, starts a throwaway PostgreSQL cluster, migrates it, starts
# `switchyard serve` and a loopback HTTP agent, seeds TENANTS x USERS x AGENTS over the API
# (echo agents, one http agent calling the loopback agent, and a fallback), then measures each
# scenario with wrk and prints req/s, p50, p99, errors and the server's memory.
#
# Environment (defaults in brackets):
#   TENANTS [20] USERS [10] AGENTS [8]       what `switchyard-bench seed` creates over the API
#   SCENARIOS ["chat chat_new list get"]     see bench/scenario.lua
#   ROUNDS [3] DURATION [10] WARMUP [2]      rounds of every scenario, seconds each; medians reported
#   CONNECTIONS [32] THREADS [2]             wrk's
#   FILL_TENANTS [0] FILL_USERS [5] FILL_TURNS [0] FILL_PER_CONVERSATION [10]
#                                            bulk data written with COPY before the server starts
#   LOAD [seed]                              whose tokens drive the load: `seed` (the seeded users)
#                                            or `fill` (the generated users, at most LOAD_USERS [50000])
#   PAGES [0]                                also measure the admin's list (`?all=true`) at page 1
#                                            and at page PAGES (keyset cursor), with LOAD=fill
#   FLOOR [0]                                also run the database floor (bench/pgbench.sh)
#   DATABASE_MAX_CONNECTIONS [16]            the server's pool
#   FLOOD_CONNECTIONS [0]                    > 0: a flood from one address (that many connections)
#                                            runs through every round; its rate and answers are printed
#   FLOOD [login]                            what floods: `login` (failed logins, bench/login_flood.lua)
#                                            or `healthz` (GET /healthz: the cost of any flood of that
#                                            rate, to compare with)
#   PG_BIN                                   PostgreSQL's server binaries (default: newest installed)
#   OUT                                      where logs go (default: a new /tmp/switchyard-bench.XXXXXX)
#
# Everything listens on 127.0.0.1 and everything started is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

TENANTS=${TENANTS:-20}; USERS=${USERS:-10}; AGENTS=${AGENTS:-8}
SCENARIOS=${SCENARIOS:-"chat chat_new list get"}
ROUNDS=${ROUNDS:-3}; DURATION=${DURATION:-10}; WARMUP=${WARMUP:-2}
CONNECTIONS=${CONNECTIONS:-32}; THREADS=${THREADS:-2}
FILL_TENANTS=${FILL_TENANTS:-0}; FILL_USERS=${FILL_USERS:-5}; FILL_TURNS=${FILL_TURNS:-0}
FILL_PER_CONVERSATION=${FILL_PER_CONVERSATION:-10}
LOAD=${LOAD:-seed}; LOAD_USERS=${LOAD_USERS:-50000}; PAGES=${PAGES:-0}; FLOOR=${FLOOR:-0}
DATABASE_MAX_CONNECTIONS=${DATABASE_MAX_CONNECTIONS:-16}
FLOOD_CONNECTIONS=${FLOOD_CONNECTIONS:-0}; FLOOD=${FLOOD:-login}
OUT=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/switchyard-bench.XXXXXX")}
mkdir -p "$OUT"

die() { echo "error: $*" >&2; exit 1; }
for tool in wrk curl psql; do command -v "$tool" >/dev/null || die "$tool not found (apt-get install -y wrk curl postgresql)"; done
if [ -z "${PG_BIN:-}" ]; then
  PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$PG_BIN" ] || PG_BIN=$(dirname "$(command -v initdb)")
fi
[ -x "$PG_BIN/initdb" ] || die "no PostgreSQL server binaries in $PG_BIN (set PG_BIN)"

echo "# building the release binaries" >&2
cargo build --release --quiet -p switchyard -p switchyard-bench
SY=$ROOT/target/release/switchyard
BENCH=$ROOT/target/release/switchyard-bench

PIDS=()
PG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/switchyard-bench-pg.XXXXXX")
as_pg() { if [ "$(id -u)" = 0 ]; then su postgres -s /bin/bash -c "$1"; else bash -c "$1"; fi; }
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  as_pg "'$PG_BIN/pg_ctl' -D '$PG_DIR/data' -m immediate -w stop" >/dev/null 2>&1 || true
  cp "$PG_DIR/postgresql.log" "$OUT/" 2>/dev/null || true
  rm -rf "$PG_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { local p; for p in $(shuf -i 20000-60000 -n 50); do (echo >"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }; done; die "no free port"; }

# --- PostgreSQL: a throwaway cluster, stock settings but shared_buffers ---
PG_PORT=$(free_port)
[ "$(id -u)" = 0 ] && chown postgres "$PG_DIR"
as_pg "'$PG_BIN/initdb' -D '$PG_DIR/data' -A trust -U postgres >/dev/null"
as_pg "cat >> '$PG_DIR/data/postgresql.conf'" <<CONF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_DIR'
max_connections = 200
shared_buffers = 512MB
CONF
as_pg "'$PG_BIN/pg_ctl' -D '$PG_DIR/data' -l '$PG_DIR/postgresql.log' -w start" >/dev/null
PSQL=(psql -X -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -v ON_ERROR_STOP=1)
"${PSQL[@]}" -d postgres -c "CREATE DATABASE switchyard"
DB_URL="postgres://postgres@127.0.0.1:$PG_PORT/switchyard"
echo "# PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on port $PG_PORT; logs in $OUT" >&2

export SWITCHYARD_DATABASE_URL=$DB_URL
export SWITCHYARD_JWT_SECRET; SWITCHYARD_JWT_SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
export SWITCHYARD_ADMIN_TOKEN; SWITCHYARD_ADMIN_TOKEN=${SWITCHYARD_ADMIN_TOKEN:-$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')}
export SWITCHYARD_DATABASE_MAX_CONNECTIONS=$DATABASE_MAX_CONNECTIONS
export RUST_LOG=${RUST_LOG:-warn}
"$SY" migrate >"$OUT/migrate.log" 2>&1 || { cat "$OUT/migrate.log" >&2; die "migrate failed"; }

if [ "$FILL_TURNS" -gt 0 ]; then
  echo "# filling $FILL_TENANTS tenants x $FILL_USERS users, $FILL_TURNS turns" >&2
  "$BENCH" fill --database-url "$DB_URL" --tenants "$FILL_TENANTS" --users "$FILL_USERS" \
    --turns "$FILL_TURNS" --turns-per-conversation "$FILL_PER_CONVERSATION" 2>&1 | tr '\r' '\n' | tail -n 6 >&2
  "${PSQL[@]}" -d switchyard -tAc "SELECT 'database ' || pg_size_pretty(pg_database_size('switchyard'))" >&2
  "${PSQL[@]}" -d switchyard -c "CHECKPOINT"
fi

# --- the loopback agent and the server ---
start() {  # name, command... ; sets URL to the "listening on" address it prints
  local name=$1; shift
  "$@" >"$OUT/$name.out" 2>"$OUT/$name.err" </dev/null &
  local pid=$! deadline=$((SECONDS + 60))
  PIDS+=("$pid")
  URL=""
  while [ -z "$URL" ]; do
    kill -0 "$pid" 2>/dev/null || { cat "$OUT/$name.err" >&2; die "$name exited"; }
    [ $SECONDS -lt $deadline ] || die "$name did not start"
    URL=$(grep -m1 -o 'listening on http://[^[:space:]]*' "$OUT/$name.out" | sed 's/^listening on //' || true)
    [ -n "$URL" ] || sleep 0.1
  done
  LAST_PID=$pid
}
start agent "$BENCH" agent --bind 127.0.0.1:0
AGENT_URL=$URL
SWITCHYARD_BIND=127.0.0.1:0 start switchyard "$SY" serve
SERVER=$URL; SERVER_PID=$LAST_PID
sleep 1
read -r IDLE_RSS _ < <("$BENCH" memory "$SERVER_PID" | awk '{print $2, $4}')
echo "# switchyard at $SERVER (pid $SERVER_PID), idle RSS $IDLE_RSS MiB; agent at $AGENT_URL" >&2

# --- who drives the load ---
TOKENS=$OUT/tokens.tsv
if [ "$LOAD" = fill ]; then
  "$BENCH" tokens --database-url "$DB_URL" --limit "$LOAD_USERS" --out "$TOKENS"
else
  "$BENCH" seed --url "$SERVER" --admin-token "$SWITCHYARD_ADMIN_TOKEN" --tenants "$TENANTS" --users "$USERS" \
    --agents "$AGENTS" --agent-url "$AGENT_URL/agent" --out "$TOKENS"
fi

[ -s "$TOKENS" ] || die "no users to drive the load (generated tenants need FILL_USERS >= 2: the first user of each is its admin, the others own the conversations)"

# --- list pages: page 1 and page PAGES of the biggest tenant's `?all=true` list ---
if [ "$PAGES" -gt 0 ]; then
  "$BENCH" tokens --database-url "$DB_URL" --admins --limit 1 --out "$OUT/admin.tsv"
  ADMIN=$(cut -f1 "$OUT/admin.tsv")
  path="/v1/conversations?all=true&limit=20"
  printf '%s\t%s\n' "$ADMIN" "$path" >"$OUT/page-1.tsv"
  for ((page = 1; page < PAGES; page++)); do
    cursor=$(curl -sf -H "Authorization: Bearer $ADMIN" "$SERVER$path" | grep -o '"next_cursor":"[^"]*"' | cut -d'"' -f4) \
      || die "reading page $page failed"
    [ -n "$cursor" ] || die "the list ends before page $PAGES"
    path="/v1/conversations?all=true&limit=20&cursor=$cursor"
  done
  printf '%s\t%s\n' "$ADMIN" "$path" >"$OUT/page-$PAGES.tsv"
fi

# --- load ---
wrk_run() {  # scenario, tokens file, seconds -> RESULT line
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"${3}s" --timeout 10s -s "$ROOT/bench/scenario.lua" "$SERVER" -- "$1" "$2" \
    2>&1 | tee -a "$OUT/wrk-$1.log" | grep '^RESULT' || true
}
median() { sort -g | awk '{a[NR]=$1} END {if (NR == 0) print "-"; else if (NR % 2) print a[(NR+1)/2]; else printf "%.2f\n", (a[NR/2]+a[NR/2+1])/2}'; }

if [ "$FLOOD_CONNECTIONS" -gt 0 ]; then
  # Long enough for every round; stopped (with the rest) on exit.
  case "$FLOOD" in
    login) flood_args=(-s "$ROOT/bench/login_flood.lua" "$SERVER") ;;
    healthz) flood_args=("$SERVER/healthz") ;;
    *) die "FLOOD must be login or healthz" ;;
  esac
  wrk -t1 -c"$FLOOD_CONNECTIONS" -d3600s --timeout 10s "${flood_args[@]}" >"$OUT/flood.log" 2>&1 &
  FLOOD_PID=$!
  PIDS+=("$FLOOD_PID")
  echo "# a $FLOOD flood runs: $FLOOD_CONNECTIONS connections" >&2
  sleep 2
fi

RUNS=()
for s in $SCENARIOS; do RUNS+=("$s:$s:$TOKENS"); done
if [ "$PAGES" -gt 0 ]; then RUNS+=("page_1:path:$OUT/page-1.tsv" "page_$PAGES:path:$OUT/page-$PAGES.tsv"); fi
: >"$OUT/results.txt"
for ((round = 1; round <= ROUNDS; round++)); do
  for run in "${RUNS[@]}"; do
    IFS=: read -r label mode file <<<"$run"
    wrk_run "$mode" "$file" "$WARMUP" >/dev/null
    line=$(wrk_run "$mode" "$file" "$DURATION")
    [ -n "$line" ] || die "wrk produced no result for $label (see $OUT/wrk-$mode.log)"
    echo "$label $line" >>"$OUT/results.txt"
    echo "# round $round $label: $line" >&2
  done
done
read -r LOADED_RSS PEAK_RSS < <("$BENCH" memory "$SERVER_PID" | awk '{print $2, $4}')
read -r CACHED_TENANTS CACHED_MIB < <(curl -sf -H "Authorization: Bearer $SWITCHYARD_ADMIN_TOKEN" "$SERVER/metrics" \
  | awk '$1 == "switchyard_routing_cache_tenants" {t = $2} $1 == "switchyard_routing_cache_bytes" {b = $2}
         END {printf "%d %.1f\n", t, b / 1048576}')

if [ "$FLOOR" = 1 ]; then
  PG_PORT=$PG_PORT CONNECTIONS=$CONNECTIONS POOL=$DATABASE_MAX_CONNECTIONS DURATION=$DURATION \
    PSQL_DB=switchyard "$ROOT/bench/pgbench.sh" | tee "$OUT/floor.txt"
fi

echo
printf '%-10s %10s %9s %9s %7s\n' scenario "req/s" "p50 ms" "p99 ms" errors
for run in "${RUNS[@]}"; do
  label=${run%%:*}
  rows=$(awk -v l="$label" '$1 == l' "$OUT/results.txt")
  printf '%-10s %10s %9s %9s %7s\n' "$label" \
    "$(awk '{print $3}' <<<"$rows" | median)" "$(awk '{print $4}' <<<"$rows" | median)" \
    "$(awk '{print $5}' <<<"$rows" | median)" "$(awk '{s += $6} END {print s}' <<<"$rows")"
done
echo "# medians of $ROUNDS rounds of ${DURATION}s, $CONNECTIONS connections; errors summed"
echo "# memory (RSS, MiB): idle $IDLE_RSS, after the load $LOADED_RSS, peak $PEAK_RSS; routing indexes cached: $CACHED_TENANTS tenants, $CACHED_MIB MiB"
if [ "$FLOOR" = 1 ]; then
  chat=$(awk '$1 == "chat" {print $3}' "$OUT/results.txt" | median)
  floor=$(awk '/^floor/ {print $2}' "$OUT/floor.txt")
  awk -v c="$chat" -v f="$floor" 'BEGIN { if (f > 0) printf "# chat %.1f req/s = %.0f%% of the database floor (%.1f turns/s)\n", c, 100 * c / f, f }'
fi
if [ "$FLOOD_CONNECTIONS" -gt 0 ]; then
  kill -INT "$FLOOD_PID" 2>/dev/null || true
  wait "$FLOOD_PID" 2>/dev/null || true
  flood_rate=$(awk '/^Requests\/sec/ {print $2}' "$OUT/flood.log")
  echo "# $FLOOD flood: ${flood_rate:-?} req/s over the whole run (wrk: $OUT/flood.log)"
  for code in 401 429; do
    echo "# login answers $code: $(curl -sf -H "Authorization: Bearer $SWITCHYARD_ADMIN_TOKEN" "$SERVER/metrics" \
      | awk -v c="$code" '$1 ~ /^switchyard_http_requests_total/ && $1 ~ /auth\/login/ && $1 ~ ("status=\"" c "\"") {s += $2} END {print s + 0}')"
  done
fi
echo "# logs in $OUT"
