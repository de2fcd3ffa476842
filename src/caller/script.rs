//! What the test caller does when (sans-IO): the digits to press some time after the
//! answer, one after the other, and the hang-up when the call has lasted long enough.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// From one digit's start to the next one's: 160 ms of key press and a pause.
pub const DIGIT_SPACING: Duration = Duration::from_millis(400);

/// Something the runtime must do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptAction {
    /// Press this key (in the call's DTMF mode).
    Press(char),
    /// The call has lasted its time: hang up.
    HangUp,
}

/// The caller's timeline.
#[derive(Debug)]
pub struct Script {
    digits: VecDeque<char>,
    dtmf_at: Duration,
    next_digit_at: Option<Instant>,
    hangup_at: Option<Instant>,
    actions: VecDeque<ScriptAction>,
}

impl Script {
    /// Presses `digits` from `dtmf_at` after the answer; hangs up `duration` after `now`
    /// (the start of the call).
    pub fn new(now: Instant, digits: &str, dtmf_at: Duration, duration: Duration) -> Script {
        Script {
            digits: digits.chars().collect(),
            dtmf_at,
            next_digit_at: None,
            hangup_at: Some(now + duration),
            actions: VecDeque::new(),
        }
    }

    /// The call was answered (the first answer only counts).
    pub fn answered(&mut self, now: Instant) {
        if self.next_digit_at.is_none() && !self.digits.is_empty() {
            self.next_digit_at = Some(now + self.dtmf_at);
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(at) = self.next_digit_at
            && at <= now
        {
            match self.digits.pop_front() {
                Some(digit) => {
                    self.actions.push_back(ScriptAction::Press(digit));
                    self.next_digit_at = (!self.digits.is_empty()).then(|| at + DIGIT_SPACING);
                }
                None => self.next_digit_at = None,
            }
        }
        if let Some(at) = self.hangup_at
            && at <= now
        {
            self.hangup_at = None;
            self.actions.push_back(ScriptAction::HangUp);
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.next_digit_at, self.hangup_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn poll_action(&mut self) -> Option<ScriptAction> {
        self.actions.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_until(
        script: &mut Script,
        now: &mut Instant,
        end: Instant,
    ) -> Vec<(u128, ScriptAction)> {
        let start = *now;
        let mut out = Vec::new();
        while let Some(at) = script.poll_timeout().filter(|at| *at <= end) {
            *now = at;
            script.handle_timeout(at);
            while let Some(action) = script.poll_action() {
                out.push(((at - start).as_millis(), action));
            }
        }
        out
    }

    #[test]
    fn digits_follow_the_answer_and_the_call_ends_on_time() {
        let mut now = Instant::now();
        let start = now;
        let mut script = Script::new(now, "12#", Duration::from_secs(2), Duration::from_secs(10));
        assert_eq!(script.poll_timeout(), Some(start + Duration::from_secs(10)));
        now += Duration::from_millis(500);
        script.answered(now);
        script.answered(now + Duration::from_secs(1)); // a second answer changes nothing
        let got = run_until(&mut script, &mut now, start + Duration::from_secs(20));
        let want = vec![
            (2500, ScriptAction::Press('1')),
            (2900, ScriptAction::Press('2')),
            (3300, ScriptAction::Press('#')),
            (10000, ScriptAction::HangUp),
        ];
        let got: Vec<_> = got.into_iter().map(|(ms, a)| (ms + 500, a)).collect();
        assert_eq!(got, want);
        assert_eq!(script.poll_timeout(), None);
    }

    #[test]
    fn no_answer_no_digits() {
        let mut now = Instant::now();
        let start = now;
        let mut script = Script::new(now, "1", Duration::ZERO, Duration::from_secs(3));
        let got = run_until(&mut script, &mut now, start + Duration::from_secs(5));
        assert_eq!(got, vec![(3000, ScriptAction::HangUp)]);
    }
}
