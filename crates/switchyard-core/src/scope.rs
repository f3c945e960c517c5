//! The tenant scope: the one value through which tenant-owned data is reached.

use serde::{Deserialize, Serialize};

use crate::{TenantId, UserId};

/// What a user may do within their tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Chats and sees their own conversations.
    Member,
    /// Manages the tenant's users, agents and API keys and sees all its conversations.
    Admin,
}

impl Role {
    /// The role as stored and shown (`member`, `admin`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Member => "member",
            Role::Admin => "admin",
        }
    }

    /// Parses a stored role.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "member" => Some(Role::Member),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// Who is acting, and in which tenant. Every store operation on tenant-owned data takes
/// one, and the tenant of that operation is always `tenant_id()`.
///
/// A scope is made in exactly three places, all easy to find:
/// [`TenantScope::from_verified_principal`] (the server's authentication, after a token or
/// API key has been checked and the user and tenant loaded),
/// [`TenantScope::trusted_for_cli_or_tests`] (command-line tools run by the operator, and
/// tests) and [`TenantScope::for_maintenance`] (the server's own background work on each
/// tenant, such as retention).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantScope {
    tenant_id: TenantId,
    user_id: UserId,
    role: Role,
}

impl TenantScope {
    /// The scope of a principal whose credential has been verified and whose user and
    /// tenant were found active. Only the server's authentication calls this.
    pub fn from_verified_principal(tenant_id: TenantId, user_id: UserId, role: Role) -> Self {
        Self {
            tenant_id,
            user_id,
            role,
        }
    }

    /// A scope made without a credential: for operator command-line tools (which run with
    /// database access anyway) and tests.
    pub fn trusted_for_cli_or_tests(tenant_id: TenantId, user_id: UserId, role: Role) -> Self {
        Self {
            tenant_id,
            user_id,
            role,
        }
    }

    /// A scope for the server's own maintenance of one tenant (retention): an admin scope
    /// acting as no user.
    pub fn for_maintenance(tenant_id: TenantId) -> Self {
        Self {
            tenant_id,
            user_id: UserId::from_uuid(uuid::Uuid::nil()),
            role: Role::Admin,
        }
    }

    /// The tenant every operation of this scope is confined to.
    pub fn tenant_id(&self) -> TenantId {
        self.tenant_id
    }

    /// The acting user.
    pub fn user_id(&self) -> UserId {
        self.user_id
    }

    /// The acting user's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Whether the acting user administers the tenant.
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}
