//! RFC 3261 transactions (sans-IO).
//!
//! [`TransactionLayer`] holds every client and server transaction of an endpoint. It takes
//! parsed messages and the current time, and hands back messages to send
//! ([`TransactionLayer::poll_transmit`]), events for the transaction user
//! ([`TransactionLayer::poll_event`]) and its next deadline
//! ([`TransactionLayer::poll_timeout`]). It never reads the clock or touches a socket.
//!
//! State machines follow RFC 3261 §17 with RFC 6026's Accepted state for INVITE 2xx:
//! the server INVITE transaction retransmits its 2xx over unreliable transports until the ACK
//! (matched by Call-ID, CSeq number and From tag, since that ACK has its own branch) and
//! reports [`TransactionEvent::Timeout`] when none comes by Timer H.
//!
//! Choices worth knowing:
//! - Timer A doubles without a T2 cap (RFC 3261 §17.1.1.2); Timer B bounds it, so an INVITE
//!   over UDP is sent at 0, T1, 3·T1, 7·T1 … 63·T1. Timers E and G are capped at T2.
//! - Timer B stops once a provisional arrives (an INVITE may ring for minutes). Sending a
//!   CANCEL re-arms it, so a cancelled INVITE that never gets its 487 still ends (§9.1).
//! - Zero-length waits (I, J, K, D over TCP) end the transaction at once instead of arming
//!   a timer.
//! - A transport error on a client transaction's request (reported by the runtime, see
//!   [`TransactionLayer::handle_transport_error`]) ends it at once with a 503 made here,
//!   as RFC 3261 §8.1.3.1 asks, instead of waiting for Timer B or F.
//! - The 200 to a CANCEL carries the To tag of the INVITE's latest response when there is
//!   one (§9.2); otherwise, like the 481 and the overload 503, a fresh tag.
//! - Matching keys: branch + sent-by + method (ACK as INVITE) for RFC 3261 branches;
//!   Request-URI + From tag + Call-ID + CSeq number + top Via + method otherwise, with the
//!   ACK's To tag checked against the final response sent (§17.2.3).

mod build;
mod client;
mod fields;
mod memory;
#[doc(hidden)]
pub use fields::fuzz_one as fuzz_fields;
mod server;
mod timers;

#[cfg(test)]
mod tests;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::Rng;
use rand::distr::Alphanumeric;

use crate::sip::message::Transport;

use fields::MAGIC_COOKIE;
use memory::Bound;
pub use memory::{
    DEFAULT_MAX_STORED_BYTES, DEFAULT_MAX_TRANSACTIONS, PER_TRANSACTION_BYTES, TransactionLimits,
};
use timers::{Timer, TimerKey, TimerTable};

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

impl From<&crate::config::SipConfig> for TimerConfig {
    /// Config keys `sip.t1_ms`, `sip.t2_ms`, `sip.t4_ms`.
    fn from(sip: &crate::config::SipConfig) -> Self {
        TimerConfig { t1: sip.t1(), t2: sip.t2(), t4: sip.t4() }
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
    /// The client transaction whose request this is: if the transport cannot deliver it
    /// (connection refused, TLS handshake failed, connection lost), the runtime reports it
    /// with [`TransactionLayer::handle_transport_error`].
    pub transaction: Option<TransactionId>,
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
    /// transaction got no ACK for its final response (Timer H, also for 2xx). (A transport
    /// error is no Timeout: the client transaction passes up a 503 made here, see
    /// [`TransactionLayer::handle_transport_error`].)
    Timeout { id: TransactionId },
}

/// Why the transaction user's call was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransactionError {
    #[error("no live transaction {0:?}")]
    Unknown(TransactionId),
    #[error("{0:?} is a client transaction; only server transactions are answered")]
    NotServer(TransactionId),
    #[error("{0:?} already sent its final response")]
    AlreadyFinal(TransactionId),
    #[error("status code {0} is outside 100-699")]
    InvalidStatus(u16),
    #[error("ACK is sent outside client transactions")]
    AckNotAllowed,
    #[error("request has no top Via branch")]
    MissingBranch,
    #[error("a client transaction with branch {0} and this method already exists")]
    DuplicateBranch(String),
    #[error("request headers unusable: {0}")]
    Malformed(String),
    #[error("live transaction limit ({0}) reached")]
    Overloaded(usize),
    #[error("stored message budget ({0} bytes) reached")]
    OverBudget(usize),
}

/// A fresh RFC 3261 branch: the magic cookie and 24 random alphanumerics.
pub fn new_branch() -> String {
    let random: String = rand::rng().sample_iter(Alphanumeric).take(24).map(char::from).collect();
    format!("{MAGIC_COOKIE}{random}")
}

/// Where deadlines too far to represent are clamped.
const FAR_FUTURE: Duration = Duration::from_secs(365 * 24 * 3600);

/// Timer D on unreliable transports (RFC 3261 §17.1.1.2: at least 32 s).
const TIMER_D: Duration = Duration::from_secs(32);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    InviteServer,
    NonInviteServer,
    InviteClient,
    NonInviteClient,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Client INVITE before any response.
    Calling,
    /// Non-INVITE before any response.
    Trying,
    Proceeding,
    /// INVITE after a 2xx (RFC 6026).
    Accepted,
    Completed,
    /// Server INVITE after the ACK to a non-2xx.
    Confirmed,
}

/// Server transaction key (RFC 3261 §17.2.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum ServerKey {
    Branch {
        branch: String,
        sent_by: String,
        method: String,
    },
    /// RFC 2543 peers: no magic cookie in the branch.
    Legacy {
        request_uri: String,
        from_tag: Option<String>,
        call_id: String,
        cseq: u32,
        top_via: String,
        method: String,
    },
}

impl ServerKey {
    /// The key of the transaction `request` belongs to, taken as a `method` request
    /// (ACK matches INVITE; CANCEL looks up its INVITE this way).
    fn new(request: &rsip::Request, fields: &fields::Fields, method: &str) -> ServerKey {
        match fields.via.rfc3261_branch() {
            Some(branch) => ServerKey::Branch {
                branch: branch.to_owned(),
                sent_by: fields.via.sent_by.clone(),
                method: method.to_owned(),
            },
            None => ServerKey::Legacy {
                request_uri: request.uri.to_string(),
                from_tag: fields.from_tag.clone(),
                call_id: fields.call_id.clone(),
                cseq: fields.cseq,
                top_via: fields.via.raw.clone(),
                method: method.to_owned(),
            },
        }
    }
}

/// Client transaction key (RFC 3261 §17.1.3): branch and CSeq method.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ClientKey {
    branch: String,
    method: String,
}

/// How an ACK to a 2xx finds its accepted INVITE server transaction.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct AckKey {
    call_id: String,
    cseq: u32,
    from_tag: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum IndexKey {
    Server(ServerKey),
    Client(ClientKey),
}

/// Status, To tag and RSeq of a provisional response, to pass each distinct one up once.
type ProvisionalKey = (u16, Option<String>, Option<String>);

#[derive(Debug)]
struct Transaction {
    role: Role,
    state: State,
    /// Server: where the request came from (responses go there). Client: the destination.
    peer: Peer,
    request: rsip::Request,
    /// CSeq number of `request`.
    cseq: u32,
    /// Server: the last response sent.
    last_response: Option<rsip::Response>,
    /// Client INVITE: the ACK sent for a non-2xx final response.
    ack: Option<rsip::Request>,
    /// Current retransmission interval (Timers A, E, G).
    interval: Duration,
    timers: Vec<(Timer, TimerKey)>,
    index: IndexKey,
    ack_key: Option<AckKey>,
    /// Server INVITE in Accepted: the ACK arrived.
    acked: bool,
    last_provisional: Option<ProvisionalKey>,
    /// Bytes charged against [`TransactionLimits::max_stored_bytes`].
    charged: usize,
}

impl Transaction {
    /// A new transaction in its role's first state: Calling for a client INVITE, Proceeding
    /// for a server INVITE (it sends 100 at once), Trying for non-INVITE.
    fn new(
        role: Role,
        peer: Peer,
        request: &rsip::Request,
        cseq: u32,
        interval: Duration,
        index: IndexKey,
    ) -> Transaction {
        let state = match role {
            Role::InviteClient => State::Calling,
            Role::InviteServer => State::Proceeding,
            Role::NonInviteClient | Role::NonInviteServer => State::Trying,
        };
        Transaction {
            role,
            state,
            peer,
            request: request.clone(),
            cseq,
            last_response: None,
            ack: None,
            interval,
            timers: Vec::new(),
            index,
            ack_key: None,
            acked: false,
            last_provisional: None,
            charged: 0,
        }
    }

    fn reliable(&self) -> bool {
        self.peer.transport.is_reliable()
    }
}

/// Every client and server transaction of one endpoint, sans-IO.
#[derive(Debug)]
pub struct TransactionLayer {
    config: TimerConfig,
    max_transactions: usize,
    max_stored_bytes: usize,
    /// Sum of every live transaction's charge.
    stored_bytes: usize,
    transactions: HashMap<TransactionId, Transaction>,
    server_index: HashMap<ServerKey, TransactionId>,
    client_index: HashMap<ClientKey, TransactionId>,
    accepted_index: HashMap<AckKey, TransactionId>,
    timers: TimerTable,
    transmits: VecDeque<Transmit>,
    events: VecDeque<TransactionEvent>,
    next_id: u64,
    overload_rejections: u64,
}

impl TransactionLayer {
    pub fn new(timers: TimerConfig) -> Self {
        Self::with_max_transactions(timers, DEFAULT_MAX_TRANSACTIONS)
    }

    /// Past `max_transactions` live transactions, new requests get a stateless 503 and
    /// [`send_request`](Self::send_request) fails with [`TransactionError::Overloaded`].
    pub fn with_max_transactions(timers: TimerConfig, max_transactions: usize) -> Self {
        Self::with_limits(timers, TransactionLimits { max_transactions, ..Default::default() })
    }

    /// Past either bound of `limits` (see [`TransactionLimits`]), new requests get a
    /// stateless 503 and [`send_request`](Self::send_request) fails with
    /// [`TransactionError::Overloaded`].
    pub fn with_limits(timers: TimerConfig, limits: TransactionLimits) -> Self {
        TransactionLayer {
            config: timers,
            max_transactions: limits.max_transactions,
            max_stored_bytes: limits.max_stored_bytes,
            stored_bytes: 0,
            transactions: HashMap::new(),
            server_index: HashMap::new(),
            client_index: HashMap::new(),
            accepted_index: HashMap::new(),
            timers: TimerTable::default(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            next_id: 0,
            overload_rejections: 0,
        }
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some((key, id, timer)) = self.timers.pop_expired(now) {
            let Some(txn) = self.transactions.get_mut(&id) else {
                continue;
            };
            txn.timers.retain(|(_, armed)| *armed != key);
            match txn.role {
                Role::InviteServer | Role::NonInviteServer => self.on_server_timer(now, &id, timer),
                Role::InviteClient | Role::NonInviteClient => self.on_client_timer(now, &id, timer),
            }
        }
    }

    /// The next instant [`handle_timeout`](Self::handle_timeout) must be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next_deadline()
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<TransactionEvent> {
        self.events.pop_front()
    }

    /// Live transactions.
    pub fn len(&self) -> usize {
        self.transactions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.transactions.is_empty()
    }

    /// Requests answered with a stateless 503 because the transaction cap was reached.
    pub fn overload_rejections(&self) -> u64 {
        self.overload_rejections
    }

    fn next_id(&mut self, prefix: char) -> TransactionId {
        self.next_id += 1;
        TransactionId(format!("{prefix}{}", self.next_id))
    }

    /// Bytes the live transactions are charged for the messages they keep.
    pub fn stored_bytes(&self) -> usize {
        self.stored_bytes
    }

    /// The bound a new transaction keeping `request` would cross, if any.
    fn over_bound(&self, request: &rsip::Request) -> Option<Bound> {
        if self.transactions.len() >= self.max_transactions {
            return Some(Bound::Count);
        }
        let needed = self.stored_bytes.saturating_add(memory::charge(request, None, None));
        (needed > self.max_stored_bytes).then_some(Bound::Bytes)
    }

    /// Counts a refusal by the bound that caused it.
    fn count_rejection(&mut self, bound: Bound) {
        self.overload_rejections += 1;
        crate::metric_catalog::record_rejected(
            crate::metric_catalog::RejectReason::TransactionLimit,
        );
        metrics::counter!("sip_transactions_rejected_total", "reason" => bound.as_str())
            .increment(1);
    }

    /// Brings `id`'s charge up to date after its stored messages changed.
    fn recharge(&mut self, id: &TransactionId) {
        let Some(txn) = self.transactions.get_mut(id) else {
            return;
        };
        let charge = memory::charge(&txn.request, txn.last_response.as_ref(), txn.ack.as_ref());
        self.stored_bytes = self.stored_bytes - txn.charged + charge;
        txn.charged = charge;
        metrics::gauge!("sip_transaction_stored_bytes").set(self.stored_bytes as f64);
    }

    /// Arms (or re-arms) `timer` for `id` at `now + after`.
    fn arm(&mut self, id: &TransactionId, timer: Timer, now: Instant, after: Duration) {
        let Some(txn) = self.transactions.get_mut(id) else {
            return;
        };
        if let Some(pos) = txn.timers.iter().position(|(t, _)| *t == timer) {
            let (_, old) = txn.timers.swap_remove(pos);
            self.timers.remove(old);
        }
        // A deadline past what Instant can hold (absurd T1) is clamped instead of panicking.
        let at = now.checked_add(after).or_else(|| now.checked_add(FAR_FUTURE)).unwrap_or(now);
        let key = self.timers.insert(at, id.clone(), timer);
        txn.timers.push((timer, key));
    }

    fn disarm(&mut self, id: &TransactionId, timers: &[Timer]) {
        let Some(txn) = self.transactions.get_mut(id) else {
            return;
        };
        let table = &mut self.timers;
        txn.timers.retain(|(timer, key)| {
            let keep = !timers.contains(timer);
            if !keep {
                table.remove(*key);
            }
            keep
        });
    }

    fn is_armed(&self, id: &TransactionId, timer: Timer) -> bool {
        self.transactions.get(id).is_some_and(|txn| txn.timers.iter().any(|(t, _)| *t == timer))
    }

    /// Arms a wait timer, or ends the transaction at once when the wait is zero
    /// (Timers I, J, K and D on reliable transports).
    fn wait_or_terminate(
        &mut self,
        id: &TransactionId,
        timer: Timer,
        now: Instant,
        after: Duration,
    ) {
        if after.is_zero() {
            self.terminate(id);
        } else {
            self.arm(id, timer, now, after);
        }
    }

    fn terminate(&mut self, id: &TransactionId) {
        let Some(txn) = self.transactions.remove(id) else {
            return;
        };
        self.stored_bytes -= txn.charged;
        for (_, key) in txn.timers {
            self.timers.remove(key);
        }
        match txn.index {
            IndexKey::Server(key) => {
                if self.server_index.get(&key) == Some(id) {
                    self.server_index.remove(&key);
                }
            }
            IndexKey::Client(key) => {
                if self.client_index.get(&key) == Some(id) {
                    self.client_index.remove(&key);
                }
            }
        }
        if let Some(key) = txn.ack_key
            && self.accepted_index.get(&key) == Some(id)
        {
            self.accepted_index.remove(&key);
        }
        tracing::trace!(id = id.as_str(), "transaction terminated");
    }

    fn transmit(&mut self, peer: Peer, message: impl Into<rsip::SipMessage>) {
        self.transmits.push_back(Transmit { peer, message: message.into(), transaction: None });
    }

    /// Queues the first send of client transaction `id`'s request, whose delivery failure
    /// the runtime reports.
    fn transmit_request(&mut self, id: &TransactionId, peer: Peer, request: rsip::Request) {
        let transaction = Some(id.clone());
        self.transmits.push_back(Transmit { peer, message: request.into(), transaction });
    }

    /// Queues a retransmission (UDP only). Its failure is not reported: an earlier copy may
    /// have arrived and its answer be on the way, so Timer B or F decides.
    fn retransmit_request(&mut self, peer: Peer, request: rsip::Request) {
        self.transmit(peer, request);
    }

    fn sixty_four_t1(&self) -> Duration {
        self.config.t1.saturating_mul(64)
    }
}
