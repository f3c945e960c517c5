//! The migrations embedded in the binary, and what both backends' runners share.
//!
//! Each backend keeps its applied versions in `switchyard_migrations` with a checksum of
//! the script, applies what is pending in order, each script in its own transaction with
//! its record, and refuses to run when an applied script has changed since: a database
//! must never silently drift from the code that reads it.

use sha2::{Digest, Sha256};

use crate::{StoreError, StoreResult};

/// One migration script.
pub(crate) struct Migration {
    /// Its version; scripts apply in ascending order.
    pub version: i64,
    /// A short name.
    pub name: &'static str,
    /// The SQL.
    pub sql: &'static str,
}

impl Migration {
    /// The hex SHA-256 of the script.
    pub fn checksum(&self) -> String {
        hex::encode(Sha256::digest(self.sql.as_bytes()))
    }
}

/// PostgreSQL's migrations.
pub(crate) const POSTGRES: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        // In two parts so that the legacy upgrade can run the second: the first is what the
        // upgrade makes of the legacy tables in place.
        sql: concat!(
            include_str!("../migrations/postgres/0001_init_a_tables.sql"),
            include_str!("../migrations/postgres/0001_init_b_rest.sql")
        ),
    },
    Migration {
        version: 2,
        name: "analytics",
        sql: include_str!("../migrations/postgres/0002_analytics.sql"),
    },
    Migration {
        version: 3,
        name: "hot_path_functions",
        sql: include_str!("../migrations/postgres/0003_hot_path_functions.sql"),
    },
    Migration {
        version: 4,
        name: "new_conversation_function",
        sql: include_str!("../migrations/postgres/0004_new_conversation_function.sql"),
    },
    Migration {
        version: 5,
        name: "routable_agents_function",
        sql: include_str!("../migrations/postgres/0005_routable_agents_function.sql"),
    },
    Migration {
        version: 6,
        name: "routing_as_json",
        sql: include_str!("../migrations/postgres/0006_routing_as_json.sql"),
    },
    Migration {
        version: 7,
        name: "authenticated_reads",
        sql: include_str!("../migrations/postgres/0007_authenticated_reads.sql"),
    },
    Migration {
        version: 8,
        name: "token_revocation",
        sql: include_str!("../migrations/postgres/0008_token_revocation.sql"),
    },
    Migration {
        version: 9,
        name: "openai_threads",
        sql: include_str!("../migrations/postgres/0009_openai_threads.sql"),
    },
];

/// PostgreSQL: turns the earlier single-tenant layout's tables into the first part of
/// migration 1, in place (`:default_tenant` stands for the default tenant's slug).
pub(crate) const POSTGRES_LEGACY_UPGRADE: &str =
    include_str!("../migrations/postgres/legacy_upgrade.sql");

/// PostgreSQL: the part of migration 1 the legacy layout did not have.
pub(crate) const POSTGRES_V1_REST: &str =
    include_str!("../migrations/postgres/0001_init_b_rest.sql");

/// SQLite's migrations.
pub(crate) const SQLITE: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sql: include_str!("../migrations/sqlite/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "analytics",
        sql: include_str!("../migrations/sqlite/0002_analytics.sql"),
    },
    Migration {
        version: 3,
        name: "token_revocation",
        sql: include_str!("../migrations/sqlite/0003_token_revocation.sql"),
    },
    Migration {
        version: 4,
        name: "openai_threads",
        sql: include_str!("../migrations/sqlite/0004_openai_threads.sql"),
    },
];

/// The migrations of `all` not yet in `applied` (version, checksum), after checking that
/// every applied one is known and unchanged.
pub(crate) fn pending<'a>(
    all: &'a [Migration],
    applied: &[(i64, String)],
) -> StoreResult<Vec<&'a Migration>> {
    for (version, checksum) in applied {
        match all.iter().find(|m| m.version == *version) {
            None => {
                return Err(StoreError::Config(format!(
                    "the database has migration {version}, which this build does not know: it was \
                     migrated by a newer Switchyard"
                )));
            }
            Some(m) if m.checksum() != *checksum => {
                return Err(StoreError::Config(format!(
                    "migration {version} ({}) differs from the one applied to the database",
                    m.name
                )));
            }
            Some(_) => {}
        }
    }
    Ok(all
        .iter()
        .filter(|m| !applied.iter().any(|(v, _)| *v == m.version))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_ascend_without_gaps() {
        for set in [POSTGRES, SQLITE] {
            for (i, m) in set.iter().enumerate() {
                assert_eq!(m.version, i as i64 + 1, "{}", m.name);
            }
        }
    }

    /// The body of the last definition of the function marked `-- NAME` in the migrations:
    /// the text between `start` and `end` after the mark.
    fn last_definition(name: &str, start: &str, end: &str) -> String {
        let mark = format!("-- {name}\n");
        let (version, block) = POSTGRES
            .iter()
            .rev()
            .find_map(|m| m.sql.split(&mark).nth(1).map(|block| (m.version, block)))
            .unwrap_or_else(|| panic!("no function for {name}"));
        let body = block
            .split_once(start)
            .unwrap_or_else(|| panic!("no statement after {name} in migration {version}"))
            .1;
        body.split(end).next().unwrap_or_default().to_string()
    }

    #[test]
    fn the_hot_path_functions_run_exactly_the_store_statements() {
        use crate::statements as st;
        for (name, statement) in [
            ("FIND_PRINCIPAL", st::FIND_PRINCIPAL),
            ("LIST_USER_CONVERSATIONS", st::LIST_USER_CONVERSATIONS),
            ("LIST_ALL_CONVERSATIONS", st::LIST_ALL_CONVERSATIONS),
            ("CONVERSATION_WITH_TURNS", st::CONVERSATION_WITH_TURNS),
            ("CHAT_CONTEXT", st::CHAT_CONTEXT),
            ("WRITE_TURN", st::WRITE_TURN),
        ] {
            assert_eq!(
                last_definition(name, "RETURN QUERY ", ";\nEND"),
                statement,
                "the function for {name} no longer runs the store's statement: add a migration that replaces it"
            );
        }
    }

    #[test]
    fn the_routing_record_functions_are_made_again_for_json() {
        // Migration 6 made the routing column `json`: every function that takes or returns
        // a record is defined again there (their bodies are checked above).
        let sql = POSTGRES[5].sql;
        for name in ["CONVERSATION_WITH_TURNS", "WRITE_TURN", "WRITE_NEW_TURN"] {
            let block = sql
                .split(&format!("-- {name}\n"))
                .nth(1)
                .unwrap_or_else(|| panic!("migration 6 does not define {name} again"));
            let signature = block.split("$fn$").next().unwrap_or_default();
            assert!(signature.contains(" json"), "{name}: {signature}");
            assert!(!signature.contains("jsonb"), "{name}: {signature}");
        }
    }

    #[test]
    fn the_authenticated_reads_run_exactly_the_store_statements() {
        use crate::statements as st;
        for (function, name, statement) in [
            (
                "AUTHED_CONVERSATION_WITH_TURNS",
                "CONVERSATION_WITH_TURNS",
                st::CONVERSATION_WITH_TURNS,
            ),
            (
                "AUTHED_LIST_USER_CONVERSATIONS",
                "LIST_USER_CONVERSATIONS",
                st::LIST_USER_CONVERSATIONS,
            ),
            ("AUTHED_CHAT_CONTEXT", "CHAT_CONTEXT", st::CHAT_CONTEXT),
        ] {
            let mark = format!("-- {function}:");
            let block = POSTGRES
                .iter()
                .rev()
                .find_map(|m| m.sql.split(&mark).nth(1))
                .and_then(|b| b.split("$fn$;").next())
                .unwrap_or_else(|| panic!("no function {function}"));
            let body = block
                .split(&format!("-- statement {name}\n"))
                .nth(1)
                .and_then(|b| b.split("\n    ) q;\nEND").next())
                .unwrap_or_else(|| panic!("{function} does not run {name}"));
            assert_eq!(
                body, statement,
                "{function} no longer runs the store's {name}: add a migration that replaces it"
            );
        }
    }

    #[test]
    fn the_routable_agents_function_runs_exactly_the_store_statement() {
        let body = POSTGRES[4]
            .sql
            .split("-- ROUTABLE_AGENTS\n")
            .nth(1)
            .and_then(|b| b.split("RETURN QUERY ").nth(1))
            .and_then(|b| b.split(";\nEND").next())
            .unwrap_or_default();
        assert_eq!(body, crate::statements::ROUTABLE_AGENTS);
    }

    #[test]
    fn the_new_conversation_function_runs_exactly_the_store_statements() {
        use crate::statements as st;
        assert_eq!(
            last_definition("COUNT_FOR_LIMITS", "    RETURN QUERY ", ";\n"),
            st::COUNT_FOR_LIMITS,
            "the migrations no longer run the store's COUNT_FOR_LIMITS: add a migration that replaces it"
        );
        // The statements inside the last definition of switchyard_write_new_turn.
        let function = last_definition("WRITE_NEW_TURN", "", "\n$fn$;");
        for (name, statement, start, end) in [
            (
                "INSERT_CONVERSATION",
                st::INSERT_CONVERSATION,
                "    ",
                ";\n",
            ),
            ("WRITE_TURN", st::WRITE_TURN, "    RETURN QUERY ", ";\nEND"),
        ] {
            let body = function
                .split(&format!("-- {name}\n"))
                .nth(1)
                .and_then(|block| block.split_once(start))
                .map(|(_, rest)| rest.split(end).next().unwrap_or_default())
                .unwrap_or_else(|| panic!("no {name} in switchyard_write_new_turn"));
            assert_eq!(
                body, statement,
                "switchyard_write_new_turn no longer runs the store's {name}: add a migration that replaces it"
            );
        }
        assert!(st::WRITE_NEW_TURN.contains("switchyard_write_new_turn("));
    }

    #[test]
    fn a_changed_or_unknown_applied_migration_is_refused() {
        let ok: Vec<(i64, String)> = POSTGRES.iter().map(|m| (m.version, m.checksum())).collect();
        assert!(pending(POSTGRES, &ok).unwrap().is_empty());
        assert_eq!(pending(POSTGRES, &[]).unwrap().len(), POSTGRES.len());
        assert!(pending(POSTGRES, &[(1, "0".repeat(64))]).is_err());
        assert!(pending(POSTGRES, &[(99, String::new())]).is_err());
    }
}
