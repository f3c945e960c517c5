//! Bulk data for the scale measurements: many tenants, each with users, echo agents,
//! conversations and turns, written with COPY as the owner. The secondary indexes of the
//! turns table are dropped during the load and built again afterwards (faster than
//! maintaining them row by row); everything else is exactly what the API would have written.

use std::fmt::Write as _;
use std::time::Instant;

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};
use uuid::Uuid;

use crate::TOPICS;

/// The settings of every generated tenant: no rate limit, and conversation limits above
/// anything a measurement reaches.
const SETTINGS: &str = r#"{"rate_limit_per_second": 0, "max_conversations_per_user": 100000000, "max_conversations_per_tenant": 100000000}"#;

fn err(e: sqlx::Error) -> String {
    e.to_string()
}

/// A v7-like id from a running number: ordered, unique, reproducible.
fn id(kind: u8, n: u64) -> Uuid {
    let mut bytes = [0u8; 16];
    bytes[0..8].copy_from_slice(&(0x0190_0000_0000_0000u64 | n).to_be_bytes());
    bytes[8] = 0x80 | kind;
    bytes[9..16].copy_from_slice(&n.to_be_bytes()[1..8]);
    bytes[6] = (bytes[6] & 0x0f) | 0x70;
    Uuid::from_bytes(bytes)
}

async fn copy(conn: &mut PgConnection, statement: &'static str, data: &str) -> Result<(), String> {
    let mut copy = conn.copy_in_raw(statement).await.map_err(err)?;
    copy.send(data.as_bytes()).await.map_err(err)?;
    copy.finish().await.map_err(err)?;
    Ok(())
}

/// Fills the database; prints what it wrote and how long it took.
pub async fn fill(
    url: &str,
    tenants: usize,
    users: usize,
    turns: usize,
    per_conversation: usize,
) -> Result<(), String> {
    let started = Instant::now();
    let mut conn = url
        .parse::<PgConnectOptions>()
        .map_err(err)?
        .connect()
        .await
        .map_err(err)?;
    let now = chrono_micros();
    let conversations = turns.div_ceil(per_conversation.max(1));
    let per_tenant = conversations.div_ceil(tenants.max(1));

    // Tenants, users and agents.
    let (mut t_rows, mut u_rows, mut a_rows) = (String::new(), String::new(), String::new());
    for t in 0..tenants as u64 {
        let tenant = id(1, t);
        let _ = writeln!(
            t_rows,
            "{tenant}\tscale-{t}\tScale {t}\tactive\t{SETTINGS}\t1\t{}",
            ts(now)
        );
        for u in 0..users as u64 {
            let role = if u == 0 { "admin" } else { "member" };
            let _ = writeln!(
                u_rows,
                "{tenant}\t{}\tuser{u}@scale.test\t\\N\t{role}\t\\N\tactive\t{}",
                id(2, t * 1000 + u),
                ts(now)
            );
        }
        for (k, (name, words)) in TOPICS.iter().take(3).enumerate() {
            let keywords = serde_json::to_string(words).unwrap_or_default();
            let _ = writeln!(
                a_rows,
                "{tenant}\t{}\t{name}\t{name} questions\techo\t{{}}\t[\"{name}\"]\t{keywords}\t[\"a question about my {}\"]\tt\t0\t{}\t{}\t{}",
                id(3, t * 10 + k as u64),
                words[0],
                if k == 2 { "t" } else { "f" },
                ts(now),
                ts(now)
            );
        }
    }
    copy(
        &mut conn,
        "COPY tenants (id, slug, name, status, settings, agents_version, created_at) FROM STDIN",
        &t_rows,
    )
    .await?;
    copy(&mut conn, "COPY users (tenant_id, id, email, display_name, role, password_hash, status, created_at) FROM STDIN", &u_rows).await?;
    copy(
        &mut conn,
        "COPY agents (tenant_id, id, name, description, kind, config, intents, keywords, examples, enabled, priority, is_fallback, created_at, updated_at) FROM STDIN",
        &a_rows,
    )
    .await?;
    eprintln!(
        "{tenants} tenants, {} users, {} agents ({:.1} s)",
        tenants * users,
        tenants * 3,
        started.elapsed().as_secs_f64()
    );

    // The turns table's secondary indexes, dropped for the load and built again after.
    let indexes: Vec<(String, String)> = sqlx::query_as(
        "SELECT indexname::text, indexdef FROM pg_indexes WHERE tablename = 'conversation_messages' AND indexname <> 'conversation_messages_pkey'",
    )
    .fetch_all(&mut conn)
    .await
    .map_err(err)?;
    for (name, _) in &indexes {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP INDEX {name}")))
            .execute(&mut conn)
            .await
            .map_err(err)?;
    }

    // Conversations and turns, tenant by tenant, in batches.
    let day = 86_400_000_000i64;
    let mut written = 0usize;
    let mut batch_c = String::new();
    let mut batch_t = String::new();
    let mut n_conversation = 0u64;
    let mut n_turn = 0u64;
    'outer: for t in 0..tenants as u64 {
        let tenant = id(1, t);
        for c in 0..per_tenant as u64 {
            if written >= turns {
                break 'outer;
            }
            // The members' conversations (user 0 is the admin, who pages the whole list).
            let owner = if users > 1 {
                1 + c % (users as u64 - 1)
            } else {
                0
            };
            let user = id(2, t * 1000 + owner);
            let conversation = id(4, n_conversation);
            n_conversation += 1;
            let start = now - ((n_conversation * 7919) % 90) as i64 * day;
            let count = per_conversation.min(turns - written);
            let last = start + count as i64 * 60_000_000;
            let agent = id(3, t * 10 + c % 3);
            let _ = writeln!(
                batch_c,
                "{tenant}\t{conversation}\t{user}\tConversation {c}\tbilling\t{agent}\t{count}\t{}\t{}",
                ts(start),
                ts(last)
            );
            for k in 0..count as i64 {
                let _ = writeln!(
                    batch_t,
                    "{tenant}\t{}\t{conversation}\tmessage {k} about my invoice\tanswer {k}\tbilling\t0.9\t{agent}\t{{\"method\": \"lexical\", \"confidence\": 0.9}}\t3.5\t{}\tlexical\t0.9\tf",
                    id(5, n_turn),
                    ts(start + k * 60_000_000)
                );
                n_turn += 1;
            }
            written += count;
            if batch_t.len() > 32 * 1024 * 1024 {
                flush(&mut conn, &mut batch_c, &mut batch_t).await?;
                eprint!(
                    "\r{written} turns ({:.0} s)",
                    started.elapsed().as_secs_f64()
                );
            }
        }
    }
    flush(&mut conn, &mut batch_c, &mut batch_t).await?;
    eprintln!(
        "\r{written} turns in {n_conversation} conversations ({:.1} s)",
        started.elapsed().as_secs_f64()
    );
    for (name, definition) in &indexes {
        let t = Instant::now();
        sqlx::raw_sql(sqlx::AssertSqlSafe(definition.clone()))
            .execute(&mut conn)
            .await
            .map_err(err)?;
        eprintln!("index {name} rebuilt ({:.1} s)", t.elapsed().as_secs_f64());
    }
    sqlx::raw_sql("ANALYZE")
        .execute(&mut conn)
        .await
        .map_err(err)?;
    conn.close().await.map_err(err)?;
    eprintln!("done in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

async fn flush(
    conn: &mut PgConnection,
    conversations: &mut String,
    turns: &mut String,
) -> Result<(), String> {
    if !conversations.is_empty() {
        copy(
            conn,
            "COPY conversations (tenant_id, id, user_id, title, primary_intent, last_agent_id, message_count, created_at, last_activity) FROM STDIN",
            conversations,
        )
        .await?;
    }
    if !turns.is_empty() {
        copy(
            conn,
            "COPY conversation_messages (tenant_id, id, conversation_id, user_message, agent_response, intent_category, \
             intent_confidence, selected_agent_id, routing, latency_ms, created_at, routing_method, routing_confidence, fallback_used) FROM STDIN",
            turns,
        )
        .await?;
    }
    conversations.clear();
    turns.clear();
    Ok(())
}

fn chrono_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// A timestamp in COPY's text format, from microseconds since the epoch (UTC).
fn ts(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .unwrap_or_default()
        .format("%Y-%m-%d %H:%M:%S%.6f+00")
        .to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps_are_iso() {
        assert_eq!(super::ts(0), "1970-01-01 00:00:00.000000+00");
        assert_eq!(
            super::ts(1_795_000_000_123_456),
            "2026-11-18 11:06:40.123456+00"
        );
    }
}
