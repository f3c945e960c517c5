//! The HTTP API, driven in-process through the router (and, in `e2e`, through a real
//! socket).

#![expect(clippy::unwrap_used, reason = "tests fail by panicking")]

mod agent_server;
mod auth;
mod bad_input;
mod chat;
mod common;
mod integrations;
mod isolation;
mod legacy;
mod openai_threads;
mod openapi;
mod operations;
mod pagination;
mod resources;
mod roles;
mod routing_lab;
mod sessions;
