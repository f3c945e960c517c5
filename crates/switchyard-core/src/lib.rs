//! Switchyard's domain: typed ids, roles, the resources
//! (tenants, users, agents, conversations, turns) and the routing engine.
//!
//! This crate does no IO: no database, no HTTP. The store, the agents and the server
//! build on it.

pub mod agent_config;
pub mod ids;
pub mod model;
pub mod page;
pub mod role;
pub mod routing;
pub mod settings;

pub use ids::{AgentId, ApiKeyId, ConversationId, MessageId, TenantId, UserId};
pub use role::Role;
