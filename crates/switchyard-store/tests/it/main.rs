//! The store's integration tests: one conformance story run on SQLite and PostgreSQL, and
//! the PostgreSQL-only checks of row-level security, roles, the catalog, query plans and
//! single-shard statements (each held to one tenant, for Citus).

#![expect(clippy::unwrap_used, reason = "tests fail by panicking")]

mod common;
mod conformance;
mod erasure;
mod isolation;
mod legacy;
mod pool_reuse;
mod postgres_rls;
mod property;
mod single_shard;
mod warm_connections;
