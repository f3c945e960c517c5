//! Users, logins and API keys of a tenant.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use switchyard_core::model::{ApiKey, User};
use utoipa::ToSchema;
use uuid::Uuid;

use super::nullable;

/// A user of the tenant.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserOut {
    /// Its id.
    pub id: Uuid,
    /// Its e-mail address.
    pub email: String,
    /// A name to show.
    pub display_name: Option<String>,
    /// `member` or `admin`.
    #[schema(example = "member")]
    pub role: String,
    /// `active` or `disabled`.
    #[schema(example = "active")]
    pub status: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

impl From<User> for UserOut {
    fn from(u: User) -> Self {
        Self {
            id: u.id.as_uuid(),
            email: u.email,
            display_name: u.display_name,
            role: u.role.as_str().into(),
            status: u.status.as_str().into(),
            created_at: u.created_at,
        }
    }
}

/// A new user.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// Unique within the tenant.
    pub email: String,
    /// A name to show.
    pub display_name: Option<String>,
    /// `member` or `admin`.
    pub role: String,
    /// At least 12 characters; without one the user signs in only with tokens or keys.
    pub password: Option<String>,
}

/// A change to a user.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchUser {
    /// A new name (`null` clears it).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub display_name: Option<Option<String>>,
    /// `member` or `admin`.
    pub role: Option<String>,
    /// `active` or `disabled`.
    pub status: Option<String>,
    /// A new password.
    pub password: Option<String>,
}

/// Who is asking.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    /// The user.
    pub user: MeUser,
    /// Their tenant.
    pub tenant: MeTenant,
}

/// The user in `/v1/me`.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeUser {
    /// Its id.
    pub id: Uuid,
    /// Its e-mail address.
    pub email: String,
    /// A name to show.
    pub display_name: Option<String>,
    /// `member` or `admin`.
    pub role: String,
    /// `active`.
    pub status: String,
}

/// The tenant in `/v1/me`.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeTenant {
    /// Its id.
    pub id: Uuid,
    /// Its slug.
    pub slug: String,
    /// Its name.
    pub name: String,
    /// `active`.
    pub status: String,
}

/// A login.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    /// The tenant's slug.
    pub tenant: String,
    /// The user's e-mail address.
    pub email: String,
    /// The password.
    pub password: String,
}

/// A token.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenOut {
    /// The JWT to send as `Authorization: Bearer …`.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until it expires.
    pub expires_in: u64,
}

/// An API key (without its secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyOut {
    /// Its id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// The user it acts as.
    pub user_id: Uuid,
    /// The first 12 characters of the secret, to recognise it.
    pub prefix: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was last used (to the minute).
    pub last_used_at: Option<DateTime<Utc>>,
}

impl From<ApiKey> for ApiKeyOut {
    fn from(k: ApiKey) -> Self {
        Self {
            id: k.id.as_uuid(),
            name: k.name,
            user_id: k.user_id.as_uuid(),
            prefix: k.prefix,
            created_at: k.created_at,
            last_used_at: k.last_used_at,
        }
    }
}

/// A new API key, with its secret shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedApiKey {
    /// Its id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// The user it acts as.
    pub user_id: Uuid,
    /// The first 12 characters of the secret.
    pub prefix: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// The key (`sy_…`): shown only now.
    pub secret: String,
}

/// A new API key.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    /// A name to recognise it by.
    pub name: String,
    /// The user of the tenant it acts as (default: the caller).
    pub user_id: Option<Uuid>,
}
