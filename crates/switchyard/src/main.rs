//! The `switchyard` command: the server and the operator's tools.

use std::io::BufRead as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

mod demo;
mod lab;
mod manage;
mod transfer;
use switchyard_core::Role;
use switchyard_core::model::{NewTenant, NewUser, TenantPatch, TenantStatus};
use switchyard_core::page::PageRequest;
use switchyard_core::settings::TenantSettings;
use switchyard_server::auth::{JwtKeys, hash_password};
use switchyard_server::validate::{is_slug, normalize_email, password_problem};
use switchyard_server::{Config, telemetry};
use switchyard_store::Opened;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A multi-tenant orchestrator for AI agents.
#[derive(Parser, Debug)]
#[command(name = "switchyard", version, about)]
struct Cli {
    /// A TOML settings file; environment variables win over it.
    #[arg(long, global = true, env = "SWITCHYARD_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Runs the HTTP server.
    Serve,
    /// Applies pending database migrations (safe to run again).
    Migrate,
    /// Manages tenants.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Manages users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manages API keys.
    #[command(subcommand)]
    ApiKey(manage::ApiKeyCommand),
    /// Manages agents.
    #[command(subcommand)]
    Agent(manage::AgentCommand),
    /// Issues tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Data retention.
    #[command(subcommand)]
    Retention(RetentionCommand),
    /// The routing lab: measure a tenant's routing on labelled messages, try a change first.
    #[command(subcommand)]
    Routing(lab::RoutingCommand),
    /// Writes a tenant's users, agents, conversations and turns as JSON Lines (no secrets).
    Export {
        /// The tenant's slug.
        #[arg(long)]
        tenant: String,
        /// The file to write (default: standard output).
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Loads an export into a tenant (created if missing); refuses ids that already exist.
    Import {
        /// The tenant's slug.
        #[arg(long)]
        tenant: String,
        /// The file to read (default: standard input).
        #[arg(long)]
        input: Option<PathBuf>,
    },
    /// Runs the server with two demo tenants, their users and agents, and prints tokens and
    /// `curl` lines to try it (data in ./switchyard-demo.db unless SWITCHYARD_DATABASE_URL is set).
    Demo,
}

#[derive(Subcommand, Debug)]
enum TenantCommand {
    /// Creates a tenant.
    Create {
        /// 2 to 63 of a-z, 0-9 and -.
        #[arg(long)]
        slug: String,
        /// A display name (default: the slug).
        #[arg(long)]
        name: Option<String>,
    },
    /// Lists tenants.
    List,
    /// Suspends a tenant: its users are refused at once.
    Suspend {
        /// The tenant's slug or id.
        slug: String,
        /// Reactivate instead.
        #[arg(long)]
        resume: bool,
    },
    /// Deletes a tenant and everything it holds (users, keys, agents, conversations).
    Delete {
        /// The tenant's slug or id.
        tenant: String,
        /// Yes, delete it: there is no undo.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Subcommand, Debug)]
enum RetentionCommand {
    /// Deletes every tenant's turns older than its retention, conversations left empty,
    /// and expired idempotency records (safe to interrupt and run again).
    Run {
        /// Only this tenant (slug).
        #[arg(long)]
        tenant: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum UserCommand {
    /// Creates a user in a tenant.
    Create(UserCreate),
    /// Lists a tenant's users.
    List {
        /// The tenant's slug or id.
        #[arg(long)]
        tenant: String,
    },
    /// Sets a user's password, read from the first line of standard input; the user's
    /// earlier sessions end.
    SetPassword {
        /// The tenant's slug or id.
        #[arg(long)]
        tenant: String,
        /// The user's e-mail address.
        #[arg(long)]
        email: String,
    },
    /// Disables a user (refused at once), or enables one again.
    Disable {
        /// The tenant's slug or id.
        #[arg(long)]
        tenant: String,
        /// The user's e-mail address.
        #[arg(long)]
        email: String,
        /// Enable instead.
        #[arg(long)]
        enable: bool,
    },
}

#[derive(Args, Debug)]
struct UserCreate {
    /// The tenant's slug or id.
    #[arg(long)]
    tenant: String,
    /// The user's e-mail address.
    #[arg(long)]
    email: String,
    /// `member` or `admin`.
    #[arg(long, default_value = "member")]
    role: String,
    /// A name to show.
    #[arg(long)]
    display_name: Option<String>,
    /// Read a password (at least 12 characters) from the first line of standard input.
    #[arg(long)]
    password_stdin: bool,
}

#[derive(Subcommand, Debug)]
enum TokenCommand {
    /// Prints a signed access token for a user.
    Issue {
        /// The tenant's slug.
        #[arg(long)]
        tenant: String,
        /// The user's e-mail address.
        #[arg(long)]
        email: String,
        /// Lifetime in seconds (default: the configured token TTL).
        #[arg(long)]
        ttl: Option<u64>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Traces only for the server (docs/operations.md, *Traces*), their exports on its runtime.
    let traces = {
        let _runtime = runtime.enter();
        telemetry::init(matches!(cli.command, Command::Serve))
    };
    let outcome = runtime.block_on(run(cli));
    if let Some(traces) = traces {
        traces.shutdown();
    }
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    let config = Config::load(cli.config.as_deref()).map_err(|e| e.to_string())?;
    match cli.command {
        Command::Serve => switchyard_server::run(config).await,
        Command::Migrate => {
            let report = switchyard_store::migrate(&config.store_config())
                .await
                .map_err(|e| e.to_string())?;
            if report.upgraded_legacy {
                println!("upgraded a database of the single-tenant layout");
            }
            if report.applied.is_empty() {
                println!("the database is up to date");
            } else {
                let versions: Vec<String> = report.applied.iter().map(i64::to_string).collect();
                println!("applied migrations {}", versions.join(", "));
            }
            Ok(())
        }
        Command::Tenant(cmd) => tenant(&config, cmd).await,
        Command::User(UserCommand::Create(args)) => create_user(&config, args).await,
        Command::User(UserCommand::List { tenant }) => manage::list_users(&config, &tenant).await,
        Command::User(UserCommand::SetPassword { tenant, email }) => {
            manage::set_password(&config, &tenant, &email).await
        }
        Command::User(UserCommand::Disable {
            tenant,
            email,
            enable,
        }) => manage::disable_user(&config, &tenant, &email, enable).await,
        Command::ApiKey(cmd) => manage::api_key(&config, cmd).await,
        Command::Agent(cmd) => manage::agent(&config, cmd).await,
        Command::Token(TokenCommand::Issue { tenant, email, ttl }) => {
            issue_token(&config, &tenant, &email, ttl).await
        }
        Command::Retention(RetentionCommand::Run { tenant }) => {
            let Opened { store, operator } = open(&config).await?;
            let report = switchyard_server::retention::run_once(
                &store,
                &operator,
                &config,
                tenant.as_deref(),
            )
            .await
            .map_err(|e| e.to_string())?;
            println!(
                "retention: {} tenants, {} turns and {} conversations deleted, {} expired records removed",
                report.tenants, report.turns, report.conversations, report.records
            );
            Ok(())
        }
        Command::Routing(cmd) => lab::run(&config, cmd).await,
        Command::Export { tenant, output } => {
            let opened = open(&config).await?;
            let mut out: Box<dyn std::io::Write> = match output {
                Some(path) => Box::new(std::io::BufWriter::new(
                    private_file(&path).map_err(|e| format!("{}: {e}", path.display()))?,
                )),
                None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            };
            let counts = transfer::export(&opened, &tenant, &mut out).await?;
            out.flush().map_err(|e| e.to_string())?;
            eprintln!(
                "exported {} users, {} agents, {} conversations, {} turns",
                counts.users, counts.agents, counts.conversations, counts.turns
            );
            Ok(())
        }
        Command::Import { tenant, input } => {
            let opened = open(&config).await?;
            let mut reader: Box<dyn std::io::BufRead> = match input {
                Some(path) => Box::new(std::io::BufReader::new(
                    std::fs::File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?,
                )),
                None => Box::new(std::io::BufReader::new(std::io::stdin().lock())),
            };
            let counts = transfer::import(&opened, &tenant, &mut reader).await?;
            println!(
                "imported {} users, {} agents, {} conversations, {} turns into {tenant}",
                counts.users, counts.agents, counts.conversations, counts.turns
            );
            // Exports carry no secrets: say which are to be set again.
            for (name, id, left_out) in &counts.left_out {
                println!(
                    "agent {name} ({id}) came without {}: set them again (PATCH /v1/agents/{id})",
                    left_out.join(", ")
                );
            }
            Ok(())
        }
        Command::Demo => {
            demo::run(
                config,
                std::env::var_os("SWITCHYARD_DATABASE_URL").is_some(),
            )
            .await
        }
    }
}

/// The store, and the operator's proof that opening it gives the command line.
async fn open(config: &Config) -> Result<Opened, String> {
    switchyard_store::connect(&config.store_config())
        .await
        .map_err(|e| {
            format!(
                "cannot open the database {}: {e}",
                switchyard_server::config::redacted_url(&config.database_url)
            )
        })
}

/// The tenant named by a slug or an id.
pub async fn find_tenant(
    store: &dyn switchyard_store::Store,
    operator: &switchyard_store::OperatorScope,
    key: &str,
) -> Result<switchyard_core::model::Tenant, String> {
    let found = match key.parse::<uuid::Uuid>() {
        Ok(id) => {
            store
                .get_tenant(operator, switchyard_core::TenantId::from_uuid(id))
                .await
        }
        Err(_) => store.find_tenant_by_slug(operator, key).await,
    };
    found.map_err(|e| match e {
        switchyard_store::StoreError::NotFound => format!("there is no tenant {key:?}"),
        other => format!("tenant {key:?}: {other}"),
    })
}

fn print_json(value: &serde_json::Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}

async fn tenant(config: &Config, cmd: TenantCommand) -> Result<(), String> {
    let Opened { store, operator } = open(config).await?;
    match cmd {
        TenantCommand::Create { slug, name } => {
            if !is_slug(&slug) {
                return Err(format!(
                    "{slug:?} is not a slug: 2 to 63 of a-z, 0-9 and -, starting with a letter or digit"
                ));
            }
            let (tenant, _) = store
                .create_tenant(
                    &operator,
                    NewTenant {
                        name: name.unwrap_or_else(|| slug.clone()),
                        slug: slug.clone(),
                        settings: TenantSettings::default(),
                    },
                    None,
                )
                .await
                .map_err(|e| match e {
                    switchyard_store::StoreError::Conflict { .. } => {
                        format!("tenant {slug:?} already exists")
                    }
                    other => other.to_string(),
                })?;
            print_json(
                &serde_json::to_value(switchyard_server::api::TenantOut::from(tenant))
                    .unwrap_or_default(),
            );
        }
        TenantCommand::List => {
            let mut page = PageRequest::first(100);
            println!("{:<36}  {:<24}  {:<9}  name", "id", "slug", "status");
            loop {
                let tenants = store
                    .list_tenants(&operator, page)
                    .await
                    .map_err(|e| e.to_string())?;
                for t in &tenants.items {
                    println!(
                        "{:<36}  {:<24}  {:<9}  {}",
                        t.id,
                        t.slug,
                        t.status.as_str(),
                        t.name
                    );
                }
                match tenants.next {
                    Some(cursor) => page = PageRequest::after(100, cursor),
                    None => break,
                }
            }
        }
        TenantCommand::Suspend { slug, resume } => {
            let tenant = find_tenant(store.as_ref(), &operator, &slug).await?;
            let status = if resume {
                TenantStatus::Active
            } else {
                TenantStatus::Suspended
            };
            let tenant = store
                .update_tenant(
                    &operator,
                    tenant.id,
                    TenantPatch {
                        status: Some(status),
                        ..TenantPatch::default()
                    },
                )
                .await
                .map_err(|e| e.to_string())?;
            println!("tenant {} is {}", tenant.slug, tenant.status.as_str());
        }
        TenantCommand::Delete { tenant, yes } => {
            let tenant = find_tenant(store.as_ref(), &operator, &tenant).await?;
            if !yes {
                return Err(format!(
                    "deleting tenant {:?} deletes its users, keys, agents and conversations, \
                     with no undo: add --yes to do it",
                    tenant.slug
                ));
            }
            store
                .delete_tenant(&operator, tenant.id)
                .await
                .map_err(|e| e.to_string())?;
            println!("tenant {} ({}) is deleted", tenant.slug, tenant.id);
        }
    }
    Ok(())
}

async fn create_user(config: &Config, args: UserCreate) -> Result<(), String> {
    let email = normalize_email(&args.email)
        .ok_or_else(|| format!("{:?} is not an e-mail address", args.email))?;
    let role = Role::parse(&args.role).ok_or("--role must be member or admin")?;
    let password_hash = if args.password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        let password = line.trim_end_matches(['\r', '\n']).to_string();
        if let Some(problem) = password_problem(&password) {
            return Err(problem);
        }
        Some(hash_password(&password).map_err(|e| e.detail)?)
    } else {
        None
    };
    let Opened { store, operator } = open(config).await?;
    let tenant = find_tenant(store.as_ref(), &operator, &args.tenant).await?;
    let user = store
        .create_user(
            &operator.admin_of(tenant.id),
            NewUser {
                email: email.clone(),
                display_name: args.display_name,
                role,
                password_hash,
            },
        )
        .await
        .map_err(|e| match e {
            switchyard_store::StoreError::Conflict { .. } => {
                format!("tenant {:?} already has a user {email}", tenant.slug)
            }
            other => other.to_string(),
        })?;
    print_json(
        &serde_json::to_value(switchyard_server::api::UserOut::from(user)).unwrap_or_default(),
    );
    Ok(())
}

async fn issue_token(
    config: &Config,
    tenant: &str,
    email: &str,
    ttl: Option<u64>,
) -> Result<(), String> {
    if ttl == Some(0) {
        return Err("--ttl is the token's lifetime in seconds: at least 1".to_owned());
    }
    let Opened { store, operator } = open(config).await?;
    let email =
        normalize_email(email).ok_or_else(|| format!("{email:?} is not an e-mail address"))?;
    let tenant = find_tenant(store.as_ref(), &operator, tenant).await?;
    let tenant = tenant.slug.as_str();
    let found = store
        .find_login(&operator, tenant, &email)
        .await
        .map_err(|e| match e {
            switchyard_store::StoreError::NotFound => {
                format!("no user {email} in tenant {tenant:?}")
            }
            other => other.to_string(),
        })?;
    let keys = JwtKeys::load(config, store.as_ref(), &operator)
        .await
        .map_err(|e| e.to_string())?;
    let (token, _) = keys
        .issue(found.principal.tenant.id, found.principal.user.id, ttl)
        .map_err(|e| e.detail)?;
    println!("{token}");
    Ok(())
}

/// A file for an export, readable and writable by its owner only (0600): it holds a tenant's
/// users, agents and conversations.
fn private_file(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(path)?;
    // An existing file keeps its mode when opened: make it private too.
    #[cfg(unix)]
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    Ok(file)
}
