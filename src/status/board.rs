//! The call board (runtime layer): the calls in progress, with the step of the flow each
//! is at, and the last [`FINISHED_KEPT`] finished calls. `call/` updates it; the admin
//! listener's status page and `/calls.json` read it.
//!
//! Texts here (a caller's display name or non-numeric user, a ticket's subject) come from
//! outside and are kept as they came, cut to a bound; whoever shows them escapes them.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use crate::call::CallSummary;
use crate::ivr::outcome::{PathStep, Step};
use crate::sip::ani::CallerId;
use crate::zendesk::model::DipOutcome;

/// Finished calls kept for the status page.
pub const FINISHED_KEPT: usize = 100;
/// The longest text (display name, subject, caller) kept, in characters.
const MAX_TEXT_CHARS: usize = 120;

/// The ticket the data dip found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TicketBrief {
    pub id: u64,
    pub subject: Option<String>,
    pub status: String,
}

/// A call in progress.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActiveCall {
    pub call_id: String,
    /// E.164, `anonymous`, or the caller's non-numeric user part.
    pub caller: String,
    pub display_name: Option<String>,
    pub ticket: Option<TicketBrief>,
    /// Where in the flow the caller is (`ringing` until answered).
    pub step: &'static str,
    /// Seconds since the INVITE, when the snapshot was taken.
    pub duration_s: f64,
    #[serde(skip)]
    started: Instant,
}

/// A finished call.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FinishedCall {
    pub call_id: String,
    pub caller: String,
    pub display_name: Option<String>,
    pub ticket: Option<TicketBrief>,
    pub answered: bool,
    /// The outcome's fixed name (`transferred`, `hung_up`, …); `None` if never answered.
    pub outcome: Option<&'static str>,
    /// The outcome in words.
    pub outcome_text: Option<String>,
    /// The menu path, one step each.
    pub path: Vec<String>,
    /// The queue the call was routed to.
    pub route: Option<String>,
    /// Seconds since the Unix epoch when the call ended.
    pub ended_at_unix_s: u64,
    pub duration_s: f64,
    pub ivr_s: Option<f64>,
    pub wait_s: Option<f64>,
    pub talk_s: Option<f64>,
}

/// The board's contents at one moment: active calls oldest first, finished newest first.
#[derive(Debug, Clone, Serialize)]
pub struct CallsSnapshot {
    pub active: Vec<ActiveCall>,
    pub finished: Vec<FinishedCall>,
}

#[derive(Default)]
struct Board {
    next: u64,
    active: BTreeMap<u64, ActiveCall>,
    finished: VecDeque<FinishedCall>,
}

/// The shared board; cheap to clone.
#[derive(Clone, Default)]
pub struct CallBoard {
    inner: Arc<Mutex<Board>>,
}

impl CallBoard {
    fn lock(&self) -> MutexGuard<'_, Board> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Puts a new call on the board; it stays while the returned entry lives.
    pub fn begin(&self, call_id: &str, caller: &CallerId, display_name: Option<&str>) -> CallEntry {
        let mut board = self.lock();
        let key = board.next;
        board.next += 1;
        board.active.insert(
            key,
            ActiveCall {
                call_id: bounded(call_id),
                caller: caller_text(caller),
                display_name: display_name.map(bounded),
                ticket: None,
                step: step_name(Step::Ringing),
                duration_s: 0.0,
                started: Instant::now(),
            },
        );
        CallEntry { board: self.clone(), key, step: Step::Ringing }
    }

    /// The calls in progress and the finished ones, with durations as of `now`.
    pub fn snapshot(&self, now: Instant) -> CallsSnapshot {
        let board = self.lock();
        let active = board
            .active
            .values()
            .map(|call| ActiveCall {
                duration_s: seconds(now.saturating_duration_since(call.started)),
                ..call.clone()
            })
            .collect();
        CallsSnapshot { active, finished: board.finished.iter().rev().cloned().collect() }
    }
}

/// One call's place on the board. Dropping it without [`CallEntry::finish`] takes the
/// call off without a record.
pub struct CallEntry {
    board: CallBoard,
    key: u64,
    step: Step,
}

impl CallEntry {
    /// The flow's step; the board is touched only when it changed.
    pub fn set_step(&mut self, step: Step) {
        if step == self.step {
            return;
        }
        self.step = step;
        if let Some(call) = self.board.lock().active.get_mut(&self.key) {
            call.step = step_name(step);
        }
    }

    /// The data dip's ticket, if it found one.
    pub fn set_dip(&self, outcome: &DipOutcome) {
        let ticket = ticket_brief(outcome);
        if let Some(call) = self.board.lock().active.get_mut(&self.key) {
            call.ticket = ticket;
        }
    }

    /// Moves the call to the finished list (the oldest beyond [`FINISHED_KEPT`] go).
    pub fn finish(self, summary: &CallSummary) {
        let mut board = self.board.lock();
        let Some(call) = board.active.remove(&self.key) else { return };
        let report = summary.report.as_ref();
        let ended_at_unix_s = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let finished = FinishedCall {
            call_id: call.call_id,
            caller: call.caller,
            display_name: call.display_name,
            ticket: summary.dip.as_ref().and_then(ticket_brief).or(call.ticket),
            answered: summary.answered,
            outcome: report.map(|r| r.outcome.kind()),
            outcome_text: report.map(|r| bounded(&r.outcome.to_string())),
            path: report.map(|r| r.path.iter().map(path_step_text).collect()).unwrap_or_default(),
            route: report.and_then(|r| r.route.as_ref()).map(|r| r.queue.clone()),
            ended_at_unix_s,
            duration_s: seconds(summary.duration),
            ivr_s: report.map(|r| seconds(r.ivr_duration)),
            wait_s: report.map(|r| seconds(r.wait)),
            talk_s: report.map(|r| seconds(r.talk)),
        };
        if board.finished.len() == FINISHED_KEPT {
            board.finished.pop_front();
        }
        board.finished.push_back(finished);
    }
}

impl Drop for CallEntry {
    fn drop(&mut self) {
        self.board.lock().active.remove(&self.key);
    }
}

/// The step's fixed name (the same words as in JSON elsewhere).
pub fn step_name(step: Step) -> &'static str {
    match step {
        Step::Ringing => "ringing",
        Step::Welcome => "welcome",
        Step::Lookup => "lookup",
        Step::Status => "status",
        Step::Menu => "menu",
        Step::Transfer => "transfer",
        Step::Busy => "busy",
        Step::Waiting => "waiting",
        Step::Goodbye => "goodbye",
    }
}

fn path_step_text(step: &PathStep) -> String {
    bounded(&step.to_string())
}

fn caller_text(caller: &CallerId) -> String {
    match caller {
        CallerId::Number(n) => n.e164.clone(),
        CallerId::Anonymous => "anonymous".into(),
        CallerId::NotANumber(user) => bounded(user),
    }
}

fn ticket_brief(outcome: &DipOutcome) -> Option<TicketBrief> {
    match outcome {
        DipOutcome::Found { ticket: Some(t), .. } => Some(TicketBrief {
            id: t.id,
            subject: t.subject.as_deref().map(bounded),
            status: t.status.as_str().to_string(),
        }),
        _ => None,
    }
}

fn bounded(text: &str) -> String {
    text.chars().take(MAX_TEXT_CHARS).collect()
}

fn seconds(d: Duration) -> f64 {
    (d.as_secs_f64() * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller() -> CallerId {
        CallerId::NotANumber("alice".into())
    }

    fn summary(call_id: &str) -> CallSummary {
        CallSummary {
            call_id: call_id.into(),
            ani: crate::sip::ani::Ani {
                caller: caller(),
                source: crate::sip::ani::AniSource::From,
            },
            answered: false,
            end: None,
            started_at: SystemTime::now(),
            duration: Duration::from_secs(3),
            digits: String::new(),
            digit_sources: Vec::new(),
            dip: None,
            report: None,
        }
    }

    #[test]
    fn a_call_moves_from_active_to_finished() {
        let board = CallBoard::default();
        let mut entry = board.begin("c1", &caller(), Some("Alice"));
        entry.set_step(Step::Menu);
        let snap = board.snapshot(Instant::now());
        assert_eq!(snap.active.len(), 1);
        assert_eq!(snap.active[0].step, "menu");
        assert_eq!(snap.active[0].display_name.as_deref(), Some("Alice"));
        let summary = summary("c1");
        entry.finish(&summary);
        let snap = board.snapshot(Instant::now());
        assert!(snap.active.is_empty());
        assert_eq!(snap.finished.len(), 1);
        assert_eq!(snap.finished[0].call_id, "c1");
    }

    #[test]
    fn a_dropped_entry_leaves_no_trace_and_the_ring_keeps_the_last_hundred() {
        let board = CallBoard::default();
        drop(board.begin("gone", &caller(), None));
        assert!(board.snapshot(Instant::now()).active.is_empty());
        for i in 0..(FINISHED_KEPT + 5) {
            let id = format!("c{i}");
            board.begin(&id, &caller(), None).finish(&summary(&id));
        }
        let snap = board.snapshot(Instant::now());
        assert_eq!(snap.finished.len(), FINISHED_KEPT);
        assert_eq!(snap.finished[0].call_id, format!("c{}", FINISHED_KEPT + 4), "newest first");
        assert_eq!(snap.finished[FINISHED_KEPT - 1].call_id, "c5");
    }

    #[test]
    fn long_texts_are_cut() {
        let board = CallBoard::default();
        let long = "x".repeat(10_000);
        let _entry = board.begin("c", &CallerId::NotANumber(long.clone()), Some(&long));
        let snap = board.snapshot(Instant::now());
        assert_eq!(snap.active[0].caller.len(), MAX_TEXT_CHARS);
        assert_eq!(snap.active[0].display_name.as_ref().map(String::len), Some(MAX_TEXT_CHARS));
    }
}
