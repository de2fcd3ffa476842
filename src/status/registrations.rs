//! Trunk registrations as the status page shows them. The registration code either
//! implements [`RegistrationProvider`] itself or keeps a [`RegistrationTable`], whose
//! [`RegistrationTable::set`] also sets the `sip_registration_up{registration}` gauge.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use serde::Serialize;

use crate::metric_catalog::set_registration_up;

/// One trunk registration's state, as the registration code reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegistrationStatus {
    /// The entry's name or AOR (never a password).
    pub name: String,
    pub registered: bool,
    /// A short word or phrase: `registered`, `retrying in 30 s`, `401 after auth`…
    pub detail: String,
}

/// Reports the trunk registrations' states when asked.
pub trait RegistrationProvider: Send + Sync {
    fn registrations(&self) -> Vec<RegistrationStatus>;
}

/// A shared table of registration states, by name; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct RegistrationTable {
    states: Arc<RwLock<BTreeMap<String, RegistrationStatus>>>,
}

impl RegistrationTable {
    /// Records a registration's state, for the status page and the metric.
    pub fn set(&self, name: &str, registered: bool, detail: &str) {
        let status =
            RegistrationStatus { name: name.to_string(), registered, detail: detail.to_string() };
        let mut states = self.states.write().unwrap_or_else(|p| p.into_inner());
        states.insert(name.to_string(), status);
        set_registration_up(name, registered);
    }
}

impl RegistrationProvider for RegistrationTable {
    fn registrations(&self) -> Vec<RegistrationStatus> {
        let states = self.states.read().unwrap_or_else(|p| p.into_inner());
        states.values().cloned().collect()
    }
}

/// The trunk registrations (`sip.register`) as the status page shows them.
impl RegistrationProvider for crate::sip::registrations::RegistrationsView {
    fn registrations(&self) -> Vec<RegistrationStatus> {
        use crate::sip::registration::RegistrationState as State;
        let now = std::time::Instant::now();
        let secs = |at: std::time::Instant| at.saturating_duration_since(now).as_secs();
        self.snapshot()
            .into_iter()
            .map(|entry| {
                let state = match entry.state {
                    State::Registering => "registering".to_string(),
                    State::Registered { expires } => {
                        format!("registered, expires in {} s", secs(expires))
                    }
                    State::Failed { retry_at } => {
                        format!("failed, retrying in {} s", secs(retry_at))
                    }
                    State::Unregistering => "unregistering".to_string(),
                    State::Unregistered => "unregistered".to_string(),
                };
                RegistrationStatus {
                    name: entry.name,
                    registered: entry.state.is_up(),
                    detail: format!("{state} at {}", entry.registrar),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_feeds_the_page_and_the_gauge() {
        let table = RegistrationTable::default();
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        metrics::with_local_recorder(&recorder, || {
            table.set("trunk-b", false, "retrying in 30 s");
            table.set("trunk-a", true, "registered");
            table.set("trunk-b", true, "registered");
        });
        let names: Vec<_> =
            table.registrations().into_iter().map(|r| (r.name, r.registered)).collect();
        assert_eq!(names, [("trunk-a".to_string(), true), ("trunk-b".to_string(), true)]);
        let text = recorder.handle().render();
        assert!(text.contains(r#"sip_registration_up{registration="trunk-a"} 1"#), "{text}");
        assert!(text.contains(r#"sip_registration_up{registration="trunk-b"} 1"#), "{text}");
    }
}
