//! A scriptable in-memory comment sink for the outbox's tests.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::{CallersTicket, CommentSink, PostError, TicketToOpen};

const WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    Post,
    Check,
    /// Opening a ticket (`ticket_id` 0; scripted under ticket 0).
    Open,
    /// Looking for an opened ticket by external id.
    CheckOpened,
    /// Looking up a caller's ticket.
    FindCaller,
}

#[derive(Debug, Clone)]
pub struct Call {
    pub kind: CallKind,
    pub ticket_id: u64,
    pub text: String,
    pub at: Instant,
}

/// What the next post does.
pub enum Step {
    Fail(PostError),
    /// The comment lands, but the answer is lost.
    LandThenFail(PostError),
    /// Never answers.
    Hang,
}

#[derive(Default)]
pub struct FakeState {
    pub calls: Vec<Call>,
    pub comments: HashMap<u64, Vec<String>>,
    /// Tickets opened: (external id, first comment).
    pub opened: Vec<(String, String)>,
    /// What looking a caller up finds, by number (unknown when absent).
    pub callers: HashMap<String, CallersTicket>,
    /// Per ticket, consumed one per post; an empty script means success.
    pub script: HashMap<u64, VecDeque<Step>>,
    /// While down, every call fails as transient.
    pub down: bool,
    /// Posts for these tickets wait until the gate opens.
    pub gated_tickets: Vec<u64>,
}

#[derive(Clone)]
pub struct FakeSink {
    state: Arc<Mutex<FakeState>>,
    changed: Arc<watch::Sender<u64>>,
    gate: watch::Receiver<bool>,
    gate_control: Arc<watch::Sender<bool>>,
}

impl FakeSink {
    pub fn new() -> FakeSink {
        let (gate_control, gate) = watch::channel(false);
        FakeSink {
            state: Arc::default(),
            changed: Arc::new(watch::channel(0).0),
            gate,
            gate_control: Arc::new(gate_control),
        }
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut FakeState) -> T) -> T {
        let value = f(&mut self.state.lock().unwrap());
        self.changed.send_modify(|n| *n += 1);
        value
    }

    pub fn script(&self, ticket_id: u64, steps: impl IntoIterator<Item = Step>) {
        self.with(|state| state.script.entry(ticket_id).or_default().extend(steps));
    }

    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().unwrap().calls.clone()
    }

    pub fn posts(&self) -> Vec<Call> {
        self.calls().into_iter().filter(|c| c.kind == CallKind::Post).collect()
    }

    pub fn comments(&self, ticket_id: u64) -> Vec<String> {
        self.state.lock().unwrap().comments.get(&ticket_id).cloned().unwrap_or_default()
    }

    pub fn open_gate(&self) {
        self.gate_control.send_replace(true);
    }

    pub async fn wait_until(&self, what: &str, condition: impl Fn(&FakeState) -> bool) {
        let mut changes = self.changed.subscribe();
        let waited = tokio::time::timeout(WAIT, async {
            loop {
                if condition(&self.state.lock().unwrap()) {
                    return;
                }
                if changes.changed().await.is_err() {
                    return;
                }
            }
        })
        .await;
        assert!(waited.is_ok(), "timed out waiting for {what}; calls: {:#?}", self.calls());
    }
}

impl FakeSink {
    /// One write (a post, or opening a ticket): recorded, then scripted by `ticket_id`.
    async fn write(
        &self,
        kind: CallKind,
        ticket_id: u64,
        body: &str,
        land: impl Fn(&mut FakeState),
    ) -> Result<(), PostError> {
        let (step, down, gated) = self.with(|state| {
            state.calls.push(Call { kind, ticket_id, text: body.into(), at: Instant::now() });
            (
                state.script.get_mut(&ticket_id).and_then(VecDeque::pop_front),
                state.down,
                state.gated_tickets.contains(&ticket_id),
            )
        });
        if gated {
            let mut gate = self.gate.clone();
            let _ = gate.wait_for(|open| *open).await;
        }
        if down {
            return Err(PostError::Transient("connection refused".into()));
        }
        match step {
            None => {
                self.with(land);
                Ok(())
            }
            Some(Step::Fail(error)) => Err(error),
            Some(Step::LandThenFail(error)) => {
                self.with(land);
                Err(error)
            }
            Some(Step::Hang) => std::future::pending().await,
        }
    }
}

impl CommentSink for FakeSink {
    async fn post_comment(
        &self,
        ticket_id: u64,
        body: &str,
        _public: bool,
    ) -> Result<(), PostError> {
        self.write(CallKind::Post, ticket_id, body, |state| {
            state.comments.entry(ticket_id).or_default().push(body.into())
        })
        .await
    }

    async fn open_ticket(
        &self,
        _ticket: &TicketToOpen,
        body: &str,
        _public: bool,
        external_id: &str,
    ) -> Result<(), PostError> {
        self.write(CallKind::Open, 0, body, |state| {
            state.opened.push((external_id.into(), body.into()))
        })
        .await
    }

    async fn find_callers_ticket(&self, phone: &str) -> Result<CallersTicket, PostError> {
        self.with(|state| {
            state.calls.push(Call {
                kind: CallKind::FindCaller,
                ticket_id: 0,
                text: phone.into(),
                at: Instant::now(),
            });
            if state.down {
                return Err(PostError::Transient("connection refused".into()));
            }
            Ok(state.callers.get(phone).copied().unwrap_or(CallersTicket::Unknown))
        })
    }

    async fn has_ticket_with_external_id(&self, external_id: &str) -> Result<bool, PostError> {
        self.with(|state| {
            state.calls.push(Call {
                kind: CallKind::CheckOpened,
                ticket_id: 0,
                text: external_id.into(),
                at: Instant::now(),
            });
            if state.down {
                return Err(PostError::Transient("connection refused".into()));
            }
            Ok(state.opened.iter().any(|(id, _)| id == external_id))
        })
    }

    async fn has_comment_containing(
        &self,
        ticket_id: u64,
        marker: &str,
    ) -> Result<bool, PostError> {
        self.with(|state| {
            state.calls.push(Call {
                kind: CallKind::Check,
                ticket_id,
                text: marker.into(),
                at: Instant::now(),
            });
            if state.down {
                return Err(PostError::Transient("connection refused".into()));
            }
            Ok(state
                .comments
                .get(&ticket_id)
                .is_some_and(|all| all.iter().any(|c| c.contains(marker))))
        })
    }
}
