//! PostgreSQL only: every statement the server runs on a tenant table is held to one tenant
//! by `tenant_id = $1` — what Citus needs to route it to one shard (docs/scaling.md, "the
//! Citus plan").
//!
//! The statements are those that actually run: a workload ([`workload`]) calls every
//! method of the store on PostgreSQL while a tracing subscriber records each statement sqlx
//! sends (its `sqlx::query` events), and the bodies of the `switchyard_…` functions are read
//! from `pg_proc`. Only the store speaks SQL (no other crate of the server depends on
//! sqlx), so its methods are every statement the server, its retention task and the
//! command line run. Each statement and function body, and each of the store's named
//! `statements`, is read by [`sql::check`]. So that nothing escapes the workload, every
//! SQL string literal of the store's shared SQL and PostgreSQL backend must be found in a
//! statement that ran or in a function body.
//!
//! Exempt by the check's own rule: statements on no tenant table (the `tenants` reference
//! table, `server_secrets`, the catalogs, `BEGIN`/`COMMIT`). Migrations and the role set-up
//! run before the capture starts: they are the owner's DDL, not the server's statements.

mod sql;
mod workload;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use switchyard_store::{StoreConfig, statements as s, testing};
use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};

/// Statements on tenant tables that may span tenants, each with why (matched as a part of
/// the statement, white space collapsed); an entry that matches no failing statement fails
/// the test. None today: the operator's list of tenants reads only `tenants`, the retention
/// task loops over the tenants running each one's statements, an export reads and an import
/// writes one tenant, and erasing a tenant deletes its `tenants` row (the cascade into its
/// rows is the foreign keys').
const ALLOWED: &[(&str, &str)] = &[];

/// Named statements that PostgreSQL never runs as they are, with why: checked as
/// constants, but not looked for among the statements that ran.
const NOT_RUN_ON_POSTGRES: &[(&str, &str)] = &[(
    s::INSERT_TURN,
    "SQLite's turn insert: PostgreSQL inserts turns in switchyard_write_turn and \
     switchyard_write_new_turn",
)];

/// The store's named statements.
const NAMED: [(&str, &str); 21] = [
    ("FIND_PRINCIPAL", s::FIND_PRINCIPAL),
    ("LIST_USER_CONVERSATIONS", s::LIST_USER_CONVERSATIONS),
    ("LIST_ALL_CONVERSATIONS", s::LIST_ALL_CONVERSATIONS),
    ("VISIBLE_CONVERSATION", s::VISIBLE_CONVERSATION),
    ("CHAT_CONTEXT", s::CHAT_CONTEXT),
    ("CONVERSATION_WITH_TURNS", s::CONVERSATION_WITH_TURNS),
    ("ROUTABLE_AGENTS", s::ROUTABLE_AGENTS),
    (
        "UPDATE_CONVERSATION_FOR_TURN",
        s::UPDATE_CONVERSATION_FOR_TURN,
    ),
    ("WRITE_TURN", s::WRITE_TURN),
    ("COUNT_FOR_LIMITS", s::COUNT_FOR_LIMITS),
    ("FIND_THREAD", s::FIND_THREAD),
    ("SET_THREAD_KEY", s::SET_THREAD_KEY),
    ("INSERT_CONVERSATION", s::INSERT_CONVERSATION),
    ("WRITE_NEW_TURN", s::WRITE_NEW_TURN),
    ("ANALYTICS_TOTALS", s::ANALYTICS_TOTALS),
    ("ANALYTICS_BY_INTENT", s::ANALYTICS_BY_INTENT),
    ("ANALYTICS_BY_AGENT", s::ANALYTICS_BY_AGENT),
    ("ANALYTICS_FAILED_CALLS", s::ANALYTICS_FAILED_CALLS),
    ("RETENTION_DELETE_TURNS", s::RETENTION_DELETE_TURNS),
    ("INSERT_TURN", s::INSERT_TURN),
    ("RECENT_DECISIONS", s::RECENT_DECISIONS),
];

/// The store's sources whose SQL literals must all be seen running (relative to the crate):
/// the SQL both backends share and the PostgreSQL backend's own. (`postgres/migrate.rs`
/// and `postgres/roles.rs` are the migrations and the role set-up.)
const SOURCES: [&str; 9] = [
    "src/sql/mod.rs",
    "src/sql/statements.rs",
    "src/sql/tenants.rs",
    "src/sql/users.rs",
    "src/sql/agents.rs",
    "src/sql/conversations.rs",
    "src/sql/operations.rs",
    "src/postgres/mod.rs",
    "src/postgres/tx.rs",
];

#[tokio::test]
async fn every_statement_on_a_tenant_table_names_its_tenant() {
    let Some(url) = testing::postgres_database_url().await else {
        return;
    };
    let mut config = StoreConfig::new(&url);
    config.max_connections = 4;
    // Migrated before the capture: the owner's DDL is not the server's.
    switchyard_store::migrate(&config).await.unwrap();
    config.migrate = false;

    // The runtime of `#[tokio::test]` runs every task on this thread, so a subscriber
    // of this thread sees every statement of the workload, and no other test's.
    let ran = Arc::new(Mutex::new(Vec::new()));
    let capture = tracing::subscriber::set_default(Capture(ran.clone()));
    let opened = switchyard_store::connect(&config).await.unwrap();
    workload::run(&opened.store, &opened.operator).await;
    drop(opened);
    drop(capture);
    let ran: Vec<String> = ran.lock().unwrap().iter().map(|s| normalize(s)).collect();
    assert!(
        !ran.is_empty(),
        "no statement was recorded from sqlx's log events"
    );

    // The functions' bodies, each a list of statements run with the function's $1.
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    let functions: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT p.proname::text, p.prosrc, COALESCE(format_type(p.proargtypes[0], NULL), '') \
         FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
         WHERE n.nspname = current_schema() AND p.proname LIKE 'switchyard\\_%' ORDER BY 1",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert!(functions.len() >= 10, "functions: {functions:?}");

    // What to check: each distinct statement that ran, each function, each named statement
    // (by their text with white space collapsed: where they came from, and the text itself,
    // whose comments end at line ends).
    let mut checked: BTreeMap<String, (String, &str)> = BTreeMap::new();
    for statement in &ran {
        checked
            .entry(without_uuids(statement))
            .or_insert_with(|| ("ran".into(), statement));
    }
    let mut problems = Vec::new();
    for (name, body, first_argument) in &functions {
        checked.insert(normalize(body), (format!("function {name}"), body));
        if first_argument != "uuid" {
            problems.push(format!(
                "function {name}: its first argument (the tenant, its distribution argument) \
                 is `{first_argument}`, not a uuid"
            ));
        }
    }
    for (name, statement) in NAMED {
        checked
            .entry(normalize(statement))
            .and_modify(|(origin, _)| *origin = format!("{origin}, statements::{name}"))
            .or_insert_with(|| (format!("statements::{name}"), statement));
    }

    let mut allowed_seen = vec![false; ALLOWED.len()];
    let (mut on_tenant_tables, mut references) = (0, 0);
    let mut tables_seen = std::collections::BTreeSet::new();
    for (statement, (origin, text)) in &checked {
        let found = sql::check(text);
        if found.tenant_refs > 0 {
            on_tenant_tables += 1;
            references += found.tenant_refs;
            for table in sql::TENANT_TABLES {
                if sql::lex(text)
                    .unwrap_or_default()
                    .contains(&sql::Tok::Word(table.into()))
                {
                    tables_seen.insert(table);
                }
            }
        }
        if found.problems.is_empty() {
            continue;
        }
        if let Some(i) = ALLOWED
            .iter()
            .position(|(part, _)| statement.contains(part))
        {
            allowed_seen[i] = true;
            continue;
        }
        problems.push(format!(
            "{origin}: {statement}\n    {}",
            found.problems.join("\n    ")
        ));
    }
    for (seen, (part, _)) in allowed_seen.iter().zip(ALLOWED) {
        if !seen {
            problems.push(format!(
                "the allow-list entry {part:?} matches no statement that fails the check: remove it"
            ));
        }
    }

    // Every SQL literal of the sources ran, or is in a function body.
    let bodies: Vec<String> = functions
        .iter()
        .map(|(_, body, _)| normalize(body))
        .collect();
    let haystack: Vec<&String> = ran.iter().chain(&bodies).collect();
    let exempt: Vec<String> = NOT_RUN_ON_POSTGRES
        .iter()
        .map(|(sql, _)| normalize(sql))
        .collect();
    let mut literals = 0;
    for file in SOURCES {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
        let source = std::fs::read_to_string(&path).unwrap();
        for literal in string_literals(&source) {
            if ![
                "SELECT ",
                "INSERT INTO ",
                "UPDATE ",
                "DELETE FROM ",
                " FROM ",
                " WHERE ",
            ]
            .iter()
            .any(|k| literal.contains(k))
            {
                continue;
            }
            // sqlx sends a transaction's start (`BEGIN; SELECT set_config(…)`, no table)
            // without a log event.
            if literal.trim_start().starts_with("BEGIN") {
                continue;
            }
            literals += 1;
            let fragments: Vec<String> = placeholders_out(&literal)
                .iter()
                .map(|f| normalize(f))
                .filter(|f| !f.is_empty())
                .collect();
            let seen = |text: &str| fragments.iter().all(|f| text.contains(f.as_str()));
            if !haystack.iter().any(|s| seen(s)) && !exempt.iter().any(|s| seen(s)) {
                problems.push(format!(
                    "{file}: this SQL never ran in the workload (nor is it in a function body); \
                     call what runs it in single_shard/workload.rs: {:?}",
                    normalize(&literal)
                ));
            }
        }
    }

    println!(
        "{} statements checked ({} ran distinct, {} function bodies, {} named); {} on tenant \
         tables with {} references; {} SQL literals of the sources seen running",
        checked.len(),
        ran.iter()
            .map(|s| without_uuids(s))
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        functions.len(),
        NAMED.len(),
        on_tenant_tables,
        references,
        literals
    );
    assert!(
        problems.is_empty(),
        "the single-shard check failed (docs/scaling.md, the Citus plan):\n\n{}",
        problems.join("\n\n")
    );
    assert_eq!(
        tables_seen.len(),
        sql::TENANT_TABLES.len(),
        "the workload reached only {tables_seen:?}"
    );
}

/// Records the statements sqlx runs (its `sqlx::query` events).
struct Capture(Arc<Mutex<Vec<String>>>);

impl Subscriber for Capture {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        Interest::sometimes()
    }

    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.target() == "sqlx::query"
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(LevelFilter::TRACE)
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        // sqlx logs the first four words as `summary`, and the whole statement as
        // `db.statement` unless it is no longer than that.
        let statement = if fields.statement.trim().is_empty() {
            fields.summary
        } else {
            fields.statement
        };
        self.0.lock().unwrap().push(statement);
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

#[derive(Default)]
struct Fields {
    summary: String,
    statement: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "summary" => self.summary = value.to_string(),
            "db.statement" => self.statement = value.to_string(),
            _ => {}
        }
    }

    fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
}

/// White space collapsed.
fn normalize(sql: &str) -> String {
    sql.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Quoted UUIDs (the tenant a transaction names in `set_config`) replaced by `'…'`.
fn without_uuids(sql: &str) -> String {
    let mut out = String::new();
    let mut rest = sql;
    while let Some(i) = rest.find('\'') {
        out.push_str(&rest[..=i]);
        rest = &rest[i + 1..];
        if rest
            .get(..37)
            .is_some_and(|q| q.ends_with('\'') && uuid::Uuid::parse_str(&q[..36]).is_ok())
        {
            out.push_str("…'");
            rest = &rest[37..];
        }
    }
    out.push_str(rest);
    out
}

/// The parts of a `format!` string around its `{…}` placeholders.
fn placeholders_out(literal: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut inside = false;
    for ch in literal.chars() {
        match (ch, inside) {
            ('{', false) => inside = true,
            ('}', true) => {
                inside = false;
                parts.push(String::new());
            }
            (_, true) => {}
            (c, false) => parts.last_mut().unwrap().push(c),
        }
    }
    parts
}

/// The string literals of Rust source, escapes resolved (a line continuation drops the
/// line break and the next line's leading white space, as in Rust).
fn string_literals(source: &str) -> Vec<String> {
    let c: Vec<char> = source.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < c.len() {
        let next = c.get(i + 1).copied();
        match c[i] {
            '/' if next == Some('/') => {
                while i < c.len() && c[i] != '\n' {
                    i += 1;
                }
            }
            '/' if next == Some('*') => {
                i += 2;
                while i < c.len() && !(c[i] == '*' && c.get(i + 1) == Some(&'/')) {
                    i += 1;
                }
                i += 2;
            }
            // A character literal ('x', '\n', '\'') or a lifetime.
            '\'' if next == Some('\\') => {
                i += 3;
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
            }
            '\'' if c.get(i + 2) == Some(&'\'') => i += 3,
            'r' if (i == 0 || !(c[i - 1].is_alphanumeric() || c[i - 1] == '_'))
                && matches!(next, Some('"' | '#')) =>
            {
                let hashes = c[i + 1..].iter().take_while(|&&h| h == '#').count();
                let open = i + 1 + hashes;
                if c.get(open) != Some(&'"') {
                    i += 1;
                    continue;
                }
                let close: String = std::iter::once('"')
                    .chain(std::iter::repeat_n('#', hashes))
                    .collect();
                let rest: String = c[open + 1..].iter().collect();
                let end = rest.find(&close).unwrap_or(rest.len());
                out.push(rest[..end].to_string());
                i = open + 1 + rest[..end].chars().count() + close.chars().count();
            }
            '"' => {
                let mut s = String::new();
                i += 1;
                while i < c.len() && c[i] != '"' {
                    if c[i] == '\\' {
                        i += 1;
                        match c.get(i) {
                            Some('n') => s.push('\n'),
                            Some('t') => s.push('\t'),
                            Some('\n') => {
                                while c.get(i + 1).is_some_and(|w| w.is_whitespace()) {
                                    i += 1;
                                }
                            }
                            Some(&other) => s.push(other),
                            None => {}
                        }
                    } else {
                        s.push(c[i]);
                    }
                    i += 1;
                }
                i += 1;
                out.push(s);
            }
            _ => i += 1,
        }
    }
    out
}

#[test]
fn string_literals_are_read_as_rust_reads_them() {
    let source = "let a = 'x'; // \"not this\"\n fn f<'a>() {} \
                  concat!(\"SELECT a, \\\n      b FROM \\\"t\\\"\", r#\"raw \"x\"\"#);";
    assert_eq!(
        string_literals(source),
        vec![
            "SELECT a, b FROM \"t\"".to_string(),
            "raw \"x\"".to_string()
        ]
    );
}
