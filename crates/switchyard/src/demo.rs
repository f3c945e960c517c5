//! `switchyard demo`: the server on the embedded database with two tenants, their users and
//! agents, ready to try — tokens and `curl` lines are printed once it listens.

use serde_json::json;
use switchyard_core::model::{AgentFields, AgentKind, NewTenant, NewUser};
use switchyard_core::settings::TenantSettings;
use switchyard_core::{Role, TenantId};
use switchyard_server::Config;
use switchyard_server::auth::hash_password;
use switchyard_server::config::Secret;
use switchyard_store::{Opened, StoreError};

/// Where the demo keeps its data unless `SWITCHYARD_DATABASE_URL` says otherwise.
pub const DEMO_DATABASE: &str = "sqlite://switchyard-demo.db";

struct DemoUser {
    tenant: &'static str,
    email: &'static str,
    role: Role,
}

const USERS: &[DemoUser] = &[
    DemoUser {
        tenant: "acme",
        email: "alice@acme.test",
        role: Role::Member,
    },
    DemoUser {
        tenant: "acme",
        email: "admin@acme.test",
        role: Role::Admin,
    },
    DemoUser {
        tenant: "globex",
        email: "gina@globex.test",
        role: Role::Member,
    },
    DemoUser {
        tenant: "globex",
        email: "admin@globex.test",
        role: Role::Admin,
    },
];

/// Every demo user's password.
pub const DEMO_PASSWORD: &str = "switchyard-demo";

fn agent(
    name: &str,
    description: &str,
    intents: &[&str],
    keywords: &[&str],
    examples: &[&str],
    fallback: bool,
) -> AgentFields {
    let strings = |items: &[&str]| items.iter().map(|s| s.to_string()).collect();
    AgentFields {
        name: name.into(),
        description: description.into(),
        kind: AgentKind::Echo,
        config: json!({"template": format!("[{name}] You said: {{message}}")}),
        intents: strings(intents),
        keywords: strings(keywords),
        examples: strings(examples),
        enabled: true,
        priority: if fallback { 0 } else { 10 },
        is_fallback: fallback,
    }
}

fn agents(tenant: &str) -> Vec<AgentFields> {
    let general = agent(
        "general",
        "General questions; answers when nothing else fits",
        &["general"],
        &["hello", "hi", "help", "question", "thanks"],
        &["Hello, I have a question", "Thanks for the help"],
        true,
    );
    match tenant {
        "acme" => vec![
            agent(
                "billing",
                "Invoices, payments, refunds and subscriptions",
                &["billing"],
                &[
                    "invoice",
                    "payment",
                    "refund",
                    "charge",
                    "charged",
                    "bill",
                    "subscription",
                    "card",
                ],
                &[
                    "I was charged twice on my card",
                    "Where is my invoice for March?",
                ],
                false,
            ),
            agent(
                "it-helpdesk",
                "Errors, crashes, VPN, laptops and login problems",
                &["technical"],
                &[
                    "error", "crash", "vpn", "laptop", "login", "password", "reset", "broken",
                ],
                &[
                    "My VPN drops every ten minutes",
                    "How do I reset my password?",
                ],
                false,
            ),
            general,
        ],
        _ => vec![
            agent(
                "hr",
                "Vacation, payroll, leave and benefits",
                &["hr"],
                &[
                    "vacation", "payroll", "leave", "benefits", "salary", "holiday", "payslip",
                    "sick",
                ],
                &[
                    "How many vacation days do I have left?",
                    "My payslip is missing",
                ],
                false,
            ),
            agent(
                "legal",
                "Contracts, privacy, GDPR and compliance",
                &["legal"],
                &["contract", "gdpr", "privacy", "terms", "compliance", "dpa"],
                &["Do you have a DPA for GDPR?", "Send me the contract terms"],
                false,
            ),
            general,
        ],
    }
}

async fn tenant(opened: &Opened, slug: &str, name: &str) -> Result<TenantId, String> {
    let Opened { store, operator } = opened;
    match store.find_tenant_by_slug(operator, slug).await {
        Ok(t) => return Ok(t.id),
        Err(StoreError::NotFound) => {}
        Err(e) => return Err(e.to_string()),
    }
    let (t, _) = store
        .create_tenant(
            operator,
            NewTenant {
                slug: slug.into(),
                name: name.into(),
                settings: TenantSettings::default(),
            },
            None,
        )
        .await
        .map_err(|e| e.to_string())?;
    let scope = operator.admin_of(t.id);
    for fields in agents(slug) {
        store
            .create_agent(&scope, fields)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(t.id)
}

/// Seeds the demo tenants (once: running the demo again reuses them) and serves.
pub async fn run(mut config: Config, database_from_env: bool) -> Result<(), String> {
    if !database_from_env {
        config.database_url = DEMO_DATABASE.into();
    }
    config.enable_debug_info = true;
    let operator = config
        .admin_token
        .get_or_insert_with(|| Secret::new(format!("demo-operator-{}", hex_token())))
        .expose()
        .to_string();
    let opened = switchyard_store::connect(&config.store_config())
        .await
        .map_err(|e| e.to_string())?;
    let Opened {
        store,
        operator: op,
    } = &opened;
    let password_hash = hash_password(DEMO_PASSWORD).map_err(|e| e.detail)?;
    let mut users = Vec::new();
    for (slug, name) in [("acme", "Acme Corp"), ("globex", "Globex")] {
        let tenant_id = tenant(&opened, slug, name).await?;
        let scope = op.admin_of(tenant_id);
        for user in USERS.iter().filter(|u| u.tenant == slug) {
            let id = match store.find_login(op, slug, user.email).await {
                Ok(found) => found.principal.user.id,
                Err(StoreError::NotFound) => {
                    store
                        .create_user(
                            &scope,
                            NewUser {
                                email: user.email.into(),
                                display_name: None,
                                role: user.role,
                                password_hash: Some(password_hash.clone()),
                            },
                        )
                        .await
                        .map_err(|e| e.to_string())?
                        .id
                }
                Err(e) => return Err(e.to_string()),
            };
            users.push((tenant_id, id, user));
        }
    }
    switchyard_server::run_with_store(config, opened, move |addr, app| {
        let base = format!("http://{addr}");
        println!();
        println!("Switchyard demo — two tenants, each with its own agents and users (password: {DEMO_PASSWORD}).");
        println!("Web console: {base}/    API description: {base}/openapi.json");
        println!("Operator token: {operator}");
        println!();
        for (tenant, user, demo) in &users {
            let token = app.jwt.issue(*tenant, *user, Some(24 * 3600)).map(|t| t.0).unwrap_or_default();
            println!("# {} ({}, tenant {})", demo.email, demo.role.as_str(), demo.tenant);
            println!("export TOKEN_{}_{}={token}", demo.tenant.to_uppercase(), demo.role.as_str().to_uppercase());
        }
        println!();
        println!("# Chat as Alice (acme): routed to acme's billing agent");
        println!(
            "curl -s {base}/v1/chat -H \"Authorization: Bearer $TOKEN_ACME_MEMBER\" -H 'content-type: application/json' -d '{{\"message\": \"I was charged twice on my card\"}}'"
        );
        println!("# The same question as Gina (globex): globex has no billing agent, its fallback answers");
        println!(
            "curl -s {base}/v1/chat -H \"Authorization: Bearer $TOKEN_GLOBEX_MEMBER\" -H 'content-type: application/json' -d '{{\"message\": \"I was charged twice on my card\"}}'"
        );
        println!("# Streamed, as server-sent events");
        println!(
            "curl -sN {base}/v1/chat -H \"Authorization: Bearer $TOKEN_ACME_MEMBER\" -H 'accept: text/event-stream' -H 'content-type: application/json' -d '{{\"message\": \"my VPN keeps dropping\"}}'"
        );
        println!("# Conversations, and the routing decision alone");
        println!("curl -s {base}/v1/conversations -H \"Authorization: Bearer $TOKEN_ACME_MEMBER\"");
        println!(
            "curl -s {base}/v1/route -H \"Authorization: Bearer $TOKEN_GLOBEX_MEMBER\" -H 'content-type: application/json' -d '{{\"message\": \"how many vacation days do I have?\"}}'"
        );
        println!();
        let _ = std::io::Write::flush(&mut std::io::stdout());
    })
    .await
}

fn hex_token() -> String {
    use std::fmt::Write as _;
    let bytes: [u8; 12] = rand::random();
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}
