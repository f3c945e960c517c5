//! Loading BANKING77 (data/banking77 at the repository root) as routing agents: shared by
//! the routing tests, examples and benches through `#[path]`.

use std::path::{Path, PathBuf};

use switchyard_core::AgentId;
use switchyard_core::routing::AgentProfile;
use uuid::Uuid;

/// One labelled query.
#[derive(Clone, Debug)]
pub struct Row {
    /// The user's message.
    pub text: String,
    /// Its intent.
    pub category: String,
}

/// The data set's folder in this repository.
pub fn default_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/banking77")
}

/// Reads `train.csv` or `test.csv` (columns `text,category`).
pub fn read(dir: &Path, file: &str) -> Result<Vec<Row>, Box<dyn std::error::Error>> {
    let mut reader = csv::Reader::from_path(dir.join(file))?;
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record?;
        rows.push(Row {
            text: record.get(0).ok_or("missing text")?.to_owned(),
            category: record.get(1).ok_or("missing category")?.to_owned(),
        });
    }
    Ok(rows)
}

/// Reads the 77 intent names, in the data set's order.
pub fn categories(dir: &Path) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let text = std::fs::read_to_string(dir.join("categories.json"))?;
    Ok(serde_json::from_str(&text)?)
}

/// A stable id per intent, so runs are comparable.
pub fn agent_id(i: usize) -> AgentId {
    AgentId::from_uuid(Uuid::from_u128(
        0x5157_0000_0000_7000_8000_0000_0000_0000 | i as u128,
    ))
}

/// One agent per intent, named after it, with up to `shots` training rows of that intent
/// (in file order) as examples (`None`: all of them).
pub fn agents(categories: &[String], train: &[Row], shots: Option<usize>) -> Vec<AgentProfile> {
    categories
        .iter()
        .enumerate()
        .map(|(i, c)| AgentProfile {
            id: agent_id(i),
            name: c.clone(),
            description: String::new(),
            intents: vec![c.clone()],
            keywords: Vec::new(),
            examples: train
                .iter()
                .filter(|r| &r.category == c)
                .take(shots.unwrap_or(usize::MAX))
                .map(|r| r.text.clone())
                .collect(),
            priority: 0,
            is_fallback: false,
        })
        .collect()
}

/// A generic fallback agent, as a tenant would add one: no examples, only a description.
pub fn fallback_agent() -> AgentProfile {
    AgentProfile {
        id: AgentId::from_uuid(Uuid::from_u128(0x5157_0000_0000_7000_8000_0000_0000_ffff)),
        name: "general".to_owned(),
        description: "General questions; answers when nothing else fits".to_owned(),
        intents: vec!["general".to_owned()],
        keywords: Vec::new(),
        examples: Vec::new(),
        priority: 0,
        is_fallback: true,
    }
}
