//! The routing figures of `GET /v1/analytics/routing`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use switchyard_core::model::RoutingAnalytics;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// The period.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AnalyticsParams {
    /// Start (RFC 3339, inclusive); default: 7 days before `to`.
    pub from: Option<String>,
    /// End (RFC 3339, exclusive); default: now.
    pub to: Option<String>,
    /// `hour` or `day`: also the figures of each hour or day of the period (whole UTC hours
    /// or days; the first and last may be partial), as `series` (at most 400 of them).
    pub bucket: Option<String>,
}

/// The figures of one hour or day of the period.
#[derive(Debug, Serialize, ToSchema)]
pub struct SeriesFigures {
    /// Its start.
    pub from: DateTime<Utc>,
    /// Its end (exclusive; the period's end for the last one).
    pub to: DateTime<Utc>,
    /// Turns stored.
    pub turns: i64,
    /// Share of them the fallback answered because nothing was clear enough or its own
    /// examples matched best.
    pub fallback_rate: Option<f64>,
    /// The whole turn's 95th percentile latency.
    pub latency_p95_ms: Option<f64>,
}

impl From<switchyard_core::model::SeriesPoint> for SeriesFigures {
    fn from(p: switchyard_core::model::SeriesPoint) -> Self {
        Self {
            from: p.from,
            to: p.to,
            turns: p.turns,
            fallback_rate: p.fallback_rate,
            latency_p95_ms: p.latency_p95_ms,
        }
    }
}

/// Turns of one intent.
#[derive(Debug, Serialize, ToSchema)]
pub struct IntentTurns {
    /// The intent (null: none recorded).
    pub intent: Option<String>,
    /// Turns.
    pub turns: i64,
}

/// One agent's figures.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentTurns {
    /// The agent.
    pub agent_id: Uuid,
    /// Its name (null if it was deleted and never failed in the period).
    pub name: Option<String>,
    /// Turns it answered.
    pub turns: i64,
    /// Calls to it that failed.
    pub errors: i64,
}

/// Latency percentiles of whole turns, in milliseconds.
#[derive(Debug, Serialize, ToSchema)]
pub struct Latency {
    /// Median.
    pub p50: Option<f64>,
    /// 95th percentile.
    pub p95: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
}

/// The tenant's routing figures over a period.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoutingFigures {
    /// Start of the period.
    pub from: DateTime<Utc>,
    /// End of the period.
    pub to: DateTime<Utc>,
    /// Turns stored.
    pub turns: i64,
    /// Conversations with a turn in the period.
    pub conversations: i64,
    /// Turns per intent, most first.
    pub by_intent: Vec<IntentTurns>,
    /// Per agent, most turns first.
    pub by_agent: Vec<AgentTurns>,
    /// Mean routing confidence.
    pub mean_confidence: Option<f64>,
    /// Share of turns the fallback agent answered because nothing was clear enough or its
    /// own examples matched best.
    pub fallback_rate: Option<f64>,
    /// Failed agent calls (failovers included) over all agent calls.
    pub agent_error_rate: Option<f64>,
    /// Whole-turn latency.
    pub latency_ms: Latency,
    /// Per hour or day, when `bucket` asked for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub series: Option<Vec<SeriesFigures>>,
}

impl RoutingFigures {
    /// The figures of a period.
    pub fn new(from: DateTime<Utc>, to: DateTime<Utc>, stats: RoutingAnalytics) -> Self {
        Self {
            from,
            to,
            turns: stats.turns,
            conversations: stats.conversations,
            by_intent: stats
                .by_intent
                .into_iter()
                .map(|(intent, turns)| IntentTurns { intent, turns })
                .collect(),
            by_agent: stats
                .by_agent
                .into_iter()
                .map(|a| AgentTurns {
                    agent_id: a.agent_id.as_uuid(),
                    name: a.name,
                    turns: a.turns,
                    errors: a.errors,
                })
                .collect(),
            mean_confidence: stats.mean_confidence,
            fallback_rate: stats.fallback_rate,
            agent_error_rate: stats.agent_error_rate,
            latency_ms: Latency {
                p50: stats.latency_ms[0],
                p95: stats.latency_ms[1],
                p99: stats.latency_ms[2],
            },
            series: None,
        }
    }
}
