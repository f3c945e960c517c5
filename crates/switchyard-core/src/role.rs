//! What a user may do within their tenant.

use serde::{Deserialize, Serialize};

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
