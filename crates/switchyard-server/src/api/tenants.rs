//! Tenants (the platform operator's).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use switchyard_core::model::Tenant;
use utoipa::ToSchema;
use uuid::Uuid;

use super::UserOut;

/// A tenant.
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantOut {
    /// Its id.
    pub id: Uuid,
    /// Its unique slug (used at login).
    pub slug: String,
    /// Its name.
    pub name: String,
    /// `active` or `suspended`.
    #[schema(example = "active")]
    pub status: String,
    /// Per-tenant overrides of the global settings.
    #[schema(value_type = Object)]
    pub settings: serde_json::Value,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

impl From<Tenant> for TenantOut {
    fn from(t: Tenant) -> Self {
        Self {
            id: t.id.as_uuid(),
            slug: t.slug,
            name: t.name,
            status: t.status.as_str().into(),
            settings: serde_json::to_value(&t.settings).unwrap_or_default(),
            created_at: t.created_at,
        }
    }
}

/// A new tenant, optionally with its first admin.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    /// 2 to 63 of a-z, 0-9 and `-`, starting with a letter or digit.
    pub slug: String,
    /// A display name.
    pub name: String,
    /// Initial settings.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub settings: Option<serde_json::Map<String, serde_json::Value>>,
    /// The first admin's e-mail address.
    pub admin_email: Option<String>,
    /// The first admin's password (at least 12 characters).
    pub admin_password: Option<String>,
}

/// The tenant created, with its first admin if one was asked for.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedTenant {
    #[serde(flatten)]
    /// The tenant.
    pub tenant: TenantOut,
    /// The first admin.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin: Option<UserOut>,
}

/// A change to a tenant.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchTenant {
    /// A new name.
    pub name: Option<String>,
    /// `active` or `suspended`.
    pub status: Option<String>,
    /// Settings to change: each key given replaces that key, `null` removes it.
    #[schema(value_type = Option<Object>)]
    pub settings: Option<serde_json::Map<String, serde_json::Value>>,
}
