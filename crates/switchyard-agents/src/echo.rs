//! `echo`: answers its template with `{agent}` and `{message}` filled in.

use switchyard_core::agent_config::{AgentConfig, EchoConfig};
use switchyard_core::model::Agent;

use crate::{AgentError, AgentRequest, DeltaSink};

/// The template when the agent sets none.
pub const DEFAULT_TEMPLATE: &str = "{agent}: {message}";

pub(crate) async fn invoke(
    agent: &Agent,
    request: &AgentRequest<'_>,
    deltas: Option<&DeltaSink>,
) -> Result<String, AgentError> {
    let template = match AgentConfig::parse(agent.kind, &agent.config) {
        Ok(AgentConfig::Echo(EchoConfig { template: Some(t) })) => t,
        Ok(_) => DEFAULT_TEMPLATE.to_string(),
        Err(e) => return Err(AgentError::Failed(format!("bad configuration: {e}"))),
    };
    // One pass, so a `{message}` that itself contains `{agent}` is left as written.
    let mut answer = String::with_capacity(template.len() + request.message.len());
    let mut rest = template.as_str();
    while let Some(start) = rest.find('{') {
        answer.push_str(&rest[..start]);
        let tail = &rest[start..];
        if let Some(after) = tail.strip_prefix("{agent}") {
            answer.push_str(&agent.name);
            rest = after;
        } else if let Some(after) = tail.strip_prefix("{message}") {
            answer.push_str(request.message);
            rest = after;
        } else {
            answer.push('{');
            rest = &tail[1..];
        }
    }
    answer.push_str(rest);
    if let Some(sink) = deltas {
        // Word by word, so a streamed echo looks like a streamed model.
        for piece in answer.split_inclusive(' ') {
            if sink.send(piece.to_string()).await.is_err() {
                break;
            }
        }
    }
    Ok(answer)
}
