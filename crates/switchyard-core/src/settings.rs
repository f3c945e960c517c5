//! Per-tenant settings: overrides of the global configuration kept in `tenants.settings`.

use serde::{Deserialize, Serialize};

/// A tenant's overrides. A value set here wins over the global one, higher or lower;
/// an absent value means "use the global setting".
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantSettings {
    /// The most conversations one user may have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_conversations_per_user: Option<i64>,
    /// The most conversations the tenant may have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_conversations_per_tenant: Option<i64>,
    /// The most agents the tenant may have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_agents: Option<i64>,
    /// The most users the tenant may have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_users: Option<i64>,
    /// The most API keys the tenant may have (revoked ones included until deleted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_api_keys: Option<i64>,
    /// How many days turns are kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_days: Option<i64>,
    /// Below this routing confidence the fallback agent answers (unset: the threshold
    /// fitted to the tenant's own examples, see `target_false_fallback`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_confidence: Option<f64>,
    /// The share of answerable messages the fitted fallback threshold lets fall back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_false_fallback: Option<f64>,
    /// `false` routes the tenant without the in-process sentence encoder (lexical only),
    /// even where the server has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoder: Option<bool>,
    /// When the two best candidates are closer than this, the fallback agent answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_margin: Option<f64>,
    /// How far ahead another agent must be to take a follow-up from the conversation's
    /// last agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switch_margin: Option<f64>,
    /// Requests per second the tenant may make (0 = unlimited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_per_second: Option<u32>,
    /// How many requests may come at once above the rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_burst: Option<u32>,
    /// The most agent calls of the tenant running at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_inflight_agent_calls: Option<u32>,
    /// The intent analyzer (`lexical`, `llm`, `embedding`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analyzer: Option<String>,
    /// The lexical confidence band `[low, high)` in which the `llm` or `embedding` analyzer
    /// is asked; outside it the lexical decision stands (so most turns call no model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cascade_band: Option<[f64; 2]>,
    /// The tenant's own chat model for the `llm` analyzer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llm: Option<ModelEndpoint>,
    /// The tenant's own embeddings model for the `embedding` analyzer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedding: Option<ModelEndpoint>,
    /// The environment variables this tenant's `openai` agents may name as `api_key_env`,
    /// beyond those every tenant may (`SWITCHYARD_AGENT_KEY_ENVS`). Only the operator sets
    /// settings, so a tenant admin can never make an agent send a key the operator did not
    /// give that tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_key_envs: Option<Vec<String>>,
    /// An OTLP/HTTP base URL that gets this tenant's own trace spans (posted to
    /// `…/v1/traces`), besides the operator's collector; only while the server exports
    /// traces. Called under the same address rules as agents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otlp_endpoint: Option<String>,
}

/// An OpenAI-compatible model endpoint. The API key is read from the environment variable
/// named here; it is never stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelEndpoint {
    /// The API's base URL (`…/v1`).
    pub base_url: String,
    /// The model.
    pub model: String,
    /// The environment variable that holds the API key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
    /// How long a call may take before the lexical decision is used instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

impl ModelEndpoint {
    /// Checks the URL, the model and the variable name.
    pub fn validate(&self, name: &'static str) -> Result<(), BadSetting> {
        let bad = |problem: String| BadSetting { name, problem };
        crate::agent_config::check_url("base_url", &self.base_url).map_err(bad)?;
        if self.model.trim().is_empty() {
            return Err(bad("`model` must not be empty".into()));
        }
        if let Some(var) = &self.api_key_env {
            crate::agent_config::check_key_env(var)
                .map_err(|e| bad(format!("`api_key_env`: {e}")))?;
        }
        if self.timeout_ms.is_some_and(|t| t == 0 || t > 60_000) {
            return Err(bad("`timeout_ms` must be between 1 and 60000".into()));
        }
        Ok(())
    }
}

/// A setting whose value is out of range.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("setting `{name}`: {problem}")]
pub struct BadSetting {
    /// The setting.
    pub name: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

/// The analyzers a tenant may choose.
pub const ANALYZERS: &[&str] = &["lexical", "llm", "embedding"];

impl TenantSettings {
    /// Checks every value is in range.
    pub fn validate(&self) -> Result<(), BadSetting> {
        fn at_least(name: &'static str, v: Option<i64>, min: i64) -> Result<(), BadSetting> {
            match v {
                Some(v) if v < min => Err(BadSetting {
                    name,
                    problem: format!("must be at least {min}, got {v}"),
                }),
                _ => Ok(()),
            }
        }
        fn unit(name: &'static str, v: Option<f64>) -> Result<(), BadSetting> {
            match v {
                Some(v) if !(0.0..=1.0).contains(&v) => Err(BadSetting {
                    name,
                    problem: format!("must be between 0 and 1, got {v}"),
                }),
                _ => Ok(()),
            }
        }
        at_least(
            "max_conversations_per_user",
            self.max_conversations_per_user,
            0,
        )?;
        at_least(
            "max_conversations_per_tenant",
            self.max_conversations_per_tenant,
            0,
        )?;
        at_least("max_agents", self.max_agents, 0)?;
        at_least("max_users", self.max_users, 1)?;
        at_least("max_api_keys", self.max_api_keys, 0)?;
        at_least("retention_days", self.retention_days, 1)?;
        unit("min_confidence", self.min_confidence)?;
        if let Some(t) = self.target_false_fallback
            && !(t > 0.0 && t <= 0.5)
        {
            return Err(BadSetting {
                name: "target_false_fallback",
                problem: format!("must be above 0 and at most 0.5, got {t}"),
            });
        }
        unit("min_margin", self.min_margin)?;
        unit("switch_margin", self.switch_margin)?;
        if let Some([low, high]) = self.cascade_band
            && !(0.0..=1.0).contains(&low) | !(0.0..=1.0).contains(&high) | (low > high)
        {
            return Err(BadSetting {
                name: "cascade_band",
                problem: format!(
                    "must be [low, high] with 0 <= low <= high <= 1, got [{low}, {high}]"
                ),
            });
        }
        if let Some(llm) = &self.llm {
            llm.validate("llm")?;
        }
        if let Some(embedding) = &self.embedding {
            embedding.validate("embedding")?;
        }
        if let Some(url) = &self.otlp_endpoint {
            crate::agent_config::check_url("otlp_endpoint", url).map_err(|problem| BadSetting {
                name: "otlp_endpoint",
                problem,
            })?;
        }
        for var in self.agent_key_envs.iter().flatten() {
            crate::agent_config::check_key_env(var).map_err(|problem| BadSetting {
                name: "agent_key_envs",
                problem,
            })?;
        }
        if self.max_inflight_agent_calls == Some(0) {
            return Err(BadSetting {
                name: "max_inflight_agent_calls",
                problem: "must be at least 1".into(),
            });
        }
        if let Some(a) = &self.analyzer
            && !ANALYZERS.contains(&a.as_str())
        {
            return Err(BadSetting {
                name: "analyzer",
                problem: format!("must be one of {}, got {a:?}", ANALYZERS.join(", ")),
            });
        }
        Ok(())
    }

    /// Applies a JSON merge of `patch`: each key given replaces that key, `null` removes
    /// it. Unknown keys and values of the wrong type are refused.
    pub fn merged(
        &self,
        patch: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Self, BadSetting> {
        let mut current = match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(map)) => map,
            _ => serde_json::Map::new(),
        };
        for (key, value) in patch {
            if value.is_null() {
                current.remove(key);
            } else {
                current.insert(key.clone(), value.clone());
            }
        }
        let merged: Self =
            serde_json::from_value(serde_json::Value::Object(current)).map_err(|e| BadSetting {
                name: "settings",
                problem: e.to_string(),
            })?;
        merged.validate()?;
        Ok(merged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn a_merge_replaces_given_keys_and_null_removes() {
        let s = TenantSettings::default()
            .merged(&obj(
                json!({"min_confidence": 0.4, "rate_limit_per_second": 5}),
            ))
            .unwrap();
        assert_eq!(s.min_confidence, Some(0.4));
        let s = s
            .merged(&obj(json!({"min_confidence": null, "retention_days": 30})))
            .unwrap();
        assert_eq!(s.min_confidence, None);
        assert_eq!(s.rate_limit_per_second, Some(5));
        assert_eq!(s.retention_days, Some(30));
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        let base = TenantSettings::default();
        assert!(base.merged(&obj(json!({"colour": "blue"}))).is_err());
        assert_eq!(
            base.merged(&obj(json!({"min_margin": 2.0})))
                .unwrap_err()
                .name,
            "min_margin"
        );
        assert_eq!(
            base.merged(&obj(json!({"analyzer": "magic"})))
                .unwrap_err()
                .name,
            "analyzer"
        );
        assert!(base.merged(&obj(json!({"retention_days": "ten"}))).is_err());
        for bad in [
            "otel.example",
            "ftp://otel.example",
            "http://169.254.169.254/",
        ] {
            assert_eq!(
                base.merged(&obj(json!({"otlp_endpoint": bad})))
                    .unwrap_err()
                    .name,
                "otlp_endpoint",
                "{bad}"
            );
        }
        let good = base
            .merged(&obj(json!({"otlp_endpoint": "https://otel.acme.example"})))
            .unwrap();
        assert_eq!(
            good.otlp_endpoint.as_deref(),
            Some("https://otel.acme.example")
        );
    }
}
