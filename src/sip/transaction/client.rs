//! Client transactions (RFC 3261 §17.1, RFC 6026 §7.2): requests out, responses in.

use std::time::Instant;

use rsip::{Header, Method};
use tracing::debug;

use super::build::{ack_for, response_to};
use super::fields::{self, Fields};
use super::memory::Bound;
use super::timers::Timer;
use super::{
    ClientKey, IndexKey, Peer, ProvisionalKey, Role, State, TIMER_D, Transaction, TransactionError,
    TransactionEvent, TransactionId, TransactionLayer,
};

impl TransactionLayer {
    /// Starts a client transaction (any method but ACK; the caller puts a fresh branch in
    /// the top Via, see [`new_branch`](super::new_branch)). Returns its id.
    ///
    /// A CANCEL also bounds the INVITE it cancels: if that INVITE gets no final response
    /// within 64·T1, it ends with a Timeout (RFC 3261 §9.1).
    pub fn send_request(
        &mut self,
        now: Instant,
        request: rsip::Request,
        dest: Peer,
    ) -> Result<TransactionId, TransactionError> {
        if request.method == Method::Ack {
            return Err(TransactionError::AckNotAllowed);
        }
        let fields = Fields::read(&request.headers)
            .map_err(|e| TransactionError::Malformed(e.to_string()))?;
        let branch = fields.via.branch.clone().ok_or(TransactionError::MissingBranch)?;
        let method = request.method.to_string();
        if fields.cseq_method != method {
            return Err(TransactionError::Malformed("CSeq method differs".into()));
        }
        let key = ClientKey { branch: branch.clone(), method };
        if self.client_index.contains_key(&key) {
            return Err(TransactionError::DuplicateBranch(branch));
        }
        if let Some(bound) = self.over_bound(&request) {
            self.count_rejection(bound);
            return Err(match bound {
                Bound::Count => TransactionError::Overloaded(self.max_transactions),
                Bound::Bytes => TransactionError::OverBudget(self.max_stored_bytes),
            });
        }
        let invite = request.method == Method::Invite;
        if request.method == Method::Cancel {
            self.bound_cancelled_invite(now, &branch);
        }
        // The id carries the method and branch, so that the transaction user can tie a
        // Timeout back to the request it sent.
        let id = TransactionId(format!("{}:{} {}", self.next_id('c').0, key.method, key.branch));
        self.client_index.insert(key.clone(), id.clone());
        let role = if invite { Role::InviteClient } else { Role::NonInviteClient };
        let index = IndexKey::Client(key);
        let txn = Transaction::new(role, dest, &request, fields.cseq, self.config.t1, index);
        self.transactions.insert(id.clone(), txn);
        self.recharge(&id);
        self.transmit_request(&id, dest, request);
        let (retransmit, timeout) =
            if invite { (Timer::A, Timer::B) } else { (Timer::E, Timer::F) };
        if !dest.transport.is_reliable() {
            self.arm(&id, retransmit, now, self.config.t1);
        }
        self.arm(&id, timeout, now, self.sixty_four_t1());
        Ok(id)
    }

    /// Timer B on the INVITE being cancelled, when it no longer runs (a provisional came).
    fn bound_cancelled_invite(&mut self, now: Instant, branch: &str) {
        let key = ClientKey { branch: branch.to_owned(), method: "INVITE".to_owned() };
        let Some(id) = self.client_index.get(&key).cloned() else {
            return;
        };
        let pending = self
            .transactions
            .get(&id)
            .is_some_and(|txn| matches!(txn.state, State::Calling | State::Proceeding));
        if pending && !self.is_armed(&id, Timer::B) {
            self.arm(&id, Timer::B, now, self.sixty_four_t1());
        }
    }

    /// A parsed response from the wire, matched to a client transaction (top Via branch +
    /// CSeq method). Unmatched responses are dropped (logged at debug).
    pub fn handle_response(&mut self, now: Instant, response: rsip::Response, source: Peer) {
        let fields = match Fields::read(&response.headers) {
            Ok(fields) => fields,
            Err(error) => {
                debug!(%error, "response dropped");
                return;
            }
        };
        let Some(branch) = fields.via.branch.clone() else {
            debug!("response dropped: no branch");
            return;
        };
        let key = ClientKey { branch, method: fields.cseq_method.clone() };
        let Some(id) = self.client_index.get(&key).cloned() else {
            debug!(branch = %key.branch, method = %key.method, %source.addr, "response matches no transaction");
            return;
        };
        let status = response.status_code.code();
        if !(100..=699).contains(&status) {
            debug!(status, "response dropped: status outside 100-699");
            return;
        }
        let Some(txn) = self.transactions.get(&id) else {
            return;
        };
        match txn.role {
            Role::InviteClient => self.on_invite_response(now, &id, response, status),
            _ => self.on_non_invite_response(now, &id, response, status),
        }
    }

    fn on_invite_response(
        &mut self,
        now: Instant,
        id: &TransactionId,
        response: rsip::Response,
        status: u16,
    ) {
        let Some(txn) = self.transactions.get_mut(id) else {
            return;
        };
        match (txn.state, status) {
            (State::Calling | State::Proceeding, 100..=199) => {
                txn.state = State::Proceeding;
                self.disarm(id, &[Timer::A, Timer::B]);
                self.pass_provisional(id, response);
            }
            (State::Calling | State::Proceeding, 200..=299) => {
                txn.state = State::Accepted;
                self.disarm(id, &[Timer::A, Timer::B]);
                self.arm(id, Timer::M, now, self.sixty_four_t1());
                self.pass_up(id, response);
            }
            (State::Calling | State::Proceeding, _) => {
                let ack = ack_for(&txn.request, &response, txn.cseq);
                let peer = txn.peer;
                let reliable = txn.reliable();
                txn.state = State::Completed;
                txn.ack = Some(ack.clone());
                self.recharge(id);
                self.transmit(peer, ack);
                self.disarm(id, &[Timer::A, Timer::B]);
                self.pass_up(id, response);
                let wait = if reliable { Default::default() } else { TIMER_D };
                self.wait_or_terminate(id, Timer::D, now, wait);
            }
            // 2xx retransmissions and 2xx from other forks: the dialog layer ACKs them.
            (State::Accepted, 200..=299) => self.pass_up(id, response),
            (State::Completed, 300..) => {
                if let Some(ack) = txn.ack.clone() {
                    let peer = txn.peer;
                    self.transmit(peer, ack);
                }
            }
            (state, status) => debug!(id = id.as_str(), ?state, status, "response absorbed"),
        }
    }

    fn on_non_invite_response(
        &mut self,
        now: Instant,
        id: &TransactionId,
        response: rsip::Response,
        status: u16,
    ) {
        let Some(txn) = self.transactions.get_mut(id) else {
            return;
        };
        match (txn.state, status) {
            (State::Trying | State::Proceeding, 100..=199) => {
                txn.state = State::Proceeding;
                self.pass_provisional(id, response);
            }
            (State::Trying | State::Proceeding, _) => {
                txn.state = State::Completed;
                let wait = if txn.reliable() { Default::default() } else { self.config.t4 };
                self.disarm(id, &[Timer::E, Timer::F]);
                self.pass_up(id, response);
                self.wait_or_terminate(id, Timer::K, now, wait);
            }
            (state, status) => debug!(id = id.as_str(), ?state, status, "response absorbed"),
        }
    }

    /// The transport could not deliver the request of client transaction `id`
    /// (connection refused or lost, TLS handshake or certificate failure). RFC 3261
    /// §17.1.1.2 and §17.1.2.2: the transaction tells its user at once and ends; §8.1.3.1:
    /// the user treats it as a 503, so the layer passes up a 503 made from the request
    /// (no To tag, no ACK sent), as if the far end had sent it. An INVITE fails this way
    /// only in Calling (RFC 3261 Figure 5): once a provisional came, the far end has the
    /// request, and ending the transaction would lose its 2xx (no ACK, no BYE). Ignored
    /// once the transaction has its final response, and for server transactions (a
    /// response that cannot be sent is lost; Timers H and J end those).
    pub fn handle_transport_error(&mut self, id: &TransactionId) {
        let Some(txn) = self.transactions.get(id) else {
            return;
        };
        let pending = matches!(
            (txn.role, txn.state),
            (Role::InviteClient, State::Calling)
                | (Role::NonInviteClient, State::Trying | State::Proceeding)
        );
        if !pending {
            debug!(id = id.as_str(), state = ?txn.state, "transport error ignored");
            return;
        }
        let response = response_to(&txn.request, 503, None);
        debug!(id = id.as_str(), "transport error: the request fails as 503");
        self.terminate(id);
        self.pass_up(id, response);
    }

    /// Passes a provisional response up unless it repeats the last one passed.
    fn pass_provisional(&mut self, id: &TransactionId, response: rsip::Response) {
        let rseq = response.headers.iter().find_map(|h| match h {
            Header::Other(name, value) if name.eq_ignore_ascii_case("RSeq") => {
                Some(value.trim().to_owned())
            }
            _ => None,
        });
        let key: ProvisionalKey =
            (response.status_code.code(), fields::to_tag(&response.headers), rseq);
        let Some(txn) = self.transactions.get_mut(id) else {
            return;
        };
        if txn.last_provisional.as_ref() == Some(&key) {
            return;
        }
        txn.last_provisional = Some(key);
        self.pass_up(id, response);
    }

    fn pass_up(&mut self, id: &TransactionId, response: rsip::Response) {
        self.events.push_back(TransactionEvent::Response { id: id.clone(), response });
    }

    pub(super) fn on_client_timer(&mut self, now: Instant, id: &TransactionId, timer: Timer) {
        let Some(txn) = self.transactions.get_mut(id) else {
            return;
        };
        match (timer, txn.state) {
            (Timer::A, State::Calling) => {
                txn.interval = txn.interval.saturating_mul(2);
                let interval = txn.interval;
                let (peer, request) = (txn.peer, txn.request.clone());
                self.retransmit_request(peer, request);
                self.arm(id, Timer::A, now, interval);
            }
            (Timer::E, State::Trying | State::Proceeding) => {
                txn.interval = if txn.state == State::Trying {
                    txn.interval.saturating_mul(2).min(self.config.t2)
                } else {
                    self.config.t2
                };
                let interval = txn.interval;
                let (peer, request) = (txn.peer, txn.request.clone());
                self.retransmit_request(peer, request);
                self.arm(id, Timer::E, now, interval);
            }
            (Timer::B, State::Calling | State::Proceeding)
            | (Timer::F, State::Trying | State::Proceeding) => {
                debug!(id = id.as_str(), ?timer, "no final response");
                self.events.push_back(TransactionEvent::Timeout { id: id.clone() });
                self.terminate(id);
            }
            (Timer::D | Timer::K | Timer::M, _) => self.terminate(id),
            _ => {}
        }
    }
}
