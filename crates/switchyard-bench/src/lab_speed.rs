//! `lab-speed`: how long the routing lab takes (docs/benchmarks.md) — `POST
//! /v1/routing/evaluate` with 5,000 labelled BANKING77 messages and `POST
//! /v1/routing/replay` of 10,000 stored turns, over real HTTP against the server in this
//! process, on a tenant of BANKING77's 77 intents (10 examples each) and a fallback.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use serde_json::{Value, json};
use switchyard_server::config::Secret;
use switchyard_server::{App, AppState, Config, router};

use crate::eval::sets::{self, Source};
use crate::post;

const OPERATOR: &str = "operator-token-for-the-lab-benchmark";

/// What `lab-speed` runs.
#[derive(Debug)]
pub struct LabSpeedArgs {
    /// The sentence encoder's directory (none: lexical only).
    pub encoder_dir: Option<PathBuf>,
    /// The database (default: a fresh SQLite file).
    pub database_url: Option<String>,
    /// Runs of each request; the median is printed.
    pub runs: usize,
}

fn median(mut ms: Vec<f64>) -> f64 {
    ms.sort_by(f64::total_cmp);
    ms[ms.len() / 2]
}

/// Runs the benchmark and prints one line per request.
pub async fn lab_speed(args: LabSpeedArgs) -> Result<(), String> {
    let database_url = args.database_url.unwrap_or_else(|| {
        let path = std::env::temp_dir().join(format!(
            "switchyard-lab-speed-{}-{:x}.db",
            std::process::id(),
            rand::random::<u32>()
        ));
        format!("sqlite://{}?mode=rwc", path.display())
    });
    let encoder = args.encoder_dir.is_some();
    let config = Config {
        database_url,
        admin_token: Some(Secret::new(OPERATOR)),
        jwt_secret: Some(Secret::new("a-jwt-secret-for-the-lab-benchmark-0123456789")),
        encoder_dir: args.encoder_dir,
        ..Config::default()
    }
    .validated()
    .map_err(|e| e.to_string())?;
    let opened = switchyard_store::connect(&config.store_config())
        .await
        .map_err(|e| e.to_string())?;
    let state = AppState(Arc::new(
        App::new(config, opened).await.map_err(|e| e.to_string())?,
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let base = format!(
        "http://{}",
        listener.local_addr().map_err(|e| e.to_string())?
    );
    tokio::spawn(axum::serve(listener, router(state.clone())).into_future());
    let http = reqwest::Client::new();

    // The tenant: BANKING77's intents, 10 examples each, and a fallback.
    let slug = format!("lab-{:06x}", rand::random::<u32>() & 0xff_ffff);
    let created = post(
        &http,
        &format!("{base}/v1/tenants"),
        OPERATOR,
        json!({"slug": slug, "name": "Lab", "admin_email": format!("admin@{slug}.test"),
               "settings": {"rate_limit_per_second": 0, "max_conversations_per_user": 20000,
                            "max_conversations_per_tenant": 20000}}),
    )
    .await?;
    let tenant = created["id"].as_str().and_then(|s| s.parse().ok());
    let admin = created["admin"]["id"].as_str().and_then(|s| s.parse().ok());
    let (Some(tenant), Some(admin)) = (tenant, admin) else {
        return Err(format!("a tenant without ids: {created}"));
    };
    let token = state
        .jwt
        .issue(tenant, admin, None)
        .map_err(|e| e.detail)?
        .0;
    let train = Source::Banking77
        .read("train.csv")
        .map_err(|e| e.to_string())?;
    let test = Source::Banking77
        .read("test.csv")
        .map_err(|e| e.to_string())?;
    let labels = sets::labels(&train);
    for a in sets::tenant(&labels, &train, Some(10)) {
        post(
            &http,
            &format!("{base}/v1/agents"),
            &token,
            json!({"name": a.name, "description": a.description, "kind": "echo",
                   "intents": a.intents, "examples": a.examples, "is_fallback": a.is_fallback}),
        )
        .await?;
    }

    // 5,000 labelled messages: the test file, then training rows.
    let examples: Vec<Value> = test
        .iter()
        .chain(train.iter().rev())
        .take(5_000)
        .map(|r| json!({"message": r.text, "agent": r.label}))
        .collect();
    let mut times = Vec::new();
    let mut accuracy = 0.0;
    for _ in 0..args.runs {
        let started = Instant::now();
        let figures = post(
            &http,
            &format!("{base}/v1/routing/evaluate"),
            &token,
            json!({"examples": examples}),
        )
        .await?;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        accuracy = figures["accuracy"].as_f64().unwrap_or(0.0);
    }
    println!(
        "lab-speed evaluate examples={} agents={} encoder={encoder} median_ms={:.0} runs_ms={times:.0?} accuracy={accuracy:.3}",
        examples.len(),
        labels.len() + 1,
        median(times.clone()),
    );

    // 10,000 stored turns, ten per conversation, then their replay with one agent removed.
    let mut conversation: Option<Value> = None;
    for (i, row) in test.iter().chain(train.iter()).take(10_000).enumerate() {
        let mut body = json!({"message": row.text});
        if i % 10 != 0
            && let Some(c) = &conversation
        {
            body["conversation_id"] = c.clone();
        }
        let answer = post(&http, &format!("{base}/v1/chat"), &token, body).await?;
        conversation = Some(answer["conversation_id"].clone());
    }
    let agents: Value = http
        .get(format!("{base}/v1/agents?limit=1"))
        .bearer_auth(&token)
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let removed = agents["items"][0]["id"].clone();
    let mut times = Vec::new();
    let mut changed = 0;
    for _ in 0..args.runs {
        let started = Instant::now();
        let replay = post(
            &http,
            &format!("{base}/v1/routing/replay"),
            &token,
            json!({"agents": {"remove": [removed]}, "last": 10_000}),
        )
        .await?;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        if replay["turns"] != 10_000 {
            return Err(format!(
                "the replay read {} turns, not 10000",
                replay["turns"]
            ));
        }
        changed = replay["changed"].as_u64().unwrap_or(0);
    }
    println!(
        "lab-speed replay turns=10000 encoder={encoder} median_ms={:.0} runs_ms={times:.0?} changed={changed}",
        median(times.clone()),
    );
    Ok(())
}
