//! Typed ids. Every id is a UUID v7 (time-ordered), wrapped so that a tenant id can never
//! be passed where a user id is expected.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new, time-ordered (v7) id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// Wraps an existing UUID.
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// The UUID inside.
            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl From<Uuid> for $name {
            fn from(uuid: Uuid) -> Self {
                Self(uuid)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Uuid {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::from_str(s).map(Self)
            }
        }
    };
}

id_type!(
    /// A tenant (a company using the platform).
    TenantId
);
id_type!(
    /// A user of one tenant.
    UserId
);
id_type!(
    /// An agent registered by one tenant.
    AgentId
);
id_type!(
    /// A conversation of one user.
    ConversationId
);
id_type!(
    /// One turn of a conversation: the user's message and the agent's answer.
    MessageId
);
id_type!(
    /// An API key of one user.
    ApiKeyId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_are_time_ordered_and_round_trip_through_text() {
        let a = ConversationId::new();
        let b = ConversationId::new();
        assert!(a < b, "v7 ids made later sort later");
        let parsed: ConversationId = a.to_string().parse().unwrap();
        assert_eq!(parsed, a);
        assert_eq!(a.as_uuid().get_version_num(), 7);
    }
}
