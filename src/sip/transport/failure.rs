//! Reports of requests the transport could not deliver, back to the endpoint task, which
//! feeds them to the transaction layer
//! ([`TransactionLayer::handle_transport_error`](crate::sip::transaction::TransactionLayer::handle_transport_error)).

use std::io;

use tokio::sync::mpsc;
use tracing::warn;

use crate::sip::transaction::{Peer, TransactionId};

/// A client transaction's request that could not be delivered, and why.
#[derive(Debug)]
pub struct SendFailure {
    pub transaction: TransactionId,
    pub peer: Peer,
    pub reason: String,
}

/// Sent along with a client transaction's request: whom to tell if it cannot be
/// delivered. Each request's report goes out at most once (it is consumed).
#[derive(Debug)]
pub struct SendReport {
    transaction: TransactionId,
    to: mpsc::UnboundedSender<SendFailure>,
}

impl SendReport {
    pub fn new(transaction: TransactionId, to: mpsc::UnboundedSender<SendFailure>) -> Self {
        SendReport { transaction, to }
    }

    /// Logs the failure and reports it (nothing more if the endpoint has stopped).
    pub(super) fn failed(self, peer: Peer, reason: impl Into<String>) {
        let reason = reason.into();
        warn!(dest = %peer.addr, transport = %peer.transport, %reason, transaction = self.transaction.as_str(), "request not delivered; its transaction fails at once");
        metrics::counter!("sip_transport_errors_total", "transport" => peer.transport.to_string())
            .increment(1);
        let _ = self.to.send(SendFailure { transaction: self.transaction, peer, reason });
    }
}

/// Reports `report`'s failure, if there is a report.
pub(super) fn report(report: Option<SendReport>, peer: Peer, reason: impl Into<String>) {
    if let Some(report) = report {
        report.failed(peer, reason);
    }
}

/// A UDP send error that says the destination cannot be reached (no route, refused,
/// forbidden), as opposed to a transient one.
pub(super) fn is_fatal_udp(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::HostUnreachable
            | io::ErrorKind::NetworkUnreachable
            | io::ErrorKind::AddrNotAvailable
            | io::ErrorKind::PermissionDenied
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unreachable_destinations_fail_a_udp_request() {
        for kind in [io::ErrorKind::NetworkUnreachable, io::ErrorKind::ConnectionRefused] {
            assert!(is_fatal_udp(&io::Error::from(kind)), "{kind:?}");
        }
        let no_buffers = io::Error::from_raw_os_error(105); // ENOBUFS on Linux
        assert!(!is_fatal_udp(&no_buffers), "left to the retransmissions");
        assert!(!is_fatal_udp(&io::Error::from(io::ErrorKind::Interrupted)));
    }
}
