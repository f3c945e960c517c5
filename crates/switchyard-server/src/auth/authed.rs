//! [`Authed`]: a principal together with what the request reads first, loaded in the round
//! trip that authenticates it where the store can (PostgreSQL's `switchyard_authed_…`
//! functions): a conversation page, the caller's own conversation list, a chat turn's
//! context. That saves a round trip on the hottest reads without any handler ordering
//! authentication and validation by hand: a handler names `Authed<ItsRead>`, and the read's
//! type says how it is parsed from the request and what it loads ([`AuthedRead`]).
//!
//! Whatever the request gets wrong is answered after its credential is checked, as on every
//! other route: a bad token is `401` (a suspended tenant `403`) before a malformed cursor's
//! `400`.

use std::future::Future;

use axum::extract::{FromRequest, Request};
use switchyard_store::{FirstRead, FirstReadResult, StoreResult};

use super::{Principal, authenticate, bearer, peer, precheck};
use crate::app::AppState;
use crate::error::ApiError;

/// What a handler reads with its authentication.
pub trait AuthedRead: Sized + Send {
    /// What the request asks for, from its path, query and body.
    type Asked: Send;

    /// Parses the request; a refusal is answered after the credential's own answer.
    fn parse(
        req: Request,
        state: &AppState,
    ) -> impl Future<Output = Result<Self::Asked, ApiError>> + Send;

    /// The read to make with the authentication, if any.
    fn first_read(asked: &Self::Asked, state: &AppState) -> Option<FirstRead>;

    /// The value from what was asked and, when [`first_read`](Self::first_read) named one,
    /// what it read in the principal's scope.
    fn finish(
        asked: Self::Asked,
        principal: &Principal,
        read: Option<StoreResult<FirstReadResult>>,
    ) -> Result<Self, ApiError>;
}

/// An authenticated principal and what the request read first.
#[derive(Debug)]
pub struct Authed<R> {
    /// Who is calling.
    pub principal: Principal,
    /// What was read.
    pub read: R,
}

impl<R: AuthedRead> FromRequest<AppState> for Authed<R> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = bearer(req.headers())
            .ok_or_else(ApiError::unauthorized)?
            .to_owned();
        let address = peer(req.extensions());
        // No body is read for a request whose credential cannot be good, and none for longer
        // than a client may take to send its headers.
        let credential = precheck(state, &token, address)?;
        let limit = std::time::Duration::from_millis(state.config.header_read_timeout_ms);
        let parsed = tokio::time::timeout(limit, R::parse(req, state))
            .await
            .map_err(|_| {
                ApiError::custom(
                    axum::http::StatusCode::REQUEST_TIMEOUT,
                    "request-timeout",
                    "Request timeout",
                    "the request body did not arrive in time",
                )
            })?;
        let asked = match parsed {
            Ok(asked) => asked,
            Err(refusal) => {
                authenticate(state, &credential, None).await?;
                return Err(refusal);
            }
        };
        let first_read = R::first_read(&asked, state);
        let (principal, read) = authenticate(state, &credential, first_read.as_ref()).await?;
        let read = R::finish(asked, &principal, read)?;
        Ok(Self { principal, read })
    }
}
