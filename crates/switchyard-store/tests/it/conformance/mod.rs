//! The store's behaviour, the same on both backends: create, read, list, update and delete
//! of every resource, turns stored with their conversation, limits, pagination,
//! idempotency records, analytics and retention.

mod conversations;
mod operations;
mod requests;
mod resources;
