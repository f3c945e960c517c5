//! `switchyard routing eval | replay`: the routing lab from the command line
//! (docs/routing.md, "The routing lab"), on the database, as the API's routes do it.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use switchyard_core::routing::PolicyMatcher;
use switchyard_server::Config;
use switchyard_server::api::{AgentDraft, Evaluation, Replay, ReplayAgent};
use switchyard_server::lab::{self, Lab};
use switchyard_server::offline::Router;
use switchyard_store::Opened;

#[derive(Subcommand, Debug)]
pub enum RoutingCommand {
    /// Routes labelled messages (a CSV file of `message,agent` rows) over the tenant's
    /// agents, or over a draft of changes to them, and prints how routing did.
    Eval {
        /// The tenant's slug or id.
        #[arg(long)]
        tenant: String,
        /// The labelled messages: `message,agent` rows (`agent`: a name, an id, or
        /// `fallback`).
        file: PathBuf,
        /// A draft of changes to the agents (`{"add": [...], "update": [...], "remove":
        /// [...]}`), applied in memory only.
        #[arg(long)]
        draft: Option<PathBuf>,
        /// Print the figures as JSON (as the API answers them).
        #[arg(long)]
        json: bool,
    },
    /// Re-routes the tenant's most recent turns over a draft of changes to its agents and
    /// prints which would now go elsewhere.
    Replay {
        /// The tenant's slug or id.
        #[arg(long)]
        tenant: String,
        /// The draft of changes (`{"add": [...], "update": [...], "remove": [...]}`).
        #[arg(long)]
        draft: PathBuf,
        /// How many of the most recent turns (1 to 10,000).
        #[arg(long, default_value_t = lab::DEFAULT_REPLAY)]
        last: u32,
        /// Print the figures as JSON (as the API answers them).
        #[arg(long)]
        json: bool,
    },
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn draft(path: &Path) -> Result<AgentDraft, String> {
    serde_json::from_str(&read(path)?).map_err(|e| format!("{}: {e}", path.display()))
}

pub async fn run(config: &Config, cmd: RoutingCommand) -> Result<(), String> {
    let Opened { store, operator } = super::open(config).await?;
    let tenant_key = match &cmd {
        RoutingCommand::Eval { tenant, .. } | RoutingCommand::Replay { tenant, .. } => {
            tenant.clone()
        }
    };
    let tenant = super::find_tenant(store.as_ref(), &operator, &tenant_key).await?;
    let scope = operator.admin_of(tenant.id);
    // The encoder the server would load, from the same settings.
    let router = Router::new(config.clone()).map_err(|e| e.to_string())?;
    let lab = Lab {
        store: store.as_ref(),
        scope: &scope,
        tenant: &tenant,
        config,
        encoder: router.encoder(),
        matcher: &PolicyMatcher,
    };
    match cmd {
        RoutingCommand::Eval {
            file,
            draft: d,
            json,
            ..
        } => {
            let rows = lab::labeled(None, Some(read(&file)?))
                .and_then(lab::checked)
                .map_err(|e| e.detail)?;
            let draft = d.as_deref().map(draft).transpose()?;
            let routing = lab.routing(None, draft).await.map_err(|e| e.detail)?;
            let evaluation = lab.evaluate(&routing, rows).await.map_err(|e| e.detail)?;
            if json {
                super::print_json(&serde_json::to_value(&evaluation).unwrap_or_default());
            } else {
                print_evaluation(&evaluation);
            }
        }
        RoutingCommand::Replay {
            draft: d,
            last,
            json,
            ..
        } => {
            lab::check_last(last).map_err(|e| e.detail)?;
            let routing = lab
                .routing(None, Some(draft(&d)?))
                .await
                .map_err(|e| e.detail)?;
            let replay = lab
                .replay(&routing, Some(last))
                .await
                .map_err(|e| e.detail)?;
            if json {
                super::print_json(&serde_json::to_value(&replay).unwrap_or_default());
            } else {
                print_replay(&replay);
            }
        }
    }
    Ok(())
}

fn pct(share: Option<f64>) -> String {
    share.map_or_else(|| "-".to_owned(), |s| format!("{:.1}%", s * 100.0))
}

/// Cuts a text to `width` characters for a table.
fn cut(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_owned()
    } else {
        let mut cut: String = text.chars().take(width.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

fn print_evaluation(e: &Evaluation) {
    println!(
        "accuracy {} ({} of {})   fallback rate {}",
        pct(Some(e.accuracy)),
        e.correct,
        e.total,
        pct(Some(e.fallback_rate))
    );
    println!();
    println!(
        "{:<32}  {:>9}  {:>7}  {:>7}",
        "agent", "precision", "recall", "support"
    );
    for a in &e.by_agent {
        println!(
            "{:<32}  {:>9}  {:>7}  {:>7}",
            cut(&a.name, 32),
            pct(a.precision),
            pct(a.recall),
            a.support
        );
    }
    println!();
    println!(
        "{:<12}  {:>9}  {:>8}",
        "confidence", "decisions", "accuracy"
    );
    for b in e.calibration.iter().filter(|b| b.decisions > 0) {
        println!(
            "{:<12}  {:>9}  {:>8}",
            format!("{:.1}-{:.1}", b.confidence_from, b.confidence_to),
            b.decisions,
            pct(b.accuracy)
        );
    }
    if !e.misrouted.is_empty() {
        println!();
        println!("misrouted, the most confident first:");
        for m in &e.misrouted {
            println!(
                "{:.2}  {} -> {}  {}",
                m.confidence,
                cut(&m.expected, 24),
                cut(&m.got, 24),
                cut(&m.message, 60)
            );
        }
    }
}

fn agent(a: &ReplayAgent) -> String {
    match (&a.name, a.agent_id) {
        (Some(name), _) => name.clone(),
        (None, Some(id)) => format!("{id} (deleted)"),
        (None, None) => "(none)".to_owned(),
    }
}

fn print_replay(r: &Replay) {
    println!(
        "replayed {} turns: {} would go to another agent",
        r.turns, r.changed
    );
    if r.changes.is_empty() {
        return;
    }
    println!();
    println!("{:<32}  {:<32}  {:>6}", "from", "to", "turns");
    for c in &r.changes {
        println!(
            "{:<32}  {:<32}  {:>6}",
            cut(&agent(&c.from), 32),
            cut(&agent(&c.to), 32),
            c.count
        );
    }
    println!();
    println!("samples (message id, from -> to, confidence):");
    for s in &r.samples {
        println!(
            "{}  {} -> {}  {:.2}",
            s.message_id,
            agent(&s.from),
            agent(&s.to),
            s.confidence
        );
    }
}
