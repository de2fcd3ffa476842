//! OPTIONS probes (RFC 3261 §11) of transfer targets, outside any dialog, as Kamailio's
//! dispatcher pings its destinations. The result is the final status, or 408 when the
//! client transaction timed out; what counts as "up" is the caller's rule.

use std::net::SocketAddr;
use std::time::Instant;

use rsip::Method;

use super::outgoing_call::check_target;
use super::state::Local;
use super::{Ua, UaAction, UaError};
use crate::sip::message::Transport;
use crate::sip::transaction::TransactionId;

/// Names one probe in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProbeId(pub u64);

impl Ua {
    /// Sends OPTIONS to `target` (its host an IP literal, or resolved by the runtime to
    /// `resolved`); the answer comes back as [`UaAction::Probed`].
    pub fn probe(
        &mut self,
        now: Instant,
        target: &str,
        resolved: Option<SocketAddr>,
    ) -> Result<ProbeId, UaError> {
        let _ = now;
        let target = check_target(target)?;
        let user = crate::sip::header_text::escape_uri(&self.config.contact_user);
        let mut dialog = self.new_uac_dialog(&user, target, resolved, Transport::Udp)?;
        let dest = dialog.next_hop();
        let branch = self.new_branch();
        let contact = self.contact(dest.transport);
        let (local_host, user_agent) = self.local();
        let local = Local {
            host: &local_host,
            port: self.config.port_for(dest.transport),
            contact: &contact,
            user_agent: &user_agent,
        };
        let request = dialog
            .request(
                Method::Options,
                &local,
                &branch,
                vec![crate::sip::response::accept_sdp()],
                None,
            )
            .map_err(|e| UaError::Build(e.to_string()))?;
        self.next_probe += 1;
        let id = ProbeId(self.next_probe);
        self.probes.insert(branch, id);
        self.actions.push_back(UaAction::Send { request, dest });
        Ok(id)
    }

    /// A response on one of our probes' branches; false when `branch` is not one.
    pub(super) fn on_probe_response(&mut self, branch: &str, status: u16) -> bool {
        if !self.probes.contains_key(branch) {
            return false;
        }
        if status >= 200
            && let Some(id) = self.probes.remove(branch)
        {
            self.actions.push_back(UaAction::Probed { id, status });
        }
        true
    }

    /// The probe on `branch` could not be sent (the transaction layer refused it): it ends
    /// as unanswered, so nothing waits on it.
    pub fn probe_not_sent(&mut self, branch: &str) {
        if let Some(id) = self.probes.remove(branch) {
            self.actions.push_back(UaAction::Probed { id, status: 408 });
        }
    }

    /// A client transaction timed out; true when it was a probe's.
    pub(super) fn on_probe_timeout(&mut self, id: &TransactionId) -> bool {
        let branch = self.probes.keys().find(|b| id.as_str().contains(b.as_str())).cloned();
        match branch.and_then(|b| self.probes.remove(&b)) {
            Some(probe) => {
                self.actions.push_back(UaAction::Probed { id: probe, status: 408 });
                true
            }
            None => false,
        }
    }
}
