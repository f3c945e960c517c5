//! Running a turn in a task of its own: tracked for graceful shutdown, guarded against
//! panics, its idempotency claim settled whatever happens, its events streamed as they come.
//! The one way `/v1/chat` and the OpenAI door run turns.
//!
//! The task runs to its end even if its caller is dropped — the client went away — so a
//! turn is never cut between its agent call and its write, and its idempotency record is
//! always settled.

use futures_util::FutureExt as _;
use serde::Serialize;
use switchyard_store::StoreResult;
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument as _;

use super::{TurnError, TurnEvent, TurnInput, TurnOutcome};
use crate::app::AppState;
use crate::auth::Principal;

/// Where a streamed turn's events go. Unbounded on purpose: the turn must never wait for a
/// slow reader, and what it can hold is bounded anyway (one routing event and the pieces of
/// one answer, which agents' answers are limited in size).
pub type EventSink = mpsc::UnboundedSender<TurnEvent>;

/// A turn to run: who asks, what, and how its answer is shaped.
pub struct TurnTask<T> {
    /// The caller.
    pub principal: Principal,
    /// The turn.
    pub input: TurnInput,
    /// The `Idempotency-Key` the caller claimed for it: the answer is recorded under it, or
    /// the claim released if the turn fails, so that a retry runs again.
    pub idempotency_key: Option<String>,
    /// Shapes the outcome into the caller's answer (what the idempotency record keeps).
    pub render: fn(&AppState, TurnOutcome) -> T,
}

/// The result of a turn's task.
pub type TurnResult<T> = Result<T, TurnError>;

impl<T: Serialize + Send + Sync + 'static> TurnTask<T> {
    /// Runs the turn to its end and settles its idempotency claim.
    async fn run(self, state: AppState, events: Option<EventSink>) -> TurnResult<T> {
        // A panic inside the turn (a bug) must still settle the idempotency key below: the
        // turn runs in its own task, out of reach of the server's panic guard.
        let outcome = std::panic::AssertUnwindSafe(super::run(
            &state,
            &self.principal,
            self.input,
            events.as_ref(),
        ))
        .catch_unwind()
        .await
        .unwrap_or_else(|_| Err(TurnError::Internal("the turn failed unexpectedly".into())));
        let answer = outcome.map(|outcome| (self.render)(&state, outcome));
        if let Some(key) = &self.idempotency_key
            && let Err(e) = settle(&state, &self.principal, key, &answer).await
        {
            tracing::error!(error = %e, "recording an idempotency key failed");
        }
        answer
    }

    /// Starts the turn in its own task; its answer comes back on the receiver.
    pub fn spawn(self, state: &AppState) -> oneshot::Receiver<TurnResult<T>> {
        spawn_tracked(state, self.run(state.clone(), None))
    }

    /// Starts a streamed turn in its own task and waits until it has begun: its routing
    /// decision is out (or it already ended well). Whatever fails before that — a
    /// conversation that is not found, a limit, no agent to answer — fails here instead, so
    /// it is answered with its own status rather than inside a stream that says `200`.
    pub async fn start_streamed(self, state: &AppState) -> TurnResult<StreamedTurn<T>> {
        let (tx, mut events) = mpsc::unbounded_channel();
        let mut done = spawn_tracked(state, self.run(state.clone(), Some(tx)));
        // Events first: once the routing decision is out, a later failure belongs in the
        // stream.
        tokio::select! {
            biased;
            Some(first) = events.recv() => Ok(StreamedTurn {
                first: Some(first),
                events,
                outcome: Outcome::Waiting(done),
            }),
            result = &mut done => match result {
                Ok(Ok(answer)) => Ok(StreamedTurn {
                    first: None,
                    events,
                    outcome: Outcome::Ready(Ok(answer)),
                }),
                Ok(Err(error)) => Err(error),
                Err(_) => Err(ended_unexpectedly()),
            },
        }
    }
}

async fn settle<T: Serialize + Sync>(
    state: &AppState,
    principal: &Principal,
    key: &str,
    answer: &TurnResult<T>,
) -> StoreResult<()> {
    let scope = &principal.scope;
    match answer.as_ref().map(serde_json::to_value) {
        Ok(Ok(answer)) => state.store.idempotency_complete(scope, key, &answer).await,
        _ => state.store.idempotency_release(scope, key).await,
    }
}

fn ended_unexpectedly() -> TurnError {
    TurnError::Internal("the turn ended unexpectedly".into())
}

/// Runs `work` in a task tracked for graceful shutdown.
fn spawn_tracked<T: Send + 'static>(
    state: &AppState,
    work: impl Future<Output = T> + Send + 'static,
) -> oneshot::Receiver<T> {
    let (tx, rx) = oneshot::channel();
    // In the request's span: the turn's logs and trace spans are the request's.
    state.turns.spawn(
        async move {
            let _ = tx.send(work.await);
        }
        .in_current_span(),
    );
    rx
}

/// A turn's answer, awaited from its task.
pub async fn finished<T>(done: oneshot::Receiver<TurnResult<T>>) -> TurnResult<T> {
    done.await.unwrap_or_else(|_| Err(ended_unexpectedly()))
}

/// What a streamed turn yields: its events, then its outcome.
pub enum TurnItem<T> {
    /// The routing decision or a piece of the answer.
    Event(TurnEvent),
    /// The answer (or why there is none), last.
    Done(TurnResult<T>),
}

enum Outcome<T> {
    Waiting(oneshot::Receiver<TurnResult<T>>),
    Ready(TurnResult<T>),
    Taken,
}

/// A streamed turn that has begun ([`TurnTask::start_streamed`]).
pub struct StreamedTurn<T> {
    first: Option<TurnEvent>,
    events: mpsc::UnboundedReceiver<TurnEvent>,
    outcome: Outcome<T>,
}

impl<T> StreamedTurn<T> {
    /// The turn's routing decision, while it has not been read with [`Self::next`].
    pub fn routed(&self) -> Option<&super::Routed> {
        match &self.first {
            Some(TurnEvent::Routed(routed)) => Some(routed),
            _ => None,
        }
    }

    /// The next event, then the outcome, then `None`.
    pub async fn next(&mut self) -> Option<TurnItem<T>> {
        if let Some(first) = self.first.take() {
            return Some(TurnItem::Event(first));
        }
        // The sender lives as long as the turn: `None` means every event has been read.
        if let Some(event) = self.events.recv().await {
            return Some(TurnItem::Event(event));
        }
        match std::mem::replace(&mut self.outcome, Outcome::Taken) {
            Outcome::Waiting(done) => Some(TurnItem::Done(finished(done).await)),
            Outcome::Ready(result) => Some(TurnItem::Done(result)),
            Outcome::Taken => None,
        }
    }
}
