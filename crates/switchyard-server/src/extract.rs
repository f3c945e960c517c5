//! Extractors whose rejections are problem documents, never axum's plain-text answers.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use switchyard_core::page::{Cursor, DEFAULT_LIMIT, MAX_LIMIT, PageRequest};

use crate::error::ApiError;

/// A JSON body: syntax errors are `400`, values of the wrong type or unknown fields `422`,
/// text with a NUL character `422` (naming the field), a missing JSON content type `415`, a
/// body over the limit `413`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let ApiJsonWithBytes(value, _) = ApiJsonWithBytes::from_request(req, state).await?;
        Ok(Self(value))
    }
}

/// Refuses a body whose text holds a NUL character (U+0000) anywhere — a value or a key —
/// naming where: no text field of the API may hold one (PostgreSQL's text cannot), so the
/// rule is the same on both databases and for every field. Only bodies that spell the escape
/// `\u0000` are looked into.
fn refuse_nul(bytes: &[u8]) -> Result<(), ApiError> {
    if !bytes.windows(6).any(|w| w == b"\\u0000") {
        return Ok(());
    }
    // A body that does not parse is refused as such afterwards.
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return Ok(());
    };
    match nul_at(&value, String::new()) {
        Some(path) => Err(ApiError::unprocessable(format!(
            "`{path}` must not contain NUL characters (U+0000)"
        ))),
        None => Ok(()),
    }
}

/// Where in `value` a text with a NUL character is, as `field.inner[2]`.
fn nul_at(value: &serde_json::Value, path: String) -> Option<String> {
    use serde_json::Value;
    let join = |key: &str| {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    match value {
        Value::String(s) if s.contains('\0') => Some(if path.is_empty() {
            "body".to_owned()
        } else {
            path
        }),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| nul_at(item, format!("{path}[{i}]"))),
        Value::Object(fields) => fields.iter().find_map(|(key, item)| {
            if key.contains('\0') {
                Some(join(&key.replace('\0', "\\u0000")))
            } else {
                nul_at(item, join(key))
            }
        }),
        _ => None,
    }
}

/// Query parameters: anything unexpected or malformed is a `400`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Self(value)),
            Err(rejection) => Err(query_rejection(rejection)),
        }
    }
}

fn query_rejection(rejection: QueryRejection) -> ApiError {
    ApiError::bad_request(rejection.body_text())
}

/// A path parameter (an id). An id that does not parse names nothing: `404`, the same
/// answer as an id that exists nowhere or in another tenant.
#[derive(Debug, Clone, Copy)]
pub struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Self(value)),
            Err(PathRejection::FailedToDeserializePathParams(_)) => Err(ApiError::not_found()),
            Err(other) => Err(ApiError::internal(other.body_text())),
        }
    }
}

/// Reads `limit` and `cursor` into a page request: `limit` must be a whole number of at
/// least 1 (more than 100 is clamped to 100; absent means 20), and `cursor` must be one
/// this service handed out.
pub fn page_request(limit: Option<&str>, cursor: Option<&str>) -> Result<PageRequest, ApiError> {
    let limit = match limit {
        None => DEFAULT_LIMIT,
        Some(text) => match text.parse::<u64>() {
            Ok(0) | Err(_) => {
                return Err(ApiError::bad_request(format!(
                    "`limit` must be a whole number from 1 to {MAX_LIMIT}, got {text:?}"
                )));
            }
            Ok(n) => n.min(u64::from(MAX_LIMIT)) as u32,
        },
    };
    match cursor {
        None => Ok(PageRequest::first(limit)),
        Some(text) => {
            let cursor =
                Cursor::decode(text).map_err(|_| ApiError::bad_request("`cursor` is malformed"))?;
            Ok(PageRequest::after(limit, cursor))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_cursors() {
        assert_eq!(page_request(None, None).unwrap().limit, 20);
        assert_eq!(page_request(Some("500"), None).unwrap().limit, 100);
        assert_eq!(page_request(Some("1"), None).unwrap().limit, 1);
        for bad in ["0", "-1", "1.5", "ten", ""] {
            assert_eq!(
                page_request(Some(bad), None).unwrap_err().status,
                400,
                "{bad}"
            );
        }
        assert_eq!(
            page_request(None, Some("garbage!")).unwrap_err().status,
            400
        );
        let cursor = Cursor::after_id(uuid::Uuid::now_v7()).encode();
        assert!(page_request(None, Some(&cursor)).unwrap().after.is_some());
    }
}

/// A JSON body together with its raw bytes (to fingerprint a request for idempotency),
/// with the same rejections as [`ApiJson`].
#[derive(Debug, Clone)]
pub struct ApiJsonWithBytes<T>(pub T, pub axum::body::Bytes);

impl<S, T> FromRequest<S> for ApiJsonWithBytes<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|mime| {
                let mime = mime.trim().to_ascii_lowercase();
                mime == "application/json"
                    || (mime.starts_with("application/") && mime.ends_with("+json"))
            });
        if !is_json {
            return Err(ApiError::unsupported_media_type());
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| {
                if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::too_large()
                } else {
                    ApiError::bad_request(e.body_text())
                }
            })?;
        refuse_nul(&bytes)?;
        let value = serde_json::from_slice::<T>(&bytes).map_err(|e| match e.classify() {
            serde_json::error::Category::Data => ApiError::unprocessable(format!(
                "Failed to deserialize the JSON body into the target type: {e}"
            )),
            _ => ApiError::bad_request(format!("Failed to parse the request body as JSON: {e}")),
        })?;
        Ok(Self(value, bytes))
    }
}
