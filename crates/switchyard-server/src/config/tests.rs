//! The settings' tests: defaults, files and environment, validation, and the settings
//! table of docs/operations.md held to the fields.

use super::*;

#[test]
fn a_database_url_is_shown_without_its_password() {
    for (url, shown) in [
        (
            "postgres://app:hunter2@db:5432/sy",
            "postgres://app:***@db:5432/sy",
        ),
        ("postgres://app:p@ss/w@db/sy", "postgres://app:***@db/sy"),
        ("postgres://app@db/sy", "postgres://app@db/sy"),
        (
            "postgres://db/sy?user=app&password=hunter2&sslmode=require",
            "postgres://db/sy?user=app&password=***&sslmode=require",
        ),
        ("sqlite://switchyard.db", "sqlite://switchyard.db"),
    ] {
        assert_eq!(redacted_url(url), shown);
        assert!(!redacted_url(url).contains("hunter2"));
    }
}

/// Every setting is in the settings table of docs/operations.md, under the name the
/// environment gives it.
#[test]
fn every_setting_is_documented() {
    let doc = include_str!("../../../../docs/operations.md");
    let table = doc
        .split("## Settings")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .unwrap_or_default();
    let fields = match serde_json::to_value(Config::default()) {
        Ok(serde_json::Value::Object(map)) => map.keys().cloned().collect::<Vec<_>>(),
        _ => Vec::new(),
    };
    assert!(fields.len() > 40, "{fields:?}");
    let missing: Vec<String> = fields
        .iter()
        .map(|field| {
            LEGACY_VARIABLES
                .iter()
                .find(|(_, f)| f == field)
                .map_or_else(
                    || format!("SWITCHYARD_{}", field.to_uppercase()),
                    |(var, _)| (*var).to_owned(),
                )
        })
        .filter(|name| !table.contains(&format!("`{name}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "not in docs/operations.md's settings: {missing:?}"
    );
}

#[test]
fn defaults_are_valid_and_match_the_design() {
    let c = Config::default().validated().unwrap();
    assert_eq!(c.database_url, "sqlite://switchyard.db");
    assert_eq!(c.bind, "127.0.0.1:8080");
    assert_eq!(c.max_conversations_per_user, 100);
    assert_eq!(c.message_retention_days, 365);
    assert!(!c.enable_debug_info);
    assert!(c.enable_tenant_isolation);
    assert_eq!(c.default_tenant_slug, "default");
    assert_eq!(c.max_conversations_per_tenant, 10_000);
    assert_eq!(c.token_ttl_seconds, 3600);
    assert_eq!(c.database_max_connections, 16);
    assert_eq!(c.shutdown_grace_seconds, 25);
    // Fail fast when the database is gone: a few seconds to get a connection, not 30.
    assert_eq!(c.database_acquire_timeout_ms, 3000);
    assert_eq!(c.header_read_timeout_ms, 10_000);
    assert_eq!(c.max_body_bytes, 1024 * 1024);
    assert_eq!(c.routing_cache_mib, 128);
}

#[test]
#[expect(
    clippy::result_large_err,
    reason = "figment's Jail decides the closure's error type"
)]
fn the_environment_wins_over_the_file_and_legacy_names_work() {
    figment::Jail::expect_with(|jail| {
        jail.create_file(
            "s.toml",
            "bind = \"127.0.0.1:9000\"\nmax_conversations_per_user = 5\n",
        )?;
        jail.set_env("SWITCHYARD_BIND", "127.0.0.1:0");
        jail.set_env("ORCHESTRATOR_MAX_CONVERSATIONS_PER_USER", "7");
        jail.set_env("ORCHESTRATOR_ENABLE_DEBUG_INFO", "true");
        jail.set_env("ENABLE_TENANT_ISOLATION", "false");
        jail.set_env("DEFAULT_TENANT_SLUG", "acme");
        jail.set_env("SWITCHYARD_ADMIN_TOKEN", "an-operator-token-long-enough");
        // Unrelated variables with the prefix are ignored.
        jail.set_env("SWITCHYARD_TEST_DATABASE_URL", "whatever");
        let c = Config::load(Some(Path::new("s.toml"))).map_err(|e| e.0)?;
        assert_eq!(c.bind, "127.0.0.1:0");
        assert_eq!(c.max_conversations_per_user, 7);
        assert!(c.enable_debug_info);
        assert!(!c.enable_tenant_isolation);
        assert_eq!(c.default_tenant_slug, "acme");
        assert_eq!(format!("{:?}", c.admin_token), "Some(\"***\")");
        Ok(())
    });
}

#[test]
fn private_addresses_are_refused_by_default_when_tenants_register_agents() {
    let multi = Config::default();
    assert!(multi.enable_tenant_isolation && multi.denies_private());
    let single = Config {
        enable_tenant_isolation: false,
        ..Config::default()
    };
    assert!(!single.denies_private(), "one trusted tenant: allowed");
    let allowed = Config {
        agent_deny_private: Some(false),
        ..Config::default()
    };
    assert!(!allowed.denies_private(), "the operator's choice wins");
    let denied = Config {
        enable_tenant_isolation: false,
        agent_deny_private: Some(true),
        ..Config::default()
    };
    assert!(denied.denies_private());
}

#[test]
#[expect(
    clippy::result_large_err,
    reason = "figment's Jail decides the closure's error type"
)]
fn a_bad_setting_is_named() {
    figment::Jail::expect_with(|jail| {
        jail.set_env("SWITCHYARD_DATABASE_MAX_CONNECTIONS", "many");
        let err = Config::load(None).unwrap_err().0;
        assert!(
            err.contains("SWITCHYARD_DATABASE_MAX_CONNECTIONS=\"many\" is not valid"),
            "{err}"
        );
        assert!(err.contains("expected"), "{err}");
        assert!(!err.contains('\n'));
        jail.set_env("SWITCHYARD_DATABASE_MAX_CONNECTIONS", "4");
        // An alias is named as the user wrote it, never by the internal key.
        jail.set_env("ORCHESTRATOR_MAX_CONVERSATIONS_PER_USER", "abc");
        let err = Config::load(None).unwrap_err().0;
        assert!(
            err.starts_with("ORCHESTRATOR_MAX_CONVERSATIONS_PER_USER=\"abc\" is not valid: "),
            "{err}"
        );
        assert!(!err.contains("\"MAX_CONVERSATIONS_PER_USER\""), "{err}");
        jail.set_env("ORCHESTRATOR_MAX_CONVERSATIONS_PER_USER", "7");
        jail.set_env("ENABLE_TENANT_ISOLATION", "maybe");
        let err = Config::load(None).unwrap_err().0;
        assert!(
            err.starts_with("ENABLE_TENANT_ISOLATION=\"maybe\""),
            "{err}"
        );
        jail.set_env("ENABLE_TENANT_ISOLATION", "true");
        jail.set_env("SWITCHYARD_DATABASE_MAX_CONNECTIONS", "4");
        jail.set_env("SWITCHYARD_BIND", "localhost");
        let err = Config::load(None).unwrap_err().0;
        assert!(err.contains("`bind`"), "{err}");
        jail.set_env("SWITCHYARD_BIND", "127.0.0.1:1");
        jail.set_env("SWITCHYARD_JWT_SECRET", "short");
        let err = Config::load(None).unwrap_err().0;
        assert!(err.contains("jwt_secret"), "{err}");
        jail.set_env("SWITCHYARD_JWT_SECRET", "x".repeat(32));
        jail.set_env(
            "SWITCHYARD_AGENT_KEY_ENVS",
            "OPENAI_KEY, SWITCHYARD_ADMIN_TOKEN",
        );
        let err = Config::load(None).unwrap_err().0;
        assert!(
            err.contains("agent_key_envs") && err.contains("SWITCHYARD_ADMIN_TOKEN"),
            "{err}"
        );
        jail.set_env("SWITCHYARD_AGENT_KEY_ENVS", "OPENAI_KEY, ACME_KEY");
        let c = Config::load(None).map_err(|e| e.0)?;
        assert_eq!(
            c.agent_key_envs().collect::<Vec<_>>(),
            ["OPENAI_KEY", "ACME_KEY"]
        );
        jail.create_file("typo.toml", "bnid = \"x\"\n")?;
        jail.set_env("SWITCHYARD_JWT_SECRET", "x".repeat(32));
        let err = Config::load(Some(Path::new("typo.toml"))).unwrap_err().0;
        assert!(err.contains("bnid"), "{err}");
        Ok(())
    });
}
