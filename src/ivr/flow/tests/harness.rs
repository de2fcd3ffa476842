//! A flow on a virtual clock.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::config::{Config, TransferMode};
use crate::ivr::flow::{
    Action, Caller, EndCause, Flow, FlowEvent, FlowReport, FlowSettings, PlayId, Say,
    TransferRequest, TransferUpdate,
};
use crate::ivr::outcome::TransferFailure;
use crate::media::dtmf::DigitSource;
use crate::zendesk::model::{DipOutcome, FallbackReason, Priority, Status, Ticket, User};

pub const RENDER_TIMEOUT: Duration = Duration::from_millis(1500);

pub fn config() -> Config {
    let mut config = Config::default();
    config.media.welcome_prompt = PathBuf::from("audio/welcome.wav");
    config.routing.default_queue = "sip:support@10.0.0.1".into();
    config.routing.priority_queue = "sip:priority@10.0.0.2".into();
    config
}

pub fn settings(config: &Config) -> FlowSettings {
    FlowSettings::from_config(config, RENDER_TIMEOUT).expect("settings")
}

pub fn user(name: &str, locale: Option<&str>) -> User {
    let mut user: User = serde_json::from_str(r#"{"id": 11, "name": "x"}"#).unwrap();
    user.name = name.into();
    user.locale = locale.map(String::from);
    user
}

pub fn ticket(
    id: u64,
    status: Status,
    priority: Option<Priority>,
    subject: Option<&str>,
) -> Ticket {
    let mut ticket: Ticket =
        serde_json::from_str(r#"{"id": 1, "status": "open", "requester_id": 11}"#).unwrap();
    ticket.id = id;
    ticket.status = status;
    ticket.priority = priority;
    ticket.subject = subject.map(String::from);
    ticket
}

/// Kari Nordmann, English, with open ticket 102 about a printer, `priority`.
pub fn kari(priority: Option<Priority>) -> DipOutcome {
    DipOutcome::Found {
        user: user("Kari Nordmann", Some("en-US")),
        ticket: Some(ticket(102, Status::Open, priority, Some("Printer on fire"))),
        greet_by_name: true,
    }
}

pub fn fallback() -> DipOutcome {
    DipOutcome::Fallback { reason: FallbackReason::Deadline }
}

pub struct Bench {
    pub flow: Flow,
    pub now: Instant,
    /// Every action so far.
    pub log: Vec<Action>,
}

impl Bench {
    pub fn new(settings: FlowSettings) -> Bench {
        Bench::with_caller(settings, Caller { number: Some("+4798765432".into()) })
    }

    pub fn with_caller(settings: FlowSettings, caller: Caller) -> Bench {
        let now = Instant::now();
        Bench { flow: Flow::new(now, caller, settings), now, log: Vec::new() }
    }

    /// The default config's flow, answered.
    pub fn answered() -> Bench {
        let mut bench = Bench::new(settings(&config()));
        bench.event(FlowEvent::Answered);
        bench
    }

    fn drain(&mut self) -> Vec<Action> {
        let mut out = Vec::new();
        while let Some(action) = self.flow.poll_action() {
            out.push(action);
        }
        self.log.extend(out.iter().cloned());
        out
    }

    pub fn event(&mut self, event: FlowEvent) -> Vec<Action> {
        self.flow.handle_event(self.now, event);
        self.drain()
    }

    /// Moves the clock by `by`, firing every timer due on the way, in order.
    pub fn advance(&mut self, by: Duration) -> Vec<Action> {
        let end = self.now + by;
        let mut out = Vec::new();
        while let Some(at) = self.flow.poll_timeout().filter(|at| *at <= end) {
            self.now = self.now.max(at);
            self.flow.handle_timeout(self.now);
            out.extend(self.drain());
        }
        self.now = end;
        out
    }

    /// The id of the last play asked for.
    pub fn last_play(&self) -> PlayId {
        self.log
            .iter()
            .rev()
            .find_map(|a| match a {
                Action::Play { id, .. } => Some(*id),
                _ => None,
            })
            .expect("something was played")
    }

    /// The last play ends on its own.
    pub fn finish_play(&mut self) -> Vec<Action> {
        let id = self.last_play();
        self.event(FlowEvent::PlaybackFinished { id, interrupted: false })
    }

    pub fn press(&mut self, digit: char) -> Vec<Action> {
        self.event(FlowEvent::Digit { digit, source: DigitSource::Rfc4733 })
    }

    /// Through the welcome with the dip's outcome known, to the status and menu.
    pub fn to_menu(outcome: DipOutcome) -> Bench {
        let mut bench = Bench::answered();
        let actions = bench.event(FlowEvent::Dip(outcome));
        if actions.iter().any(|a| matches!(a, Action::Render(_))) {
            bench.event(FlowEvent::Rendered { ok: true });
        }
        bench.finish_play();
        bench
    }

    pub fn transfer(&mut self, update: TransferUpdate) -> Vec<Action> {
        self.event(FlowEvent::Transfer(update))
    }

    pub fn refuse(&mut self, status: u16) -> Vec<Action> {
        self.transfer(TransferUpdate::Failed(TransferFailure::Refused { status }))
    }

    pub fn end(&mut self, cause: EndCause) -> FlowReport {
        let actions = self.event(FlowEvent::Ended(cause));
        finish(&actions).expect("the flow finishes")
    }
}

/// The texts of every sentence in the plays among `actions`, in order.
pub fn spoken(actions: &[Action]) -> Vec<String> {
    let mut out = Vec::new();
    for action in actions {
        if let Action::Play { items, .. } = action {
            for item in items {
                match item {
                    Say::Sentence(s) => out.push(s.text.clone()),
                    Say::File(path) => out.push(format!("file:{}", path.display())),
                }
            }
        }
    }
    out
}

pub fn transfers(actions: &[Action]) -> Vec<TransferRequest> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Transfer(t) => Some(t.clone()),
            _ => None,
        })
        .collect()
}

pub fn finish(actions: &[Action]) -> Option<FlowReport> {
    actions.iter().find_map(|a| match a {
        Action::Finish(report) => Some(report.clone()),
        _ => None,
    })
}

pub fn bridge_config() -> Config {
    let mut config = config();
    config.transfer.mode = TransferMode::Bridge;
    config
}
