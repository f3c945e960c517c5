#!/usr/bin/env bash
# The database floor of a chat turn (docs/benchmarks.md): pgbench running exactly the two
# statements Switchyard runs for one turn of an existing conversation with a token, as the
# application role (row-level security on), with the values of real seeded users:
#
#   SELECT * FROM switchyard_authed_chat_context(tenant, conversation, user, 10)
#                                      -- authentication, the conversation and its history
#   SELECT * FROM switchyard_write_turn(tenant, conversation, user, ...)
#                                      -- the turn and the conversation's update
#
# One pgbench transaction is one chat turn's database work, each statement in its own implicit
# transaction as the server runs them. Called by bench/run.sh with FLOOR=1 on its database
# after the load; alone, point it at a database Switchyard has served and seeded:
#
#   PG_PORT=5432 PSQL_DB=switchyard bench/pgbench.sh
#
# Environment: PG_HOST [127.0.0.1] PG_PORT [5432] PG_USER [postgres] PSQL_DB [switchyard]
#   CONNECTIONS [32] POOL [16] DURATION [10] USERS [100] (pgbench takes at most 128 scripts)
# Prints one line per concurrency, `clients N tps T`, then `floor T` (the higher of the two).
set -euo pipefail
PG_HOST=${PG_HOST:-127.0.0.1}; PG_PORT=${PG_PORT:-5432}; PG_USER=${PG_USER:-postgres}
PSQL_DB=${PSQL_DB:-switchyard}; CONNECTIONS=${CONNECTIONS:-32}; POOL=${POOL:-16}
DURATION=${DURATION:-10}; USERS=${USERS:-100}
PGBENCH=${PGBENCH_BIN:-$(command -v pgbench || ls /usr/lib/postgresql/*/bin/pgbench 2>/dev/null | sort -V | tail -n 1)}
[ -x "$PGBENCH" ] || { echo "error: pgbench not found (apt-get install -y postgresql)" >&2; exit 1; }
PSQL=(psql -X -q -tA -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d "$PSQL_DB" -v ON_ERROR_STOP=1)
DIR=$(mktemp -d "${TMPDIR:-/tmp}/switchyard-floor.XXXXXX")
trap 'rm -rf "$DIR"' EXIT

# One script per user (a member with a conversation), picked at random by pgbench; every
# turn writes the payload of the latest turn the server wrote, so the floor writes what
# Switchyard writes (its routing record with a space after each key's colon: pgbench would
# take `"key":value` for a variable `:value`).
read -r -d '' SCRIPTS_SQL <<SQL || true
WITH sample AS (
  SELECT * FROM conversation_messages ORDER BY created_at DESC LIMIT 1
), users AS (
  SELECT c.tenant_id, c.user_id, c.id,
         (SELECT a.id FROM agents a WHERE a.tenant_id = c.tenant_id ORDER BY a.id LIMIT 1) AS agent_id
  FROM (SELECT DISTINCT ON (tenant_id, user_id) tenant_id, user_id, id FROM conversations
        ORDER BY tenant_id, user_id, created_at) c
  JOIN users u ON u.tenant_id = c.tenant_id AND u.id = c.user_id AND u.role = 'member'
  LIMIT $USERS
)
SELECT format(E'SELECT * FROM switchyard_authed_chat_context(%1\$L::uuid, %3\$L::uuid, %2\$L::uuid, 10);\n'
              'SELECT * FROM switchyard_write_turn(%1\$L::uuid, %3\$L::uuid, %2\$L::uuid, clock_timestamp(), %5\$L, %4\$L::uuid, '
              '(lpad(to_hex((extract(epoch FROM clock_timestamp()) * 1000)::bigint), 12, %14\$L) || %15\$L || substr(md5(random()::text), 1, 19))::uuid, '
              '%6\$L, %7\$L, %8\$L, %9\$L::json, %10\$L, %11\$L, %12\$L, %13\$L);\n',
              u.tenant_id, u.user_id, u.id, u.agent_id, s.intent_category, s.user_message, s.agent_response,
              s.intent_confidence, replace(s.routing::text, '":', '": '), s.latency_ms, s.routing_method, s.routing_confidence,
              s.fallback_used, '0', '7')
FROM users u CROSS JOIN sample s
SQL
args=()
n=0
while IFS= read -r -d $'\x1e' script; do
  n=$((n + 1))
  printf '%s' "$script" >"$DIR/user$n.sql"
  args+=(-f "$DIR/user$n.sql@1")
done < <("${PSQL[@]}" -R $'\x1e' -c "$SCRIPTS_SQL"; printf '\x1e')
[ -s "$DIR/user$n.sql" ] || n=$((n - 1))
[ "$n" -gt 0 ] || { echo "error: no members with a conversation and a turn in $PSQL_DB: seed it first" >&2; exit 1; }
args=("${args[@]:0:$((2 * n))}")

best=0
for clients in $(printf '%s\n' "$CONNECTIONS" "$POOL" | sort -un); do
  tps=$(PGOPTIONS="-c role=switchyard_app" "$PGBENCH" -n -M prepared -c "$clients" -j 2 -T "$DURATION" \
          -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" "${args[@]}" "$PSQL_DB" 2>"$DIR/pgbench.err" \
        | awk '/^tps = / {print $3}') || true
  [ -n "$tps" ] || { cat "$DIR/pgbench.err" >&2; exit 1; }
  echo "clients $clients tps $tps ($n users)"
  best=$(awk -v a="$best" -v b="$tps" 'BEGIN {print (b > a) ? b : a}')
done
echo "floor $best"
