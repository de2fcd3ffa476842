//! Which transfer targets are up (runtime layer): every `routing.probe_interval_s`, each
//! target gets an OPTIONS, as Kamailio's dispatcher pings its destinations; calls read
//! the table and skip a target that is down at once. A target never probed counts as up.
//!
//! Up: any final answer below 500 except 408 and 480 (a 404 or 405 still proves a live
//! SIP element there). Down: no answer in time, 408, 480, or 5xx/6xx.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tracing::{info, warn};

use crate::sip::endpoint::EndpointHandle;

/// Whether a probe's final status means the target can take calls.
pub fn is_up(status: u16) -> bool {
    (200..500).contains(&status) && !matches!(status, 408 | 480)
}

/// Probes every target every `interval` until the endpoint stops; one probe waits at
/// most `timeout` (a lost answer counts as down).
pub async fn run_prober(
    endpoint: EndpointHandle,
    targets: Vec<String>,
    states: TargetStates,
    interval: Duration,
    timeout: Duration,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let mut probes = tokio::task::JoinSet::new();
        for target in targets.iter().cloned() {
            let endpoint = endpoint.clone();
            probes.spawn(async move {
                let result = tokio::time::timeout(timeout, endpoint.probe(&target)).await;
                (target, result)
            });
        }
        while let Some(Ok((target, result))) = probes.join_next().await {
            let target = target.as_str();
            let state = match result {
                Ok(Ok(status)) if is_up(status) => TargetState::Up,
                Ok(Ok(_)) | Err(_) => TargetState::Down,
                Ok(Err(crate::sip::endpoint::DialError::EndpointStopped)) => return,
                Ok(Err(err)) => {
                    warn!(%err, target, "cannot probe the target");
                    TargetState::Down
                }
            };
            if states.state(target) != Some(state) {
                info!(target, ?state, "transfer target state");
            }
            states.set(target, state);
        }
    }
}

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

    /// A target's last probed state.
    pub fn state(&self, target: &str) -> Option<TargetState> {
        let states = self.states.read().unwrap_or_else(|p| p.into_inner());
        states.get(target).copied()
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
    fn live_answers_count_as_up() {
        for status in [200, 404, 405, 486] {
            assert!(is_up(status), "{status}");
        }
        for status in [100, 408, 480, 500, 503, 603] {
            assert!(!is_up(status), "{status}");
        }
    }

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
