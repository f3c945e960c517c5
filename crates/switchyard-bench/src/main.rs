//! Tools for measuring Switchyard (docs/benchmarks.md): seed tenants, users and agents over
//! the API; run a loopback HTTP agent; fill a PostgreSQL database with many tenants and
//! turns through COPY; read a process's memory.

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};
use serde_json::{Value, json};

mod eval;
mod fill;
mod lab_speed;

/// Switchyard's benchmark tools.
#[derive(Parser, Debug)]
#[command(name = "switchyard-bench")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Seeds tenants, users and agents over the API and writes one line per user:
    /// `token<TAB>conversation_id` (a first conversation is started for each user).
    Seed {
        /// The server.
        #[arg(long)]
        url: String,
        /// The operator's token.
        #[arg(long)]
        admin_token: String,
        /// Tenants.
        #[arg(long, default_value_t = 20)]
        tenants: usize,
        /// Members per tenant.
        #[arg(long, default_value_t = 10)]
        users: usize,
        /// Echo agents per tenant (one more, the fallback, is added).
        #[arg(long, default_value_t = 8)]
        agents: usize,
        /// If given, each tenant also gets an `http` agent calling this URL.
        #[arg(long)]
        agent_url: Option<String>,
        /// Where to write the tokens.
        #[arg(long)]
        out: String,
    },
    /// A loopback HTTP agent answering `{"response": …}` at once.
    Agent {
        /// Where to listen.
        #[arg(long, default_value = "127.0.0.1:0")]
        bind: String,
    },
    /// Fills a migrated PostgreSQL database with many tenants, users, conversations and turns
    /// through COPY (as the owner).
    Fill {
        /// The owner's URL.
        #[arg(long)]
        database_url: String,
        /// Tenants.
        #[arg(long, default_value_t = 10_000)]
        tenants: usize,
        /// Turns in all.
        #[arg(long, default_value_t = 10_000_000)]
        turns: usize,
        /// Turns per conversation.
        #[arg(long, default_value_t = 10)]
        turns_per_conversation: usize,
        /// Users per tenant.
        #[arg(long, default_value_t = 5)]
        users: usize,
    },
    /// Writes access tokens for users of generated tenants, one line per user:
    /// `token<TAB>conversation_id` (the user's oldest conversation). Keys and settings are
    /// read like the server's (SWITCHYARD_* variables), so the server accepts the tokens.
    Tokens {
        /// The owner's URL (to list users of every tenant).
        #[arg(long)]
        database_url: String,
        /// Only tenants whose slug starts with this.
        #[arg(long, default_value = "scale-")]
        slug_prefix: String,
        /// At most this many users.
        #[arg(long, default_value_t = 50_000)]
        limit: i64,
        /// Tenant admins instead of members (for `?all=true` lists).
        #[arg(long)]
        admins: bool,
        /// Where to write the tokens.
        #[arg(long)]
        out: String,
    },
    /// Routes every test message of the public intent sets (BANKING77, HWU64) through the
    /// server's routing with the default settings; one line per set (docs/routing.md).
    RoutingEval {
        /// The sentence encoder's directory.
        #[arg(long, env = "SWITCHYARD_ENCODER_DIR")]
        encoder_dir: Option<std::path::PathBuf>,
        /// Only the sets whose name (`banking77-10`, `hwu64-intents-all`, …) contains this.
        #[arg(long)]
        only: Option<String>,
        /// The configurations to run.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "default,full-encoder,lexical"
        )]
        variants: Vec<eval::Variant>,
        /// Exit with an error if a figure of the default configuration is below its floor.
        #[arg(long)]
        check: bool,
        /// Write each set's tenant and test messages here, for the routing lab (the agents as
        /// JSON, the messages as CSV, and the lab's figures).
        #[arg(long)]
        lab_out: Option<std::path::PathBuf>,
        /// Give the fallback agent examples of half of the left-out labels (messages to
        /// refuse) and report the left-out messages caught among those and the others.
        #[arg(long)]
        refusals: bool,
    },
    /// Cross-validates settings of the routing index on the sets' training files only.
    RoutingCv {
        /// The sentence encoder's directory (none: lexical only).
        #[arg(long, env = "SWITCHYARD_ENCODER_DIR")]
        encoder_dir: Option<std::path::PathBuf>,
        /// Only the sets whose name contains this.
        #[arg(long)]
        only: Option<String>,
        /// Settings of the index, `key=value` (band, target, folds, embedding_weight, …).
        settings: Vec<String>,
    },
    /// Embeds text with the whole sentence encoder, for measuring other classifiers on the
    /// same vectors (`bench/routing_baselines.py`): one text per line of standard input, one
    /// row of little-endian `f32`s per line on standard output.
    Embed {
        /// The sentence encoder's directory.
        #[arg(long, env = "SWITCHYARD_ENCODER_DIR")]
        encoder_dir: std::path::PathBuf,
    },
    /// Times the routing lab: evaluate 5,000 labelled messages and replay 10,000 stored
    /// turns, over HTTP against a server in this process (docs/benchmarks.md).
    LabSpeed {
        /// The sentence encoder's directory (none: lexical only).
        #[arg(long, env = "SWITCHYARD_ENCODER_DIR")]
        encoder_dir: Option<std::path::PathBuf>,
        /// The database (default: a fresh SQLite file).
        #[arg(long)]
        database_url: Option<String>,
        /// Runs of each request; the median is printed.
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
    /// Prints a process's resident memory now and at its peak, in MiB.
    Memory {
        /// The process.
        pid: u32,
    },
}

/// The words of each agent, so that generated messages route to all of them.
pub const TOPICS: &[(&str, &[&str])] = &[
    (
        "billing",
        &[
            "invoice",
            "payment",
            "refund",
            "charged",
            "bill",
            "subscription",
            "card",
        ],
    ),
    (
        "tech_support",
        &[
            "error", "crash", "install", "login", "password", "reset", "app",
        ],
    ),
    (
        "shipping",
        &[
            "delivery", "package", "parcel", "tracking", "shipment", "courier", "late",
        ],
    ),
    (
        "account",
        &[
            "profile", "email", "settings", "account", "username", "delete",
        ],
    ),
    (
        "sales",
        &[
            "quote", "pricing", "plan", "upgrade", "demo", "discount", "seats",
        ],
    ),
    (
        "legal",
        &[
            "contract",
            "gdpr",
            "privacy",
            "terms",
            "compliance",
            "policy",
        ],
    ),
    (
        "hr",
        &[
            "vacation", "payroll", "leave", "benefits", "salary", "payslip",
        ],
    ),
    (
        "it",
        &["vpn", "laptop", "printer", "wifi", "monitor", "keyboard"],
    ),
];

async fn post(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    body: Value,
) -> Result<Value, String> {
    let response = client
        .post(url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let body: Value = response.json().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("{url}: {status} {body}"));
    }
    Ok(body)
}

async fn seed(
    url: &str,
    admin_token: &str,
    tenants: usize,
    users: usize,
    agents: usize,
    agent_url: Option<&str>,
    out: &str,
) -> Result<(), String> {
    switchyard_agents::install_tls_provider();
    let client = reqwest::Client::new();
    let started = Instant::now();
    let run = format!("{:06x}", rand_u32() & 0xff_ffff);
    let mut lines = String::new();
    for t in 0..tenants {
        let slug = format!("bench-{run}-{t}");
        post(
            &client,
            &format!("{url}/v1/tenants"),
            admin_token,
            json!({"slug": slug, "name": format!("Bench {t}"), "admin_email": "admin@bench.test", "admin_password": PASSWORD,
                   "settings": {"rate_limit_per_second": 0, "max_conversations_per_user": 1_000_000, "max_conversations_per_tenant": 100_000_000}}),
        )
        .await?;
        let admin_token = login(&client, url, &slug, "admin@bench.test").await?;
        for (name, words) in TOPICS.iter().cycle().take(agents) {
            post(
                &client,
                &format!("{url}/v1/agents"),
                &admin_token,
                json!({"name": name, "kind": "echo", "description": format!("{name} questions"), "intents": [name],
                       "keywords": words, "examples": [format!("I have a question about my {}", words[0]), format!("the {} is wrong", words[1])]}),
            )
            .await?;
        }
        if let Some(agent_url) = agent_url {
            post(
                &client,
                &format!("{url}/v1/agents"),
                &admin_token,
                json!({"name": "remote", "kind": "http", "config": {"url": agent_url}, "keywords": ["remote", "outside"],
                       "examples": ["ask the remote service", "outside help please"]}),
            )
            .await?;
        }
        post(
            &client,
            &format!("{url}/v1/agents"),
            &admin_token,
            json!({"name": "general", "kind": "echo", "is_fallback": true, "keywords": ["hello", "thanks", "question"]}),
        )
        .await?;
        for u in 0..users {
            let email = format!("user{u}@bench.test");
            post(
                &client,
                &format!("{url}/v1/users"),
                &admin_token,
                json!({"email": email, "role": "member", "password": PASSWORD}),
            )
            .await?;
            let user_token = login(&client, url, &slug, &email).await?;
            let first = post(
                &client,
                &format!("{url}/v1/chat"),
                &user_token,
                json!({"message": "hello, I have a question"}),
            )
            .await?;
            let _ = writeln!(
                lines,
                "{user_token}\t{}",
                first["conversation_id"].as_str().unwrap_or_default()
            );
        }
    }
    std::fs::write(out, lines).map_err(|e| format!("{out}: {e}"))?;
    eprintln!(
        "seeded {tenants} tenants x {users} users x {} agents in {:.1} s -> {out}",
        agents + 1 + usize::from(agent_url.is_some()),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The password of every seeded user.
const PASSWORD: &str = "bench-password-1234";

/// A user's access token, from a login.
async fn login(
    client: &reqwest::Client,
    url: &str,
    tenant: &str,
    email: &str,
) -> Result<String, String> {
    let response = client
        .post(format!("{url}/v1/auth/login"))
        .json(&json!({"tenant": tenant, "email": email, "password": PASSWORD}))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let body: Value = response.json().await.map_err(|e| e.to_string())?;
    body["access_token"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("login failed: {body}"))
}

async fn tokens(
    database_url: &str,
    slug_prefix: &str,
    limit: i64,
    admins: bool,
    out: &str,
) -> Result<(), String> {
    use sqlx::{ConnectOptions, Connection};
    let config = switchyard_server::config::Config::load(None).map_err(|e| e.to_string())?;
    let opened = switchyard_store::connect(&config.store_config())
        .await
        .map_err(|e| e.to_string())?;
    let keys =
        switchyard_server::auth::JwtKeys::load(&config, opened.store.as_ref(), &opened.operator)
            .await
            .map_err(|e| e.to_string())?;
    let mut conn = database_url
        .parse::<sqlx::postgres::PgConnectOptions>()
        .map_err(|e| e.to_string())?
        .connect()
        .await
        .map_err(|e| e.to_string())?;
    // Members with their oldest conversation; admins (who own none: they page the tenant's
    // `?all=true` list) with none.
    let rows: Vec<(uuid::Uuid, uuid::Uuid, Option<uuid::Uuid>)> = sqlx::query_as(if admins {
        "SELECT u.tenant_id, u.id, NULL::uuid FROM users u JOIN tenants t ON t.id = u.tenant_id \
         WHERE starts_with(t.slug, $1) AND (u.role = 'admin') = $2 ORDER BY u.tenant_id, u.id LIMIT $3"
    } else {
        "SELECT DISTINCT ON (c.tenant_id, c.user_id) c.tenant_id, c.user_id, c.id \
         FROM conversations c JOIN tenants t ON t.id = c.tenant_id JOIN users u ON u.tenant_id = c.tenant_id AND u.id = c.user_id \
         WHERE starts_with(t.slug, $1) AND (u.role = 'admin') = $2 \
         ORDER BY c.tenant_id, c.user_id, c.created_at, c.id LIMIT $3"
    })
    .bind(slug_prefix)
    .bind(admins)
    .bind(limit)
    .fetch_all(&mut conn)
    .await
    .map_err(|e| e.to_string())?;
    conn.close().await.map_err(|e| e.to_string())?;
    let mut lines = String::with_capacity(rows.len() * 400);
    for (tenant, user, conversation) in &rows {
        let (token, _) = keys
            .issue(
                switchyard_core::TenantId::from(*tenant),
                switchyard_core::UserId::from(*user),
                Some(7 * 86_400),
            )
            .map_err(|e| e.detail)?;
        let _ = match conversation {
            Some(conversation) => writeln!(lines, "{token}\t{conversation}"),
            None => writeln!(lines, "{token}"),
        };
    }
    std::fs::write(out, lines).map_err(|e| format!("{out}: {e}"))?;
    eprintln!("{} tokens -> {out}", rows.len());
    Ok(())
}

fn rand_u32() -> u32 {
    rand::random()
}

async fn agent(bind: &str) -> Result<(), String> {
    let app = axum::Router::new().route(
        "/agent",
        axum::routing::post(|body: axum::Json<Value>| async move {
            axum::Json(
                json!({"response": format!("remote: {}", body["message"].as_str().unwrap_or(""))}),
            )
        }),
    );
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "listening on http://{}",
        listener.local_addr().map_err(|e| e.to_string())?
    );
    axum::serve(listener, app).await.map_err(|e| e.to_string())
}

fn memory(pid: u32) -> Result<(), String> {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| e.to_string())?;
    let field = |name: &str| -> f64 {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    println!(
        "rss_mib {:.1} peak_mib {:.1}",
        field("VmRSS:"),
        field("VmHWM:")
    );
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Seed {
                url,
                admin_token,
                tenants,
                users,
                agents,
                agent_url,
                out,
            } => {
                seed(
                    &url,
                    &admin_token,
                    tenants,
                    users,
                    agents,
                    agent_url.as_deref(),
                    &out,
                )
                .await
            }
            Command::Agent { bind } => agent(&bind).await,
            Command::Fill {
                database_url,
                tenants,
                turns,
                turns_per_conversation,
                users,
            } => fill::fill(&database_url, tenants, users, turns, turns_per_conversation).await,
            Command::Memory { pid } => memory(pid),
            Command::LabSpeed {
                encoder_dir,
                database_url,
                runs,
            } => {
                lab_speed::lab_speed(lab_speed::LabSpeedArgs {
                    encoder_dir,
                    database_url,
                    runs: runs.max(1),
                })
                .await
            }
            Command::RoutingEval {
                encoder_dir,
                only,
                variants,
                check,
                lab_out,
                refusals,
            } => eval::routing_eval(&eval::EvalArgs {
                encoder_dir,
                only,
                variants,
                check,
                lab_out,
                refusals,
            }),
            Command::Embed { encoder_dir } => eval::embed_lines(encoder_dir),
            Command::RoutingCv {
                encoder_dir,
                only,
                settings,
            } => eval::routing_cv(&eval::CvArgs {
                encoder_dir,
                only,
                settings,
            }),
            Command::Tokens {
                database_url,
                slug_prefix,
                limit,
                admins,
                out,
            } => tokens(&database_url, &slug_prefix, limit, admins, &out).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
