//! The shapes of the v1 API: what requests carry and answers show, one file per area. They
//! are the contract (docs/architecture.md), kept apart from the domain types so that a
//! change inside cannot change the API by accident, and they carry the OpenAPI schemas.

use serde::{Deserialize, Deserializer, Serialize};
use switchyard_core::page::Page;
use utoipa::{IntoParams, ToSchema};

mod agents;
mod analytics;
mod chat;
mod conversations;
mod routing;
mod tenants;
mod users;

pub use agents::*;
pub use analytics::*;
pub use chat::*;
pub use conversations::*;
pub use routing::*;
pub use tenants::*;
pub use users::*;

/// A page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct List<T> {
    /// The rows.
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

impl<T> List<T> {
    /// The API form of a store page.
    pub fn from_page<D>(page: Page<D>, f: impl FnMut(D) -> T) -> Self {
        let next_cursor = page.next.map(|c| c.encode());
        Self {
            items: page.items.into_iter().map(f).collect(),
            next_cursor,
        }
    }
}

/// Reads a field that may be absent (`None`), null (`Some(None)`) or set.
pub fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Page parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PageParams {
    /// Rows per page (1 to 100, default 20; more is clamped to 100).
    pub limit: Option<String>,
    /// Where the previous page ended.
    pub cursor: Option<String>,
}

/// Health of the service.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or what is wrong.
    pub status: &'static str,
}
