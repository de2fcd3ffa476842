//! Which transfer targets are up (runtime layer): a shared table that the target prober
//! writes and calls read, so a target that is down is skipped at once. A target never
//! probed counts as up.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// A target's last known state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetState {
    Up,
    Down,
}

/// The targets' states; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct TargetStates {
    states: Arc<RwLock<HashMap<String, TargetState>>>,
}

impl TargetStates {
    /// Whether `target` is known to be down.
    pub fn is_down(&self, target: &str) -> bool {
        let states = self.states.read().unwrap_or_else(|p| p.into_inner());
        states.get(target) == Some(&TargetState::Down)
    }

    /// Records a probe's result (and shows it in metrics as `transfer_target_up`).
    pub fn set(&self, target: &str, state: TargetState) {
        let mut states = self.states.write().unwrap_or_else(|p| p.into_inner());
        states.insert(target.to_string(), state);
        let up = if state == TargetState::Up { 1.0 } else { 0.0 };
        metrics::gauge!("transfer_target_up", "target" => target.to_string()).set(up);
    }

    /// Every probed target and its state.
    pub fn snapshot(&self) -> Vec<(String, TargetState)> {
        let states = self.states.read().unwrap_or_else(|p| p.into_inner());
        let mut all: Vec<_> = states.iter().map(|(t, s)| (t.clone(), *s)).collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_targets_count_as_up() {
        let states = TargetStates::default();
        assert!(!states.is_down("sip:a@10.0.0.1"));
        states.set("sip:a@10.0.0.1", TargetState::Down);
        assert!(states.is_down("sip:a@10.0.0.1"));
        states.set("sip:a@10.0.0.1", TargetState::Up);
        assert!(!states.is_down("sip:a@10.0.0.1"));
        assert_eq!(states.snapshot(), vec![("sip:a@10.0.0.1".to_string(), TargetState::Up)]);
    }
}
