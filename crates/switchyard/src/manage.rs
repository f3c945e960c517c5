//! The operator's commands for a tenant's users, API keys and agents, and for erasing a
//! tenant — on the database, as the API's routes do it, with the same checks.

use std::io::BufRead as _;
use std::path::PathBuf;

use clap::Subcommand;
use switchyard_core::model::{AgentFields, NewApiKey, Tenant, User, UserPatch, UserStatus};
use switchyard_core::page::PageRequest;
use switchyard_core::{AgentId, ApiKeyId};
use switchyard_server::Config;
use switchyard_server::api::CreateAgent;
use switchyard_server::auth::{hash_password, new_api_key};
use switchyard_server::validate::{agent_problem, normalize_email, password_problem};
use switchyard_store::{Opened, OperatorScope, Store, StoreError, TenantScope};

#[derive(Subcommand, Debug)]
pub enum ApiKeyCommand {
    /// Creates an API key for a user and prints its secret (shown this once only).
    Create {
        /// The tenant's slug or id.
        #[arg(long)]
        tenant: String,
        /// The e-mail address of the user the key acts as.
        #[arg(long)]
        email: String,
        /// A name to tell the key by.
        #[arg(long)]
        name: String,
    },
    /// Lists a tenant's API keys (never their secrets).
    List {
        /// The tenant's slug or id.
        #[arg(long)]
        tenant: String,
    },
    /// Revokes an API key: refused from now on.
    Revoke {
        /// The tenant's slug or id.
        #[arg(long)]
        tenant: String,
        /// The key's id.
        id: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum AgentCommand {
    /// Lists a tenant's agents.
    List {
        /// The tenant's slug or id.
        #[arg(long)]
        tenant: String,
    },
    /// Creates an agent from a JSON file holding what `POST /v1/agents` takes.
    Create {
        /// The tenant's slug or id.
        #[arg(long)]
        tenant: String,
        /// The agent, as JSON.
        file: PathBuf,
    },
    /// Deletes an agent (turns it answered keep their record of it).
    Delete {
        /// The tenant's slug or id.
        #[arg(long)]
        tenant: String,
        /// The agent's name or id.
        agent: String,
    },
}

/// The store, the operator's proof, and the tenant named by a slug or an id.
pub struct Opening {
    pub store: std::sync::Arc<dyn Store>,
    pub operator: OperatorScope,
    pub tenant: Tenant,
}

impl Opening {
    pub async fn of(config: &Config, tenant: &str) -> Result<Self, String> {
        let Opened { store, operator } = super::open(config).await?;
        let tenant = super::find_tenant(store.as_ref(), &operator, tenant).await?;
        Ok(Self {
            store,
            operator,
            tenant,
        })
    }

    pub fn scope(&self) -> TenantScope {
        self.operator.admin_of(self.tenant.id)
    }

    /// Refuses one more of `kind` when the tenant has `limit` of them already, as the API
    /// does.
    async fn check_quota(
        &self,
        kind: switchyard_store::Owned,
        limit: i64,
        what: &str,
    ) -> Result<(), String> {
        let count = self
            .store
            .count_owned(&self.scope(), kind)
            .await
            .map_err(|e| e.to_string())?;
        if count >= limit {
            return Err(format!(
                "tenant {:?} has {count} {what}, as many as it may ({limit})",
                self.tenant.slug
            ));
        }
        Ok(())
    }

    /// The tenant's user with this e-mail address.
    pub async fn user(&self, email: &str) -> Result<User, String> {
        let email =
            normalize_email(email).ok_or_else(|| format!("{email:?} is not an e-mail address"))?;
        self.store
            .find_login(&self.operator, &self.tenant.slug, &email)
            .await
            .map(|found| found.principal.user)
            .map_err(|e| match e {
                StoreError::NotFound => {
                    format!("there is no user {email} in tenant {:?}", self.tenant.slug)
                }
                other => other.to_string(),
            })
    }
}

/// Every page of a list.
async fn all<T, F, Fut>(mut read: F) -> Result<Vec<T>, String>
where
    F: FnMut(PageRequest) -> Fut,
    Fut: std::future::Future<Output = Result<switchyard_core::page::Page<T>, StoreError>>,
{
    let mut items = Vec::new();
    let mut page = PageRequest::first(100);
    loop {
        let got = read(page).await.map_err(|e| e.to_string())?;
        items.extend(got.items);
        match got.next {
            Some(cursor) => page = PageRequest::after(100, cursor),
            None => return Ok(items),
        }
    }
}

/// `user list`.
pub async fn list_users(config: &Config, tenant: &str) -> Result<(), String> {
    let o = Opening::of(config, tenant).await?;
    let scope = o.scope();
    let users = all(|page| o.store.list_users(&scope, page)).await?;
    println!(
        "{:<36}  {:<32}  {:<6}  {:<8}  name",
        "id", "email", "role", "status"
    );
    for u in users {
        println!(
            "{:<36}  {:<32}  {:<6}  {:<8}  {}",
            u.id,
            u.email,
            u.role.as_str(),
            u.status.as_str(),
            u.display_name.unwrap_or_default()
        );
    }
    Ok(())
}

/// `user set-password`: the password from the first line of standard input; the user's
/// earlier sessions end.
pub async fn set_password(config: &Config, tenant: &str, email: &str) -> Result<(), String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    let password = line.trim_end_matches(['\r', '\n']);
    if let Some(problem) = password_problem(password) {
        return Err(problem);
    }
    let hash = hash_password(password).map_err(|e| e.detail)?;
    let o = Opening::of(config, tenant).await?;
    let user = o.user(email).await?;
    o.store
        .update_user(
            &o.scope(),
            user.id,
            UserPatch {
                password_hash: Some(hash),
                ..UserPatch::default()
            },
        )
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "the password of {} is set; their earlier sessions have ended",
        user.email
    );
    Ok(())
}

/// `user disable` (or `--enable`).
pub async fn disable_user(
    config: &Config,
    tenant: &str,
    email: &str,
    enable: bool,
) -> Result<(), String> {
    let o = Opening::of(config, tenant).await?;
    let user = o.user(email).await?;
    let status = if enable {
        UserStatus::Active
    } else {
        UserStatus::Disabled
    };
    let user = o
        .store
        .update_user(
            &o.scope(),
            user.id,
            UserPatch {
                status: Some(status),
                ..UserPatch::default()
            },
        )
        .await
        .map_err(|e| e.to_string())?;
    println!("user {} is {}", user.email, user.status.as_str());
    Ok(())
}

pub async fn api_key(config: &Config, cmd: ApiKeyCommand) -> Result<(), String> {
    match cmd {
        ApiKeyCommand::Create {
            tenant,
            email,
            name,
        } => {
            let name = name.trim().to_owned();
            if let Some(problem) = switchyard_server::validate::name_problem("name", &name, 100) {
                return Err(problem);
            }
            let o = Opening::of(config, &tenant).await?;
            let user = o.user(&email).await?;
            let limit = o
                .tenant
                .settings
                .max_api_keys
                .unwrap_or(config.max_api_keys_per_tenant);
            o.check_quota(switchyard_store::Owned::ApiKeys, limit, "API keys")
                .await?;
            let scope = o.scope();
            let (secret, prefix, secret_hash) = new_api_key(o.tenant.id);
            let key = o
                .store
                .create_api_key(
                    &scope,
                    NewApiKey {
                        id: ApiKeyId::new(),
                        user_id: user.id,
                        name,
                        prefix,
                        secret_hash,
                    },
                )
                .await
                .map_err(|e| e.to_string())?;
            eprintln!(
                "API key {} ({}) for {}; its secret, shown this once:",
                key.id, key.name, user.email
            );
            println!("{secret}");
        }
        ApiKeyCommand::List { tenant } => {
            let o = Opening::of(config, &tenant).await?;
            let scope = o.scope();
            let keys = all(|page| o.store.list_api_keys(&scope, page)).await?;
            println!(
                "{:<36}  {:<24}  {:<14}  {:<36}  status",
                "id", "name", "prefix", "user"
            );
            for k in keys {
                println!(
                    "{:<36}  {:<24}  {:<14}  {:<36}  {}",
                    k.id,
                    k.name,
                    k.prefix,
                    k.user_id,
                    if k.revoked_at.is_some() {
                        "revoked"
                    } else {
                        "active"
                    }
                );
            }
        }
        ApiKeyCommand::Revoke { tenant, id } => {
            let o = Opening::of(config, &tenant).await?;
            let key = id
                .parse::<uuid::Uuid>()
                .map_err(|_| format!("{id:?} is not an API key's id"))?;
            o.store
                .revoke_api_key(&o.scope(), ApiKeyId::from(key))
                .await
                .map_err(|e| match e {
                    StoreError::NotFound => {
                        format!("there is no API key {id} in tenant {:?}", o.tenant.slug)
                    }
                    other => other.to_string(),
                })?;
            println!("API key {id} is revoked");
        }
    }
    Ok(())
}

pub async fn agent(config: &Config, cmd: AgentCommand) -> Result<(), String> {
    match cmd {
        AgentCommand::List { tenant } => {
            let o = Opening::of(config, &tenant).await?;
            let scope = o.scope();
            let agents = all(|page| o.store.list_agents(&scope, page)).await?;
            println!(
                "{:<36}  {:<24}  {:<6}  {:<8}  {:<8}  intents",
                "id", "name", "kind", "status", "fallback"
            );
            for a in agents {
                println!(
                    "{:<36}  {:<24}  {:<6}  {:<8}  {:<8}  {}",
                    a.id,
                    a.name,
                    a.kind.as_str(),
                    if a.enabled { "enabled" } else { "disabled" },
                    if a.is_fallback { "yes" } else { "" },
                    a.intents.join(", ")
                );
            }
        }
        AgentCommand::Create { tenant, file } => {
            let text =
                std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
            let body: CreateAgent =
                serde_json::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))?;
            let fields = AgentFields::from(body);
            let o = Opening::of(config, &tenant).await?;
            if let Some(problem) = agent_problem(config, &o.tenant, &fields) {
                return Err(format!("{}: {problem}", file.display()));
            }
            let limit = o
                .tenant
                .settings
                .max_agents
                .unwrap_or(config.max_agents_per_tenant);
            o.check_quota(switchyard_store::Owned::Agents, limit, "agents")
                .await?;
            let scope = o.scope();
            let name = fields.name.clone();
            let agent = o
                .store
                .create_agent(&scope, fields)
                .await
                .map_err(|e| match e {
                    StoreError::Conflict {
                        constraint: "agent_name",
                    } => format!(
                        "tenant {:?} already has an agent named {name:?}",
                        o.tenant.slug
                    ),
                    StoreError::Conflict {
                        constraint: "agent_fallback",
                    } => format!(
                        "tenant {:?} already has an enabled fallback agent",
                        o.tenant.slug
                    ),
                    other => other.to_string(),
                })?;
            super::print_json(
                &serde_json::to_value(switchyard_server::api::AgentOut::from(agent))
                    .unwrap_or_default(),
            );
        }
        AgentCommand::Delete { tenant, agent } => {
            let o = Opening::of(config, &tenant).await?;
            let scope = o.scope();
            let agents = all(|page| o.store.list_agents(&scope, page)).await?;
            // By id first, then by name (names are unique in a tenant).
            let found = agents
                .iter()
                .find(|a| a.id.to_string() == agent)
                .or_else(|| agents.iter().find(|a| a.name == agent))
                .ok_or_else(|| {
                    format!("there is no agent {agent:?} in tenant {:?}", o.tenant.slug)
                })?;
            let (id, name): (AgentId, String) = (found.id, found.name.clone());
            o.store
                .delete_agent(&scope, id)
                .await
                .map_err(|e| e.to_string())?;
            println!("agent {name} ({id}) is deleted");
        }
    }
    Ok(())
}
