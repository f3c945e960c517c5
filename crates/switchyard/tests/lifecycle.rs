//! A tenant's data leaves one installation and arrives in another: export from SQLite,
//! import into PostgreSQL, and the API shows the same conversations and turns there.

#![expect(clippy::unwrap_used, reason = "tests fail by panicking")]

use std::process::{Command, Output};

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_switchyard");

#[path = "support/serve.rs"]
mod serve;
#[path = "support/tenant.rs"]
mod tenant;

use serve::Server;
const OPERATOR: &str = "operator-token-for-lifecycle-tests";

fn run(db: &str, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_clear()
        .env("SWITCHYARD_DATABASE_URL", db)
        .env(
            "SWITCHYARD_JWT_SECRET",
            "a-jwt-secret-shared-by-both-installs-0123",
        )
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

/// The server on `db`, with a JWT secret both installations share.
fn start(db: &str) -> Server {
    Server::start(&[
        ("SWITCHYARD_DATABASE_URL", db),
        ("SWITCHYARD_ADMIN_TOKEN", OPERATOR),
        (
            "SWITCHYARD_JWT_SECRET",
            "a-jwt-secret-shared-by-both-installs-0123",
        ),
    ])
}

fn http() -> reqwest::Client {
    switchyard_agents::install_tls_provider();
    reqwest::Client::new()
}

/// Every conversation of the tenant with all its turns, as the API shows them to an admin.
async fn everything(client: &reqwest::Client, url: &str, token: &str) -> Vec<(Value, Vec<Value>)> {
    let list: Value = client
        .get(format!("{url}/v1/conversations?all=true&limit=100"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(list["items"].is_array(), "{url}: {list}");
    let mut out = Vec::new();
    for c in list["items"].as_array().unwrap() {
        let id = c["id"].as_str().unwrap();
        let detail: Value = client
            .get(format!("{url}/v1/conversations/{id}?limit=100"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let mut conversation = detail.clone();
        let turns = conversation
            .as_object_mut()
            .unwrap()
            .remove("messages")
            .unwrap()["items"]
            .as_array()
            .unwrap()
            .clone();
        out.push((conversation, turns));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_from_sqlite_import_into_postgres_shows_the_same_conversations() {
    let Some(pg) = switchyard_store::testing::postgres_database_url().await else {
        return;
    };
    let sqlite = format!(
        "sqlite://{}",
        switchyard_store::testing::sqlite_path().display()
    );
    let slug = format!("move-{:08x}", rand::random::<u32>());
    let client = http();

    // The source installation, with data made through its API.
    let source = start(&sqlite);
    let (_, token) = tenant::tenant(&client, &source.url, OPERATOR, &slug, json!({})).await;
    for agent in [
        json!({"name": "billing", "kind": "echo", "keywords": ["invoice"], "examples": ["where is my invoice"]}),
        json!({"name": "general", "kind": "echo", "is_fallback": true}),
        json!({"name": "remote", "kind": "http", "config": {"url": "http://127.0.0.1:9/x", "secret": "a-secret-that-stays-home", "headers": {"Authorization": "Bearer private"}}}),
    ] {
        tenant::agent(&client, &source.url, &token, &agent).await;
    }
    for i in 0..3 {
        let first: Value = client
            .post(format!("{}/v1/chat", source.url))
            .bearer_auth(&token)
            .json(&json!({"message": format!("where is my invoice {i}?")}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for j in 0..i {
            let resp = client
                .post(format!("{}/v1/chat", source.url))
                .bearer_auth(&token)
                .json(&json!({"message": format!("and then {j}"), "conversation_id": first["conversation_id"]}))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
        }
    }
    let before = everything(&client, &source.url, &token).await;
    assert_eq!(before.len(), 3);
    drop(source);

    // Export, then import into PostgreSQL.
    let file = std::env::temp_dir().join(format!("{slug}.jsonl"));
    let out = run(
        &sqlite,
        &[
            "export",
            "--tenant",
            &slug,
            "--output",
            file.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("3 conversations, 6 turns"));
    // The database the server made and the export are its owner's alone.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let db = std::path::Path::new(sqlite.trim_start_matches("sqlite://"));
        assert_eq!(mode(db), 0o600, "the SQLite file is private");
        assert_eq!(mode(&file), 0o600, "the export is private");
    }
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        !text.contains("a-secret-that-stays-home") && !text.contains("Bearer private"),
        "no secrets in the export"
    );
    assert!(!text.contains("argon2"), "no password hashes in the export");
    let out = run(
        &pg,
        &[
            "import",
            "--tenant",
            &slug,
            "--input",
            file.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("1 users, 3 agents, 3 conversations, 6 turns"));
    // The import names the credentials the export could not carry, to be set again.
    let left_out = said
        .lines()
        .find(|l| l.starts_with("agent remote ("))
        .unwrap_or_else(|| panic!("{said}"));
    assert!(
        left_out.contains("came without secret, headers.Authorization: set them again"),
        "{left_out}"
    );
    assert_eq!(said.lines().filter(|l| l.starts_with("agent ")).count(), 1);

    // The new installation shows the same conversations and turns.
    let target = start(&pg);
    let issued = run(
        &pg,
        &[
            "token",
            "issue",
            "--tenant",
            &slug,
            "--email",
            tenant::EMAIL,
        ],
    );
    assert!(
        issued.status.success(),
        "{}",
        String::from_utf8_lossy(&issued.stderr)
    );
    let target_token = String::from_utf8(issued.stdout).unwrap().trim().to_string();
    let after = everything(&client, &target.url, &target_token).await;
    assert_eq!(after, before);
    let agents: Value = client
        .get(format!("{}/v1/agents", target.url))
        .bearer_auth(&target_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let remote = agents["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "remote")
        .unwrap();
    assert!(
        remote["config"].get("secret").is_none(),
        "secrets are set again after an import"
    );
    // And chat goes on there.
    let more = client
        .post(format!("{}/v1/chat", target.url))
        .bearer_auth(&target_token)
        .json(&json!({"message": "one more", "conversation_id": before[0].0["id"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(more.status(), 200);

    // Importing the same file again is refused, and writes nothing.
    let again = run(
        &pg,
        &[
            "import",
            "--tenant",
            &slug,
            "--input",
            file.to_str().unwrap(),
        ],
    );
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("nothing was imported"));
    let list: Value = client
        .get(format!("{}/v1/conversations?all=true", target.url))
        .bearer_auth(&target_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 3);

    // A file that does not hold together (turns whose conversations are missing), imported
    // into a new tenant: refused, and not even the tenant is left behind.
    let broken = std::env::temp_dir().join(format!("{slug}-broken.jsonl"));
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| !l.contains("\"record\":\"conversation\""))
        .collect();
    assert!(kept.len() < text.lines().count());
    std::fs::write(&broken, kept.join("\n")).unwrap();
    let other = format!("{slug}-b");
    let refused = run(
        &pg,
        &[
            "import",
            "--tenant",
            &other,
            "--input",
            broken.to_str().unwrap(),
        ],
    );
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("nothing was imported"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let tenants = run(&pg, &["tenant", "list"]);
    assert!(
        !String::from_utf8_lossy(&tenants.stdout).contains(&other),
        "the refused import's tenant is gone"
    );
    let _ = std::fs::remove_file(broken);
    let _ = std::fs::remove_file(file);
}
