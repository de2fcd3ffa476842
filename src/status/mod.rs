//! What the status page and `/calls.json` show (runtime layer): the call board, the
//! outbox's depth, the transfer targets' probe states and the trunk registrations.
//!
//! The server fills [`StatusSources`] as it starts; the admin listener reads it through
//! [`StatusSources::snapshot`]. Registrations come from a [`RegistrationProvider`] that the
//! trunk registration sets with [`StatusSources::set_registrations`] (a
//! [`RegistrationTable`] does, and keeps `sip_registration_up` in step); without one the
//! section is empty.

pub mod board;
pub mod registrations;

use std::sync::{Arc, OnceLock, RwLock};
use std::time::Instant;

use serde::Serialize;

pub use board::{CallBoard, CallEntry, CallsSnapshot};
pub use registrations::{RegistrationProvider, RegistrationStatus, RegistrationTable};

use crate::outbox::Outbox;
use crate::transfer::probe::{TargetState, TargetStates};

/// The outbox's counts, for the page.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct OutboxStatus {
    pub pending: u64,
    pub dead_letters: u64,
    pub oldest_pending_s: Option<f64>,
}

/// One transfer target's probe state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TargetStatus {
    pub target: String,
    pub up: bool,
}

/// Everything the status page shows, at one moment.
#[derive(Debug, Clone, Serialize)]
pub struct StatusSnapshot {
    pub draining: bool,
    pub calls: CallsSnapshot,
    /// `None` when Zendesk (and so the outbox) is disabled, or its database failed.
    pub outbox: Option<OutboxStatus>,
    pub targets: Vec<TargetStatus>,
    pub registrations: Vec<RegistrationStatus>,
}

/// Where the status page's data comes from; shared by the server and the admin listener.
#[derive(Default)]
pub struct StatusSources {
    pub calls: CallBoard,
    pub targets: TargetStates,
    outbox: OnceLock<Outbox>,
    registrations: RwLock<Option<Arc<dyn RegistrationProvider>>>,
}

impl StatusSources {
    /// The outbox whose depth is shown (set once, when it is open).
    pub fn set_outbox(&self, outbox: Outbox) {
        let _ = self.outbox.set(outbox);
    }

    /// The trunk registrations' provider (replaces an earlier one).
    pub fn set_registrations(&self, provider: Arc<dyn RegistrationProvider>) {
        let mut slot = self.registrations.write().unwrap_or_else(|p| p.into_inner());
        *slot = Some(provider);
    }

    /// Reads every source; the outbox's count runs on the blocking pool.
    pub async fn snapshot(&self, draining: bool) -> StatusSnapshot {
        let outbox = match self.outbox.get() {
            Some(outbox) => match outbox.stats().await {
                Ok(stats) => Some(OutboxStatus {
                    pending: stats.pending,
                    dead_letters: stats.dead_letters,
                    oldest_pending_s: stats.oldest_pending_age.map(|d| d.as_secs_f64().round()),
                }),
                Err(err) => {
                    tracing::warn!(%err, "status page: cannot read the outbox's counts");
                    None
                }
            },
            None => None,
        };
        let provider = self.registrations.read().unwrap_or_else(|p| p.into_inner()).clone();
        StatusSnapshot {
            draining,
            calls: self.calls.snapshot(Instant::now()),
            outbox,
            targets: self
                .targets
                .snapshot()
                .into_iter()
                .map(|(target, state)| TargetStatus { target, up: state == TargetState::Up })
                .collect(),
            registrations: provider.map(|p| p.registrations()).unwrap_or_default(),
        }
    }
}
