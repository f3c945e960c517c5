//! The intent analyzers, the routing pipeline's first stage: the in-process lexical one,
//! which always runs first (microseconds, no network), and the model-backed `llm` and
//! `embedding` ones, which the cascade ([`super::plan`]) asks in the ambiguous band.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde::Deserialize;
use switchyard_agents::Invokers;
use switchyard_core::routing::{Analysis, Candidate, Intent, Method};
use switchyard_core::settings::ModelEndpoint;
use switchyard_core::{AgentId, TenantId};

use super::TenantRouting;

/// How many of the lexical analyzer's best candidates a model chooses among.
pub const MODEL_CANDIDATES: usize = 10;

/// What an analyzer works from.
pub struct AnalyzerInput<'a> {
    /// The tenant.
    pub tenant: TenantId,
    /// Its agents and index.
    pub routing: &'a TenantRouting,
    /// The message.
    pub message: &'a str,
    /// The verdict of the pipeline's first analyzer (the lexical one), which a model-backed
    /// analyzer refines: it chooses among its candidates.
    pub lexical: Option<&'a Analysis>,
    /// The model to ask (for a model-backed analyzer).
    pub endpoint: Option<&'a ModelEndpoint>,
}

impl<'a> AnalyzerInput<'a> {
    /// What a model-backed analyzer needs: the lexical verdict and the model.
    fn model_stage(&self) -> Result<(&'a Analysis, &'a ModelEndpoint), String> {
        match (self.lexical, self.endpoint) {
            (Some(lexical), Some(endpoint)) => Ok((lexical, endpoint)),
            (None, _) => Err("no lexical verdict to refine".into()),
            (_, None) => Err("no model is configured".into()),
        }
    }
}

/// The analysis stage of the routing pipeline: a message's intent and every candidate
/// agent's calibrated score.
#[async_trait]
pub trait IntentAnalyzer: Send + Sync {
    /// The method its decisions report.
    fn method(&self) -> Method;
    /// Its verdict, or why there is none (the earlier stage's verdict then stands).
    async fn analyze(&self, input: &AnalyzerInput<'_>) -> Result<Analysis, String>;
}

/// The `lexical` analyzer: the tenant's cached in-process index, microseconds and no
/// network. It always runs first, and never fails.
#[derive(Clone, Copy, Debug, Default)]
pub struct LexicalAnalyzer;

impl LexicalAnalyzer {
    /// The analysis, synchronously (it never waits for anything).
    pub fn analyze_now(&self, routing: &TenantRouting, message: &str) -> Analysis {
        routing.index.analyze(message)
    }
}

#[async_trait]
impl IntentAnalyzer for LexicalAnalyzer {
    fn method(&self) -> Method {
        Method::Lexical
    }

    async fn analyze(&self, input: &AnalyzerInput<'_>) -> Result<Analysis, String> {
        Ok(self.analyze_now(input.routing, input.message))
    }
}

fn message_key(
    tenant: TenantId,
    version: i64,
    endpoint: &ModelEndpoint,
    message: &str,
) -> (TenantId, i64, u64) {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    endpoint.base_url.hash(&mut h);
    endpoint.model.hash(&mut h);
    message.hash(&mut h);
    (tenant, version, h.finish())
}

/// The `llm` analyzer: a chat model picks one of the candidate agents and answers
/// `{intent, confidence, agent_id, reasoning}` as JSON. Its choice counts only if it names
/// one of this tenant's candidates; answers are cached per tenant, agent-set version and
/// message.
pub struct LlmAnalyzer {
    outbound: Arc<Invokers>,
    cache: Mutex<HashMap<VerdictKey, Result<Verdict, String>>>,
}

/// A cached verdict's key: tenant, agent-set version, and a hash of the model and message.
type VerdictKey = (TenantId, i64, u64);

#[derive(Clone, Debug)]
struct Verdict {
    agent: AgentId,
    intent: Option<String>,
    confidence: f64,
}

#[derive(Deserialize)]
struct LlmAnswer {
    #[serde(default)]
    intent: Option<String>,
    #[serde(default)]
    confidence: Option<f64>,
    #[serde(default)]
    agent_id: Option<String>,
}

/// Answers remembered at most (then the cache starts again).
const CACHE_ENTRIES: usize = 10_000;

impl LlmAnalyzer {
    /// An analyzer calling models through `outbound`.
    pub fn new(outbound: Arc<Invokers>) -> Self {
        Self {
            outbound,
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn prompt(input: &AnalyzerInput<'_>, candidates: &[AgentId]) -> String {
        let mut prompt = String::from(
            "You route a user's message to the one agent best able to answer it. Answer with a JSON \
             object only: {\"intent\": a short intent label, \"confidence\": a number from 0 to 1, \
             \"agent_id\": the id of the chosen agent (one of the ids below) or null if none fits, \
             \"reasoning\": one short sentence}.\n\nAgents:\n",
        );
        for id in candidates {
            if let Some(agent) = input.routing.profile(*id) {
                let examples: Vec<&str> =
                    agent.examples.iter().take(3).map(String::as_str).collect();
                prompt.push_str(&format!(
                    "- id: {}\n  name: {}\n  description: {}\n  intents: {}\n  examples: {}\n",
                    agent.id,
                    agent.name,
                    agent.description,
                    agent.intents.join(", "),
                    examples.join(" | ")
                ));
            }
        }
        prompt
    }

    fn parse(text: &str, candidates: &[AgentId]) -> Result<Verdict, String> {
        // Some models wrap JSON in a code fence despite being asked not to.
        let trimmed = text
            .trim()
            .trim_start_matches("```json")
            .trim_start_matches("```")
            .trim_end_matches("```")
            .trim();
        let answer: LlmAnswer = serde_json::from_str(trimmed)
            .map_err(|_| "the model's answer is not the JSON asked for".to_string())?;
        let id = answer.agent_id.ok_or("the model chose no agent")?;
        let agent = id
            .parse::<AgentId>()
            .ok()
            .filter(|a| candidates.contains(a))
            .ok_or("the model named an agent that is not one of the candidates")?;
        let confidence = answer
            .confidence
            .filter(|c| c.is_finite())
            .unwrap_or(0.5)
            .clamp(0.0, 1.0);
        Ok(Verdict {
            agent,
            intent: answer
                .intent
                .filter(|i| !i.trim().is_empty())
                .map(|i| i.chars().take(100).collect()),
            confidence,
        })
    }
}

impl std::fmt::Debug for LlmAnalyzer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LlmAnalyzer")
    }
}

impl std::fmt::Debug for EmbeddingAnalyzer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EmbeddingAnalyzer")
    }
}

#[async_trait]
impl IntentAnalyzer for LlmAnalyzer {
    fn method(&self) -> Method {
        Method::Llm
    }

    async fn analyze(&self, input: &AnalyzerInput<'_>) -> Result<Analysis, String> {
        let (lexical, endpoint) = input.model_stage()?;
        let candidates: Vec<AgentId> = lexical
            .candidates
            .iter()
            .take(MODEL_CANDIDATES)
            .map(|c| c.agent_id)
            .collect();
        let key = message_key(input.tenant, input.routing.version, endpoint, input.message);
        let cached = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .cloned();
        let verdict = match cached {
            Some(v) => v,
            None => {
                let text = self
                    .outbound
                    .chat_json(endpoint, &Self::prompt(input, &candidates), input.message)
                    .await
                    .map_err(|e| format!("the model could not answer: {e}"))?;
                let verdict = Self::parse(&text, &candidates);
                let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
                if cache.len() >= CACHE_ENTRIES {
                    cache.clear();
                }
                cache.insert(key, verdict.clone());
                verdict
            }
        }?;
        // The model's pick first, with its confidence; the others keep the lexical order,
        // sharing what is left.
        let rest = 1.0 - verdict.confidence;
        let lexical_rest: f64 = lexical
            .candidates
            .iter()
            .filter(|c| c.agent_id != verdict.agent)
            .map(|c| c.score)
            .sum();
        let mut ranked = vec![Candidate {
            agent_id: verdict.agent,
            score: verdict.confidence,
        }];
        ranked.extend(
            lexical
                .candidates
                .iter()
                .filter(|c| c.agent_id != verdict.agent)
                .map(|c| Candidate {
                    agent_id: c.agent_id,
                    score: if lexical_rest > 0.0 {
                        (c.score / lexical_rest * rest).min(verdict.confidence)
                    } else {
                        0.0
                    },
                }),
        );
        let agent = input.routing.profile(verdict.agent);
        // The model's label counts only if it is one of the tenant's intents or agent
        // names (spelled as the tenant spells it): analytics by intent must not fill with
        // labels the model made up.
        let label = match &verdict.intent {
            None => None,
            Some(label) => Some(
                known_label(input.routing.index.agent_set().agents(), label).ok_or_else(|| {
                    format!(
                        "the model's intent {label:?} is not one of the tenant's intents or agent names"
                    )
                })?,
            ),
        };
        Ok(Analysis {
            analyzer: Method::Llm,
            intent: Intent {
                category: label.or_else(|| {
                    agent
                        .and_then(|a| a.intents.first().cloned())
                        .or_else(|| agent.map(|a| a.name.clone()))
                }),
                confidence: verdict.confidence,
                keywords: lexical.intent.keywords.clone(),
            },
            candidates: ranked,
        })
    }
}

/// `label` as the tenant spells it, if it is one of its agents' intents or names (compared
/// without regard to case).
fn known_label(agents: &[switchyard_core::routing::AgentProfile], label: &str) -> Option<String> {
    let label = label.trim().to_lowercase();
    agents
        .iter()
        .flat_map(|a| a.intents.iter().chain(std::iter::once(&a.name)))
        .find(|known| known.to_lowercase() == label)
        .cloned()
}

/// The `embedding` analyzer: cosine similarity between the message's embedding and each
/// agent's examples (and description), the best example counting; the agents' vectors are
/// cached per tenant and recomputed when the agents change.
pub struct EmbeddingAnalyzer {
    outbound: Arc<Invokers>,
    indexes: Mutex<EmbeddingIndexes>,
    max_bytes: usize,
}

struct EmbeddingIndex {
    version: i64,
    model: (String, String),
    vectors: Vec<(AgentId, Vec<f32>)>,
}

impl EmbeddingIndex {
    fn heap_size_bytes(&self) -> usize {
        self.vectors
            .iter()
            .map(|(_, v)| std::mem::size_of::<(AgentId, Vec<f32>)>() + v.len() * 4)
            .sum::<usize>()
            + self.model.0.len()
            + self.model.1.len()
            + std::mem::size_of::<Self>()
    }
}

/// The tenants' embedding indexes, bounded in memory: the least recently used go first.
#[derive(Default)]
struct EmbeddingIndexes {
    map: HashMap<TenantId, (Arc<EmbeddingIndex>, u64)>,
    bytes: usize,
    clock: u64,
}

fn normalized(mut v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

/// How sharply similarities become probabilities: cosine gaps of a few hundredths are
/// meaningful for sentence embeddings.
const TEMPERATURE: f64 = 0.05;

impl EmbeddingAnalyzer {
    /// An analyzer calling models through `outbound`, keeping at most `max_bytes` of
    /// agents' vectors (the tenant in use stays even if it alone is bigger).
    pub fn new(outbound: Arc<Invokers>, max_bytes: usize) -> Self {
        Self {
            outbound,
            indexes: Mutex::new(EmbeddingIndexes::default()),
            max_bytes,
        }
    }

    async fn index(
        &self,
        input: &AnalyzerInput<'_>,
        endpoint: &ModelEndpoint,
    ) -> Result<Arc<EmbeddingIndex>, String> {
        let model = (endpoint.base_url.clone(), endpoint.model.clone());
        {
            let mut cache = self.indexes.lock().unwrap_or_else(|p| p.into_inner());
            cache.clock += 1;
            let now = cache.clock;
            if let Some((index, last_used)) = cache.map.get_mut(&input.tenant)
                && index.version == input.routing.version
                && index.model == model
            {
                *last_used = now;
                return Ok(index.clone());
            }
        }
        let mut owners = Vec::new();
        let mut texts = Vec::new();
        for agent in input.routing.index.agent_set().agents() {
            let profile = format!("{}: {}", agent.name, agent.description);
            for text in agent
                .examples
                .iter()
                .cloned()
                .chain(std::iter::once(profile))
            {
                owners.push(agent.id);
                texts.push(text);
            }
        }
        let mut vectors = Vec::with_capacity(texts.len());
        for batch in texts.chunks(128) {
            let embedded = self
                .outbound
                .embed(endpoint, batch)
                .await
                .map_err(|e| format!("the embeddings model could not answer: {e}"))?;
            vectors.extend(embedded.into_iter().map(normalized));
        }
        let dims = vectors.first().map_or(0, Vec::len);
        if dims == 0 || vectors.iter().any(|v| v.len() != dims) {
            return Err("the embeddings model answered vectors of different sizes".into());
        }
        let index = Arc::new(EmbeddingIndex {
            version: input.routing.version,
            model,
            vectors: owners.into_iter().zip(vectors).collect(),
        });
        let mut cache = self.indexes.lock().unwrap_or_else(|p| p.into_inner());
        cache.clock += 1;
        let now = cache.clock;
        cache.bytes += index.heap_size_bytes();
        if let Some((old, _)) = cache.map.insert(input.tenant, (index.clone(), now)) {
            cache.bytes -= old.heap_size_bytes();
        }
        while cache.bytes > self.max_bytes && cache.map.len() > 1 {
            let Some(oldest) = cache
                .map
                .iter()
                .filter(|(t, _)| **t != input.tenant)
                .min_by_key(|(_, (_, used))| *used)
                .map(|(t, _)| *t)
            else {
                break;
            };
            if let Some((gone, _)) = cache.map.remove(&oldest) {
                cache.bytes -= gone.heap_size_bytes();
            }
        }
        Ok(index)
    }
}

#[async_trait]
impl IntentAnalyzer for EmbeddingAnalyzer {
    fn method(&self) -> Method {
        Method::Embedding
    }

    async fn analyze(&self, input: &AnalyzerInput<'_>) -> Result<Analysis, String> {
        let (lexical, endpoint) = input.model_stage()?;
        let index = self.index(input, endpoint).await?;
        let query = self
            .outbound
            .embed(endpoint, &[input.message.to_string()])
            .await
            .map_err(|e| format!("the embeddings model could not answer: {e}"))?
            .pop()
            .map(normalized)
            .ok_or("the embeddings model answered nothing")?;
        let dims = index.vectors.first().map_or(0, |(_, v)| v.len());
        if query.len() != dims {
            return Err(format!(
                "the message's embedding has {} dimensions, the agents' {dims}",
                query.len()
            ));
        }
        let mut best: HashMap<AgentId, f64> = HashMap::new();
        for (agent, v) in &index.vectors {
            let cosine: f64 = v.iter().zip(&query).map(|(a, b)| f64::from(a * b)).sum();
            let entry = best.entry(*agent).or_insert(f64::MIN);
            *entry = entry.max(cosine);
        }
        let top = best.values().copied().fold(f64::MIN, f64::max);
        let weights: Vec<(AgentId, f64)> = best
            .iter()
            .map(|(a, s)| (*a, ((s - top) / TEMPERATURE).exp()))
            .collect();
        let total: f64 = weights.iter().map(|(_, w)| w).sum();
        let mut candidates: Vec<Candidate> = weights
            .into_iter()
            .map(|(agent_id, w)| Candidate {
                agent_id,
                score: w / total,
            })
            .collect();
        candidates.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then(a.agent_id.cmp(&b.agent_id))
        });
        let chosen = candidates.first().ok_or("the tenant has no agent")?;
        let agent = input.routing.profile(chosen.agent_id);
        Ok(Analysis {
            analyzer: Method::Embedding,
            intent: Intent {
                category: agent
                    .and_then(|a| a.intents.first().cloned())
                    .or_else(|| agent.map(|a| a.name.clone())),
                confidence: chosen.score,
                keywords: lexical.intent.keywords.clone(),
            },
            candidates,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_llm_answer_counts_only_for_a_candidate() {
        let a = AgentId::new();
        let b = AgentId::new();
        let ok = LlmAnalyzer::parse(
            &format!(r#"{{"intent": "billing", "confidence": 0.9, "agent_id": "{a}"}}"#),
            &[a],
        )
        .unwrap();
        assert_eq!((ok.agent, ok.confidence), (a, 0.9));
        let fenced = LlmAnalyzer::parse(
            &format!("```json\n{{\"agent_id\": \"{a}\", \"confidence\": 7}}\n```"),
            &[a],
        )
        .unwrap();
        assert_eq!(fenced.confidence, 1.0, "clamped");
        assert!(
            LlmAnalyzer::parse(&format!(r#"{{"agent_id": "{b}"}}"#), &[a]).is_err(),
            "not a candidate"
        );
        assert!(
            LlmAnalyzer::parse(r#"{"agent_id": "billing-bot"}"#, &[a]).is_err(),
            "made up"
        );
        assert!(
            LlmAnalyzer::parse("I think billing", &[a]).is_err(),
            "not JSON"
        );
        assert!(LlmAnalyzer::parse(r#"{"agent_id": null}"#, &[a]).is_err());
    }
}
