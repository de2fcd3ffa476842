//! The endpoint's door (runtime layer): runs [`Admission`] on each message before the
//! transaction layer sees it, and carries out its verdicts: the stateless answer, the
//! `sip_requests_rejected_total{reason}` count, and the security log lines.

use std::time::Instant;

use bytes::Bytes;
use tracing::debug;

use crate::security_event;
use crate::sip::admission::{Admission, AdmissionSettings, Verdict};
use crate::sip::transaction::Peer;
use crate::sip::transport::Transports;

/// Admission and what the endpoint needs to carry out its verdicts.
pub struct Gate {
    admission: Admission,
    /// The Server header of stateless answers (empty: none).
    server: String,
    /// `sip_rate_limit_buckets`, registered once (set on every message, so a handle
    /// rather than a registry look-up per packet).
    buckets: metrics::Gauge,
}

impl Gate {
    pub fn new(settings: AdmissionSettings, server: String) -> Self {
        Gate {
            admission: Admission::new(Instant::now(), settings),
            server,
            buckets: metrics::gauge!("sip_rate_limit_buckets"),
        }
    }

    /// See [`Admission::set_resolved_peers`].
    pub fn set_resolved_peers(&mut self, addresses: Vec<std::net::IpAddr>) {
        self.admission.set_resolved_peers(addresses);
    }

    /// Lets everything in.
    pub fn open() -> Self {
        Gate::new(AdmissionSettings::open(), String::new())
    }

    /// Whether `message` from `peer` may go on to the transaction layer; a refused one
    /// is answered (when its verdict says so), counted and logged here.
    pub async fn admit(
        &mut self,
        transports: &Transports,
        message: &rsip::SipMessage,
        peer: Peer,
    ) -> bool {
        let verdict = self.admission.check(Instant::now(), peer.addr.ip(), message);
        self.buckets.set(self.admission.tracked_sources() as f64);
        while let Some(notice) = self.admission.poll_notice() {
            security_event::report(notice.event, notice.source, &notice.detail);
        }
        let reason = match verdict {
            Verdict::Admit => return true,
            Verdict::Drop(reason) | Verdict::Reject { reason, .. } => reason,
        };
        metrics::counter!("sip_requests_rejected_total", "reason" => reason.as_str()).increment(1);
        if let (Verdict::Reject { status, retry_after, .. }, rsip::SipMessage::Request(request)) =
            (verdict, message)
        {
            debug!(from = %peer.addr, status, reason = reason.as_str(), "request refused");
            let tag = new_tag();
            let response =
                crate::sip::admission::rejection(request, status, retry_after, &tag, &self.server);
            let bytes: Vec<u8> = rsip::SipMessage::Response(response).into();
            transports.send(peer, Bytes::from(bytes)).await;
        }
        false
    }
}

/// A fresh To tag for a stateless answer.
fn new_tag() -> String {
    use rand::Rng;
    use rand::distr::Alphanumeric;
    rand::rng().sample_iter(Alphanumeric).take(16).map(char::from).collect()
}
