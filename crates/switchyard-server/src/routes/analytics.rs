//! The tenant's routing figures, for its admins.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, TimeDelta, Utc};

use crate::api::{AnalyticsParams, RoutingFigures};
use crate::app::AppState;
use crate::auth::Admin;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::ApiQuery;

fn instant(name: &str, value: Option<&str>) -> ApiResult<Option<DateTime<Utc>>> {
    value
        .map(|v| {
            DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| {
                    ApiError::bad_request(format!(
                        "`{name}` must be an RFC 3339 time, e.g. 2026-01-31T00:00:00Z"
                    ))
                })
        })
        .transpose()
}

/// The tenant's routing figures for a period (default: the last 7 days): turns,
/// conversations, turns by intent and by agent, mean confidence, fallback and agent error
/// rates, latency percentiles.
#[utoipa::path(
    get,
    path = "/v1/analytics/routing",
    tag = "analytics",
    security(("bearer" = [])),
    params(AnalyticsParams),
    responses(
        (status = 200, body = RoutingFigures),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_routing_analytics(
    Admin(admin): Admin,
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<AnalyticsParams>,
) -> ApiResult<Json<RoutingFigures>> {
    let to = instant("to", params.to.as_deref())?.unwrap_or_else(Utc::now);
    let from = instant("from", params.from.as_deref())?.unwrap_or(to - TimeDelta::days(7));
    if from > to {
        return Err(ApiError::bad_request("`from` must not be after `to`"));
    }
    let step = match params.bucket.as_deref() {
        None => None,
        Some("hour") => Some(TimeDelta::hours(1)),
        Some("day") => Some(TimeDelta::days(1)),
        Some(_) => return Err(ApiError::bad_request("`bucket` is `hour` or `day`")),
    };
    if let Some(step) = step
        && (to - from).num_seconds().unsigned_abs() / step.num_seconds().unsigned_abs().max(1) + 1
            > MAX_BUCKETS
    {
        return Err(ApiError::bad_request(format!(
            "at most {MAX_BUCKETS} buckets: a shorter period, or `day`"
        )));
    }
    let stats = state
        .store
        .routing_analytics(&admin.scope, from, to)
        .await?;
    let mut figures = RoutingFigures::new(from, to, stats);
    if let Some(step) = step {
        let series = state
            .store
            .routing_series(&admin.scope, from, to, step)
            .await?;
        figures.series = Some(series.into_iter().map(Into::into).collect());
    }
    Ok(Json(figures))
}

/// The most hours or days one request's series has.
const MAX_BUCKETS: u64 = 400;
