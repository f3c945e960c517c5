//! Who may reach what: the tenant scope every read and write of tenant-owned data takes, and
//! the operator's proof that the platform-wide calls take.
//!
//! Neither can be made outside this crate. An [`OperatorScope`] comes only from opening a
//! store ([`crate::connect`], or a backend's `open`): whoever holds the database is the
//! platform's operator. A [`TenantScope`] is issued only by an [`OperatorScope`]: by the
//! authentication look-ups ([`crate::Store::find_principal`] and the others), for the user a
//! verified credential names, with the role as stored; or by
//! [`OperatorScope::admin_of`] and [`OperatorScope::act_as`], for the operator's own work
//! inside a tenant (the command line, retention, imports, tests). Code that holds neither
//! cannot name a tenant:
//!
//! ```compile_fail
//! // No constructor is public: a scope cannot be made up.
//! let scope = switchyard_store::TenantScope::new(
//!     switchyard_core::TenantId::new(),
//!     switchyard_core::UserId::new(),
//!     switchyard_core::Role::Admin,
//! );
//! ```
//!
//! ```compile_fail
//! // Nor can its fields be written.
//! let scope = switchyard_store::TenantScope {
//!     tenant_id: switchyard_core::TenantId::new(),
//!     user_id: switchyard_core::UserId::new(),
//!     role: switchyard_core::Role::Admin,
//! };
//! ```
//!
//! ```compile_fail
//! // Nor can the operator's proof.
//! let operator = switchyard_store::OperatorScope { _private: () };
//! ```
//!
//! The way that compiles goes through the operator's proof, which only opening a store
//! hands out:
//!
//! ```
//! # async fn example() -> switchyard_store::StoreResult<()> {
//! let opened = switchyard_store::connect(&switchyard_store::StoreConfig::new("sqlite::memory:")).await?;
//! let scope = opened.operator.admin_of(switchyard_core::TenantId::new());
//! assert!(scope.is_admin());
//! # Ok(())
//! # }
//! ```

use switchyard_core::{Role, TenantId, UserId};

/// Who is acting, and in which tenant. Every store operation on tenant-owned data takes
/// one, and the tenant of that operation is always [`TenantScope::tenant_id`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantScope {
    tenant_id: TenantId,
    user_id: UserId,
    role: Role,
}

impl TenantScope {
    /// Only this crate issues scopes: see the module's documentation.
    pub(crate) fn new(tenant_id: TenantId, user_id: UserId, role: Role) -> Self {
        Self {
            tenant_id,
            user_id,
            role,
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

/// The proof of acting as the platform's operator: tenants, server secrets, and the
/// authentication look-ups that issue [`TenantScope`]s take it. Made only by opening a store,
/// once per store; clone it to hand the power on, deliberately.
#[derive(Clone)]
pub struct OperatorScope {
    _private: (),
}

impl std::fmt::Debug for OperatorScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OperatorScope")
    }
}

impl OperatorScope {
    /// Only opening a store makes one.
    pub(crate) fn new() -> Self {
        Self { _private: () }
    }

    /// The operator acting inside `tenant` as its admin, as no user: the command line,
    /// retention, imports.
    pub fn admin_of(&self, tenant: TenantId) -> TenantScope {
        TenantScope::new(tenant, UserId::from_uuid(uuid::Uuid::nil()), Role::Admin)
    }

    /// The operator acting as a given user of `tenant` with `role`, without that user's
    /// credential: for the operator's tools and tests. Requests get their scopes from the
    /// authentication look-ups instead.
    pub fn act_as(&self, tenant: TenantId, user: UserId, role: Role) -> TenantScope {
        TenantScope::new(tenant, user, role)
    }
}
