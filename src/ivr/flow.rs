//! The IVR flow (sans-IO): events in, actions out, shaped like the UA core.
//!
//! `Flow::new(now, caller, settings)`, then `handle_event(now, event)`,
//! `handle_timeout(now)`, `poll_timeout()` and `poll_action()`. No clock, no I/O.
//!
//! The steps: the welcome plays while the data dip runs (it started at the INVITE). If
//! the dip has not answered when the welcome ends, a comfort line is said once, then hold
//! music plays until it answers (or a guard past its deadline). The caller's status
//! sentence is rendered while the welcome plays; a render that fails or is late is
//! replaced by a generic sentence. Then the status and the menu play, and a key pressed
//! from the start of the status is the menu choice: agent, end the call, or repeat. No
//! key, or a wrong one, gets "sorry" and the menu again, until `menu_attempts`, then
//! `menu_default`. An agent call is routed (rules → queue → targets) and transferred
//! target by target; when none can take it, the caller may keep waiting (hold music, a
//! new round every `retry_interval` up to `max_wait`) or ask for a callback. A REFER that
//! fails brings the caller back to the menu once, then to that busy menu. Every end —
//! the caller's hang-up at any step included — finishes with a typed outcome and the path.

mod types;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

pub use types::*;

use crate::config::{MenuDefault, TransferMode};
use crate::ivr::outcome::{CallOutcome, DropReason, PathStep, Step, TransferFailure};
use crate::ivr::prompts::{self, Language, PromptKey};
use crate::ivr::routing::Route;
use crate::media::dtmf::DigitSource;
use crate::zendesk::model::{DipOutcome, FallbackReason, Ticket};

/// The flow's timers, one slot each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    NoInput,
    DipWait,
    RenderWait,
    ReferWait,
    BusyRetry,
    WaitLimit,
    CallLimit,
}

const TIMERS: usize = 7;

/// Where the flow is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Ringing,
    /// The welcome plays.
    Welcome,
    /// Waiting for the dip or the status render: comfort line, then hold music.
    Lookup,
    /// The status and menu, or waiting for a key after them.
    Menu,
    /// "Connecting you to an agent" plays.
    Connecting,
    /// A target is being tried; hold music.
    Transferring,
    /// Bridged to an agent.
    Bridged,
    /// The all-agents-busy menu.
    Busy,
    /// Hold music until the next round of targets.
    Waiting,
    /// A last sentence plays; then we hang up.
    Ending,
    /// We hung up; waiting for the call to end.
    HangingUp,
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Render {
    /// Nothing to render: the status is a sentence rendered at startup.
    Static,
    Pending,
    Ready,
    Failed,
}

/// The transfer in progress.
#[derive(Debug, Clone)]
struct Attempt {
    target: String,
    mode: TransferMode,
    started: Instant,
}

/// One call's IVR.
pub struct Flow {
    settings: FlowSettings,
    caller: Caller,
    phase: Phase,
    timers: [Option<Instant>; TIMERS],
    actions: VecDeque<Action>,
    next_play: PlayId,
    /// The play whose end the flow waits for.
    playing: Option<PlayId>,
    /// The comfort line is playing (the status waits for it to end).
    comfort: Option<PlayId>,
    /// Hold music plays (from the last `HoldMusic` until the next `Play`).
    music: bool,
    /// The last REFER that timed out: a late 2xx for it still means the caller got there.
    abandoned_refer: Option<Attempt>,
    dip: Option<DipOutcome>,
    language: Language,
    render: Render,
    status_text: Option<String>,
    attempts: u32,
    refer_failures: u32,
    route: Option<Route>,
    target_index: usize,
    mode: TransferMode,
    attempt: Option<Attempt>,
    wait_started: Option<Instant>,
    wait: Duration,
    connected_at: Option<Instant>,
    answered_at: Option<Instant>,
    ivr_ended_at: Option<Instant>,
    outcome: Option<CallOutcome>,
    path: Vec<PathStep>,
    last_digit: Option<(char, DigitSource, Instant)>,
}

impl Flow {
    pub fn new(_now: Instant, caller: Caller, settings: FlowSettings) -> Flow {
        let language = settings.prompts.default_language().clone();
        let mode = settings.mode;
        Flow {
            settings,
            caller,
            phase: Phase::Ringing,
            timers: [None; TIMERS],
            actions: VecDeque::new(),
            next_play: 0,
            playing: None,
            comfort: None,
            music: false,
            abandoned_refer: None,
            dip: None,
            language,
            render: Render::Static,
            status_text: None,
            attempts: 0,
            refer_failures: 0,
            route: None,
            target_index: 0,
            mode,
            attempt: None,
            wait_started: None,
            wait: Duration::ZERO,
            connected_at: None,
            answered_at: None,
            ivr_ended_at: None,
            outcome: None,
            path: Vec::new(),
            last_digit: None,
        }
    }

    /// The language the caller is spoken to in (the default until the dip answers).
    pub fn language(&self) -> &Language {
        &self.language
    }

    /// Whether the flow has finished.
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// The step the caller is at, for status pages and logs.
    pub fn step(&self) -> Step {
        match self.phase {
            Phase::Ringing => Step::Ringing,
            Phase::Welcome => Step::Welcome,
            Phase::Lookup => Step::Lookup,
            // The first status and menu, before any key or silence.
            Phase::Menu if self.path.len() == 1 && self.playing.is_some() => Step::Status,
            Phase::Menu => Step::Menu,
            Phase::Connecting | Phase::Transferring | Phase::Bridged => Step::Transfer,
            Phase::Busy => Step::Busy,
            Phase::Waiting => Step::Waiting,
            Phase::Ending | Phase::HangingUp | Phase::Done => Step::Goodbye,
        }
    }

    /// The status sentence a caller with this dip outcome hears, rendered as it would be
    /// (for `zendesk-ivr lookup`).
    pub fn preview_status(mut self, outcome: &DipOutcome) -> Sentence {
        if let DipOutcome::Found { user, .. } = outcome {
            self.language = self.settings.prompts.language_for(user.locale.as_deref());
        }
        self.status_text = self.personal_status(outcome);
        self.render = Render::Ready;
        self.dip = Some(outcome.clone());
        match self.status_items().pop() {
            Some(Say::Sentence(sentence)) => sentence,
            _ => Sentence { lang: self.language.clone(), text: String::new() },
        }
    }

    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.iter().flatten().min().copied()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        for (slot, timer) in [
            Timer::CallLimit,
            Timer::DipWait,
            Timer::RenderWait,
            Timer::ReferWait,
            Timer::WaitLimit,
            Timer::BusyRetry,
            Timer::NoInput,
        ]
        .into_iter()
        .map(|t| (t as usize, t))
        {
            if self.timers[slot].is_some_and(|at| at <= now) {
                self.timers[slot] = None;
                self.on_timer(now, timer);
            }
        }
    }

    pub fn handle_event(&mut self, now: Instant, event: FlowEvent) {
        if self.phase == Phase::Done {
            return;
        }
        match event {
            FlowEvent::Answered => self.on_answered(now),
            FlowEvent::Dip(outcome) => self.on_dip(now, outcome),
            FlowEvent::Digit { digit, source } => self.on_digit(now, digit, source),
            FlowEvent::PlaybackFinished { id, interrupted } => {
                self.on_playback_finished(now, id, interrupted)
            }
            FlowEvent::Rendered { ok } => self.on_rendered(now, ok),
            FlowEvent::Transfer(update) => self.on_transfer(now, update),
            FlowEvent::MediaTimeout => {
                self.hang_up(now, CallOutcome::Dropped { reason: DropReason::NoMedia })
            }
            FlowEvent::ShutdownRequested => {
                self.hang_up(now, CallOutcome::Dropped { reason: DropReason::Shutdown })
            }
            FlowEvent::AgentHungUp => {
                if self.phase == Phase::Bridged {
                    self.hang_up(now, CallOutcome::Dropped { reason: DropReason::Error });
                }
            }
            FlowEvent::BridgeFailed(failure) => self.bridge_failed(now, failure),
            FlowEvent::Ended(cause) => self.on_ended(now, cause),
        }
    }

    fn set(&mut self, timer: Timer, at: Instant) {
        self.timers[timer as usize] = Some(at);
    }

    fn clear(&mut self, timer: Timer) {
        self.timers[timer as usize] = None;
    }

    fn play(&mut self, items: Vec<Say>, barge_in: bool) -> PlayId {
        self.music = false;
        self.next_play = self.next_play.wrapping_add(1);
        let id = self.next_play;
        self.playing = Some(id);
        self.actions.push_back(Action::Play { id, items, barge_in });
        id
    }

    /// Hold music, unless it already plays.
    fn hold_music(&mut self) {
        self.playing = None;
        if !self.music {
            self.music = true;
            self.actions.push_back(Action::HoldMusic);
        }
    }

    fn sentence(&self, key: PromptKey) -> Say {
        self.say_text(self.settings.prompts.render(&self.language, key, &[]))
    }

    fn say_text(&self, text: String) -> Say {
        Say::Sentence(Sentence { lang: self.language.clone(), text })
    }

    // --- the welcome and the lookup ---

    fn on_answered(&mut self, now: Instant) {
        if self.phase != Phase::Ringing {
            return;
        }
        self.answered_at = Some(now);
        if let Some(limit) = self.settings.max_call {
            self.set(Timer::CallLimit, now + limit);
        }
        match self.settings.welcome.clone() {
            Some(file) => {
                self.phase = Phase::Welcome;
                self.play(vec![Say::File(file)], false);
            }
            None => self.after_welcome(now),
        }
    }

    fn after_welcome(&mut self, now: Instant) {
        self.phase = Phase::Lookup;
        if self.dip.is_none() {
            let comfort = self.sentence(PromptKey::Comfort);
            self.comfort = Some(self.play(vec![comfort], false));
            self.set(Timer::DipWait, now + self.settings.dip_wait);
            return;
        }
        self.status_when_ready(now);
    }

    fn on_dip(&mut self, now: Instant, outcome: DipOutcome) {
        if self.dip.is_some() {
            return;
        }
        self.clear(Timer::DipWait);
        if let DipOutcome::Found { user, .. } = &outcome {
            self.language = self.settings.prompts.language_for(user.locale.as_deref());
        }
        self.status_text = self.personal_status(&outcome);
        if let Some(text) = &self.status_text {
            self.render = Render::Pending;
            let sentence = Sentence { lang: self.language.clone(), text: text.clone() };
            self.actions.push_back(Action::Render(sentence));
            self.set(Timer::RenderWait, now + self.settings.render_wait);
        }
        self.dip = Some(outcome);
        if self.phase == Phase::Lookup {
            self.status_when_ready(now);
        }
    }

    fn on_rendered(&mut self, now: Instant, ok: bool) {
        if self.render != Render::Pending {
            return;
        }
        self.clear(Timer::RenderWait);
        self.render = if ok { Render::Ready } else { Render::Failed };
        if self.phase == Phase::Lookup {
            self.status_when_ready(now);
        }
    }

    /// In the lookup: the status plays once the dip, its render and the comfort line are
    /// done; until then, hold music.
    fn status_when_ready(&mut self, now: Instant) {
        if self.comfort.is_some() {
            return;
        }
        if self.dip.is_none() || self.render == Render::Pending {
            self.hold_music();
            return;
        }
        self.path.push(PathStep::StatusHeard);
        self.start_menu(now, self.status_items(), true);
    }

    /// The sentence for a caller with something personal to say (a name, a ticket):
    /// rendered per call. `None` when a sentence rendered at startup fits.
    fn personal_status(&self, outcome: &DipOutcome) -> Option<String> {
        let DipOutcome::Found { user, ticket, greet_by_name } = outcome else { return None };
        let prompts = &self.settings.prompts;
        let lang = &self.language;
        let name = if *greet_by_name { prompts::first_name(&user.name) } else { String::new() };
        let greeting = (!name.is_empty())
            .then(|| prompts.render(lang, PromptKey::Greeting, &[("first_name", &name)]));
        let status = match ticket {
            Some(ticket) => Some(self.ticket_sentence(ticket)?),
            None if greeting.is_some() => {
                Some(prompts.render(lang, PromptKey::StatusNoTicket, &[("first_name", &name)]))
            }
            None => None,
        }?;
        Some(match greeting {
            Some(greeting) => format!("{greeting} {status}"),
            None => status,
        })
    }

    fn ticket_sentence(&self, ticket: &Ticket) -> Option<String> {
        let prompts = &self.settings.prompts;
        let lang = &self.language;
        let status = prompts.render(lang, PromptKey::for_status(ticket.status)?, &[]);
        let id = prompts::digit_by_digit(ticket.id);
        let subject = ticket
            .subject
            .as_deref()
            .map(|s| prompts::clean_text(s, self.settings.max_subject_chars))
            .unwrap_or_default();
        Some(if subject.is_empty() {
            prompts.render(
                lang,
                PromptKey::StatusTicketNoSubject,
                &[("id", &id), ("status", &status)],
            )
        } else {
            let values = [("id", id.as_str()), ("subject", subject.as_str()), ("status", &status)];
            prompts.render(lang, PromptKey::StatusTicket, &values)
        })
    }

    /// What the caller hears as their status.
    fn status_items(&self) -> Vec<Say> {
        if let Some(text) = &self.status_text {
            return match self.render {
                Render::Ready => vec![self.say_text(text.clone())],
                _ => vec![self.sentence(PromptKey::StatusGeneric)],
            };
        }
        let key = match &self.dip {
            Some(DipOutcome::Found { ticket: Some(_), .. }) => PromptKey::StatusGeneric,
            Some(DipOutcome::Found { ticket: None, .. }) => PromptKey::StatusNoTicket,
            Some(DipOutcome::UnknownCaller) => PromptKey::StatusUnknown,
            Some(DipOutcome::Anonymous) => PromptKey::StatusAnonymous,
            Some(DipOutcome::Fallback { .. }) | None => PromptKey::StatusFallback,
        };
        vec![self.sentence(key)]
    }

    // --- the menu ---

    fn start_menu(&mut self, now: Instant, mut before: Vec<Say>, reset: bool) {
        let _ = now;
        self.phase = Phase::Menu;
        if reset {
            self.attempts = 0;
        }
        self.clear(Timer::NoInput);
        before.push(self.sentence(PromptKey::Menu));
        self.play(before, true);
    }

    fn start_busy_menu(&mut self, before: Vec<Say>) {
        self.phase = Phase::Busy;
        self.clear(Timer::NoInput);
        let mut items = before;
        // No callback to offer a caller whose number we do not have.
        let menu = match self.caller.number {
            Some(_) => PromptKey::AgentsBusy,
            None => PromptKey::AgentsBusyNoCallback,
        };
        items.push(self.sentence(menu));
        self.play(items, true);
    }

    fn on_digit(&mut self, now: Instant, digit: char, source: DigitSource) {
        if let Some((last, last_source, at)) = self.last_digit
            && last == digit
            && last_source != source
            && now.saturating_duration_since(at) < self.settings.duplicate_window
        {
            return;
        }
        self.last_digit = Some((digit, source, now));
        match self.phase {
            Phase::Menu => self.menu_key(now, digit),
            Phase::Busy => self.busy_key(now, digit),
            _ => {}
        }
    }

    fn menu_key(&mut self, now: Instant, key: char) {
        self.clear(Timer::NoInput);
        let s = &self.settings;
        if key == s.key_agent {
            self.path.push(PathStep::Pressed { key });
            self.go_agent(now);
        } else if key == s.key_end {
            self.path.push(PathStep::Pressed { key });
            self.end_with(now, CallOutcome::EndedByCaller, PromptKey::Goodbye);
        } else if key == s.key_repeat {
            self.path.push(PathStep::Pressed { key });
            let status = self.status_items();
            self.start_menu(now, status, false);
        } else {
            self.path.push(PathStep::Invalid { key });
            self.menu_retry(now);
        }
    }

    fn busy_key(&mut self, now: Instant, key: char) {
        self.clear(Timer::NoInput);
        if key == self.settings.key_agent {
            self.path.push(PathStep::Pressed { key });
            self.keep_waiting(now);
        } else if key == self.settings.key_end {
            self.path.push(PathStep::Pressed { key });
            match self.caller.number.clone() {
                Some(number) => {
                    let spoken = prompts::digit_by_digit_text(&number);
                    let text = self.settings.prompts.render(
                        &self.language,
                        PromptKey::CallbackRequested,
                        &[("number", &spoken)],
                    );
                    let outcome = CallOutcome::CallbackRequested { number: Some(number) };
                    self.end_saying(now, outcome, self.say_text(text));
                }
                None => {
                    let queue = self.route.as_ref().map(|r| r.queue.clone()).unwrap_or_default();
                    self.end_with(now, CallOutcome::AllAgentsBusy { queue }, PromptKey::Goodbye);
                }
            }
        } else {
            self.path.push(PathStep::Invalid { key });
            self.busy_retry_menu(now);
        }
    }

    /// Another try at the menu, or its default once the tries are used up.
    fn menu_retry(&mut self, now: Instant) {
        self.attempts += 1;
        if self.attempts < self.settings.menu_attempts {
            let sorry = self.sentence(PromptKey::Sorry);
            self.start_menu(now, vec![sorry], false);
            return;
        }
        match self.settings.menu_default {
            MenuDefault::Agent => self.go_agent(now),
            MenuDefault::Hangup => self.end_with(now, CallOutcome::NoInput, PromptKey::Goodbye),
        }
    }

    fn busy_retry_menu(&mut self, now: Instant) {
        self.attempts += 1;
        if self.attempts < self.settings.menu_attempts {
            let sorry = self.sentence(PromptKey::Sorry);
            self.start_busy_menu(vec![sorry]);
        } else {
            self.keep_waiting(now);
        }
    }

    fn on_playback_finished(&mut self, now: Instant, id: PlayId, _interrupted: bool) {
        if self.comfort == Some(id) {
            self.comfort = None;
        }
        if self.playing != Some(id) {
            return;
        }
        self.playing = None;
        match self.phase {
            Phase::Welcome => self.after_welcome(now),
            Phase::Lookup => self.status_when_ready(now),
            // Played out, or stopped by a key that did not move the flow (a key that did
            // has already replaced this play, so its end is stale): wait for a key.
            Phase::Menu | Phase::Busy => self.set(Timer::NoInput, now + self.settings.no_input),
            Phase::Connecting => self.try_target(now),
            Phase::Ending => {
                self.phase = Phase::HangingUp;
                self.actions.push_back(Action::Hangup);
            }
            _ => {}
        }
    }

    // --- agents ---

    fn go_agent(&mut self, now: Instant) {
        self.ivr_ended_at.get_or_insert(now);
        let outcome =
            self.dip.clone().unwrap_or(DipOutcome::Fallback { reason: FallbackReason::Deadline });
        let route = self.settings.router.route(&outcome);
        self.path.push(PathStep::Routed {
            queue: route.queue.clone(),
            ticket_priority: route.ticket_priority,
        });
        self.route = Some(route);
        self.target_index = 0;
        self.mode = self.settings.mode;
        self.phase = Phase::Connecting;
        let connecting = self.sentence(PromptKey::Connecting);
        self.play(vec![connecting], false);
    }

    fn try_target(&mut self, now: Instant) {
        let waited_out =
            self.wait_started.is_some() && self.timers[Timer::WaitLimit as usize].is_none();
        if waited_out {
            self.give_up_waiting(now);
            return;
        }
        let Some(route) = &self.route else { return };
        let Some(target) = route.targets.get(self.target_index).cloned() else {
            self.no_target_free(now);
            return;
        };
        let (ticket_id, user_id) = match &self.dip {
            Some(DipOutcome::Found { user, ticket, .. }) => {
                (ticket.as_ref().map(|t| t.id), Some(user.id))
            }
            _ => (None, None),
        };
        let request = TransferRequest {
            queue: route.queue.clone(),
            target: target.clone(),
            mode: self.mode,
            queue_priority: route.queue_priority,
            ticket_id,
            user_id,
        };
        self.phase = Phase::Transferring;
        self.hold_music();
        if self.mode == TransferMode::Refer {
            self.set(Timer::ReferWait, now + self.settings.refer_wait);
        }
        self.attempt = Some(Attempt { target, mode: self.mode, started: now });
        self.actions.push_back(Action::Transfer(request));
    }

    fn on_transfer(&mut self, now: Instant, update: TransferUpdate) {
        if self.phase != Phase::Transferring {
            // The caller's phone reached the target of a REFER we had given up on.
            if update == TransferUpdate::Connected
                && let Some(attempt) = self.abandoned_refer.take()
                && !matches!(self.phase, Phase::Ending | Phase::HangingUp | Phase::Bridged)
            {
                self.clear_all_but_call_limit();
                self.attempt = Some(attempt);
                self.phase = Phase::Transferring;
                self.on_transfer(now, TransferUpdate::Connected);
            }
            return;
        }
        match update {
            TransferUpdate::Progress(_) => {}
            TransferUpdate::Connected => {
                self.clear(Timer::ReferWait);
                let Some(attempt) = self.attempt.take() else { return };
                let after = now.saturating_duration_since(attempt.started);
                self.wait += after;
                self.path.push(PathStep::TargetAnswered { target: attempt.target.clone(), after });
                let queue = self.route.as_ref().map(|r| r.queue.clone()).unwrap_or_default();
                self.outcome = Some(CallOutcome::Transferred {
                    queue,
                    target: attempt.target,
                    mode: attempt.mode,
                });
                match attempt.mode {
                    TransferMode::Refer => {
                        self.phase = Phase::HangingUp;
                        self.actions.push_back(Action::Hangup);
                    }
                    TransferMode::Bridge => {
                        self.phase = Phase::Bridged;
                        self.connected_at = Some(now);
                    }
                }
            }
            TransferUpdate::Failed(failure) => self.transfer_failed(now, failure),
        }
    }

    fn transfer_failed(&mut self, now: Instant, failure: TransferFailure) {
        self.clear(Timer::ReferWait);
        let Some(attempt) = self.attempt.take() else { return };
        self.wait += now.saturating_duration_since(attempt.started);
        self.path.push(PathStep::TargetFailed { target: attempt.target, failure: failure.clone() });
        let refer = attempt.mode == TransferMode::Refer;
        if refer
            && self.settings.refer_fallback_bridge
            && matches!(failure, TransferFailure::Refused { status: 405 | 501 })
        {
            self.mode = TransferMode::Bridge;
            self.try_target(now);
            return;
        }
        let more = self.route.as_ref().is_some_and(|r| self.target_index + 1 < r.targets.len());
        if !refer || failure == TransferFailure::Unavailable || more {
            self.target_index += 1;
            self.try_target(now);
            return;
        }
        self.refer_failures += 1;
        if self.refer_failures == 1 && self.wait_started.is_none() {
            let sorry = self.sentence(PromptKey::TransferFailed);
            self.start_menu(now, vec![sorry], true);
        } else {
            self.no_target_free(now);
        }
    }

    /// The agent answered, but the caller could not be bridged: the caller's media is
    /// gone, so the call ends, saying why.
    fn bridge_failed(&mut self, now: Instant, failure: TransferFailure) {
        let Some(attempt) = self.attempt.take() else { return };
        let queue = self.route.as_ref().map(|r| r.queue.clone()).unwrap_or_default();
        let reason = failure.to_string();
        self.path.push(PathStep::TargetFailed { target: attempt.target, failure });
        self.hang_up(now, CallOutcome::TransferFailed { queue, reason });
    }

    /// Every target of the route was tried.
    fn no_target_free(&mut self, now: Instant) {
        match self.wait_started {
            None => {
                self.path.push(PathStep::AgentsBusy);
                self.attempts = 0;
                self.start_busy_menu(Vec::new());
            }
            Some(_) if self.timers[Timer::WaitLimit as usize].is_none() => {
                self.give_up_waiting(now)
            }
            Some(_) => {
                self.phase = Phase::Waiting;
                self.hold_music();
                self.set(Timer::BusyRetry, now + self.settings.retry_interval);
            }
        }
    }

    fn keep_waiting(&mut self, now: Instant) {
        self.path.push(PathStep::KeptWaiting);
        self.wait_started = Some(now);
        self.set(Timer::WaitLimit, now + self.settings.max_wait);
        self.phase = Phase::Waiting;
        self.hold_music();
        self.set(Timer::BusyRetry, now + self.settings.retry_interval);
    }

    fn give_up_waiting(&mut self, now: Instant) {
        self.clear(Timer::BusyRetry);
        let queue = self.route.as_ref().map(|r| r.queue.clone()).unwrap_or_default();
        self.end_with(now, CallOutcome::AllAgentsBusy { queue }, PromptKey::BusyGoodbye);
    }

    // --- the end ---

    /// Says a last sentence, then hangs up.
    fn end_with(&mut self, now: Instant, outcome: CallOutcome, key: PromptKey) {
        let sentence = self.sentence(key);
        self.end_saying(now, outcome, sentence);
    }

    fn end_saying(&mut self, now: Instant, outcome: CallOutcome, last: Say) {
        self.ivr_ended_at.get_or_insert(now);
        self.outcome = Some(outcome);
        self.phase = Phase::Ending;
        self.play(vec![last], false);
    }

    /// Hangs up now (unless an outcome was already decided).
    fn hang_up(&mut self, now: Instant, outcome: CallOutcome) {
        if matches!(self.phase, Phase::HangingUp | Phase::Done) {
            return;
        }
        self.ivr_ended_at.get_or_insert(now);
        if self.attempt.is_some() {
            self.actions.push_back(Action::CancelTransfer);
        }
        self.outcome.get_or_insert(outcome);
        self.phase = Phase::HangingUp;
        self.actions.push_back(Action::Hangup);
    }

    fn on_timer(&mut self, now: Instant, timer: Timer) {
        match timer {
            Timer::CallLimit => {
                self.hang_up(now, CallOutcome::Dropped { reason: DropReason::TimeLimit })
            }
            Timer::DipWait => {
                self.on_dip(now, DipOutcome::Fallback { reason: FallbackReason::Deadline })
            }
            Timer::RenderWait => self.on_rendered(now, false),
            Timer::ReferWait => {
                if self.phase == Phase::Transferring {
                    // The phone may still get there: a late 2xx is still a transfer.
                    self.abandoned_refer = self.attempt.clone();
                    self.actions.push_back(Action::CancelTransfer);
                    self.transfer_failed(now, TransferFailure::TimedOut);
                }
            }
            Timer::NoInput => match self.phase {
                Phase::Menu => {
                    self.path.push(PathStep::NoInput);
                    self.menu_retry(now);
                }
                Phase::Busy => {
                    self.path.push(PathStep::NoInput);
                    self.busy_retry_menu(now);
                }
                _ => {}
            },
            Timer::BusyRetry => {
                if self.phase == Phase::Waiting {
                    self.target_index = 0;
                    self.mode = self.settings.mode;
                    self.try_target(now);
                }
            }
            Timer::WaitLimit => {
                if self.phase == Phase::Waiting {
                    self.give_up_waiting(now);
                }
            }
        }
    }

    /// Stops every timer of the menu and the waiting; the call limit stays.
    fn clear_all_but_call_limit(&mut self) {
        for timer in [Timer::NoInput, Timer::BusyRetry, Timer::WaitLimit, Timer::ReferWait] {
            self.clear(timer);
        }
    }

    fn on_ended(&mut self, now: Instant, cause: EndCause) {
        let step = self.step();
        let talk =
            self.connected_at.map(|at| now.saturating_duration_since(at)).unwrap_or_default();
        if let Some(attempt) = self.attempt.take() {
            self.wait += now.saturating_duration_since(attempt.started);
        }
        let outcome = match (self.outcome.take(), cause) {
            (Some(outcome), _) => outcome,
            (None, EndCause::Caller) => match self.path.last() {
                Some(PathStep::TargetFailed { failure, .. }) if self.phase == Phase::Menu => {
                    let queue = self.route.as_ref().map(|r| r.queue.clone()).unwrap_or_default();
                    CallOutcome::TransferFailed { queue, reason: failure.to_string() }
                }
                _ => CallOutcome::HungUp { step },
            },
            (None, EndCause::Us | EndCause::Failed) => {
                CallOutcome::Dropped { reason: DropReason::Error }
            }
        };
        let start = self.answered_at.unwrap_or(now);
        let ivr_end = self.ivr_ended_at.unwrap_or(now);
        self.timers = [None; TIMERS];
        self.phase = Phase::Done;
        self.actions.push_back(Action::Finish(FlowReport {
            outcome,
            path: std::mem::take(&mut self.path),
            ivr_duration: ivr_end.saturating_duration_since(start),
            wait: self.wait,
            talk,
            language: self.language.clone(),
            route: self.route.take(),
        }));
    }
}

#[cfg(test)]
mod tests;
