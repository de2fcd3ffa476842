//! RFC 3261 transactions (sans-IO).

use std::net::SocketAddr;
use std::time::Duration;

use crate::sip::message::Transport;

/// Where a message came from or goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Peer {
    pub addr: SocketAddr,
    pub transport: Transport,
}

/// RFC 3261 timer base values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerConfig {
    pub t1: Duration,
    pub t2: Duration,
    pub t4: Duration,
}

impl Default for TimerConfig {
    fn default() -> Self {
        TimerConfig {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

/// Identifies one transaction (server or client). Opaque to the layers above.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TransactionId(pub(crate) String);

impl TransactionId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A message the runtime must put on the wire.
#[derive(Debug, Clone)]
pub struct Transmit {
    pub peer: Peer,
    pub message: rsip::SipMessage,
}

/// What the transaction layer tells the transaction user (the dialog layer).
#[derive(Debug, Clone)]
pub enum TransactionEvent {
    /// A new request (not ACK, not CANCEL) opened a server transaction.
    Request { id: TransactionId, request: rsip::Request, source: Peer },
    /// A CANCEL matched a pending INVITE server transaction. The layer already answered
    /// the CANCEL with 200; the user must answer the INVITE with 487.
    Cancelled { invite: TransactionId, request: rsip::Request },
    /// An ACK to a 2xx (it matched an accepted INVITE, or no transaction at all).
    Ack { request: rsip::Request, source: Peer },
    /// A response to a client transaction (provisional or final; retransmissions absorbed).
    Response { id: TransactionId, response: rsip::Response },
    /// A client transaction got no final response (Timer B or F), or an INVITE server
    /// transaction got no ACK for its final response (Timer H, also for 2xx).
    Timeout { id: TransactionId },
}
