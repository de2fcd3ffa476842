//! Server transactions (RFC 3261 §17.2, RFC 6026 §7.1): requests in, responses out.

use std::time::Instant;

use rsip::Method;
use tracing::debug;

use super::build::{new_tag, response_to};
use super::fields::{self, Fields};
use super::memory::Bound;
use super::timers::Timer;
use super::{
    AckKey, IndexKey, Peer, Role, ServerKey, State, Transaction, TransactionError,
    TransactionEvent, TransactionId, TransactionLayer,
};

impl TransactionLayer {
    /// A parsed request from the wire. New INVITEs get "100 Trying" at once (queued as a
    /// Transmit) and a Request event; retransmissions are absorbed and re-answered with the
    /// last response; CANCEL is handled here (200 to the CANCEL + Cancelled event, or 481
    /// when no INVITE transaction matches; 200 and no event if the INVITE already has a
    /// final response); ACKs that match no transaction, or ACKs to a 2xx, become Ack events.
    /// Adds `received=` (and fills `rport` when present, RFC 3581) to the top Via
    /// (RFC 3261 §18.2.1) before storing/emitting.
    pub fn handle_request(&mut self, now: Instant, mut request: rsip::Request, source: Peer) {
        let fields = match Fields::read(&request.headers) {
            Ok(fields) => fields,
            Err(error) => {
                debug!(%error, method = %request.method, "request dropped");
                return;
            }
        };
        let method = request.method.to_string();
        if fields.cseq_method != method {
            debug!(%method, cseq_method = %fields.cseq_method, "request dropped: CSeq method differs");
            return;
        }
        if let Err(error) = fields::stamp_top_via(&mut request.headers, source.addr) {
            debug!(%error, "request dropped");
            return;
        }
        match request.method {
            Method::Ack => self.on_ack(now, request, &fields, source),
            Method::Cancel => self.on_cancel(now, request, &fields, source),
            _ => self.on_request(now, request, &fields, source),
        }
    }

    /// The transaction user answers a server transaction. Err if unknown/terminated/already final.
    pub fn respond(
        &mut self,
        now: Instant,
        id: &TransactionId,
        response: rsip::Response,
    ) -> Result<(), TransactionError> {
        let txn = self.transactions.get(id).ok_or_else(|| TransactionError::Unknown(id.clone()))?;
        let status = response.status_code.code();
        if !(100..=699).contains(&status) {
            return Err(TransactionError::InvalidStatus(status));
        }
        let provisional = status < 200;
        match (txn.role, txn.state) {
            (Role::InviteClient | Role::NonInviteClient, _) => {
                return Err(TransactionError::NotServer(id.clone()));
            }
            (Role::InviteServer, State::Proceeding)
            | (Role::NonInviteServer, State::Trying | State::Proceeding) => {}
            _ => return Err(TransactionError::AlreadyFinal(id.clone())),
        }
        let role = txn.role;
        let peer = txn.peer;
        let reliable = txn.reliable();
        let ack_key = (role == Role::InviteServer && (200..300).contains(&status))
            .then(|| Fields::read(&txn.request.headers).ok())
            .flatten()
            .map(|fields| AckKey {
                call_id: fields.call_id,
                cseq: fields.cseq,
                from_tag: fields.from_tag,
            });
        let t1 = self.config.t1;
        let sixty_four_t1 = self.sixty_four_t1();

        self.transmit(peer, response.clone());
        let Some(txn) = self.transactions.get_mut(id) else {
            return Err(TransactionError::Unknown(id.clone()));
        };
        txn.last_response = Some(response);
        txn.interval = t1;
        self.recharge(id);
        let Some(txn) = self.transactions.get_mut(id) else {
            return Err(TransactionError::Unknown(id.clone()));
        };
        match role {
            Role::InviteServer if provisional => {}
            Role::InviteServer if status < 300 => {
                txn.state = State::Accepted;
                if let Some(key) = ack_key {
                    txn.ack_key = Some(key.clone());
                    self.accepted_index.insert(key, id.clone());
                }
                if !reliable {
                    self.arm(id, Timer::G, now, t1);
                }
                self.arm(id, Timer::H, now, sixty_four_t1);
                self.arm(id, Timer::L, now, sixty_four_t1);
            }
            Role::InviteServer => {
                txn.state = State::Completed;
                if !reliable {
                    self.arm(id, Timer::G, now, t1);
                }
                self.arm(id, Timer::H, now, sixty_four_t1);
            }
            _ if provisional => txn.state = State::Proceeding,
            _ => {
                txn.state = State::Completed;
                let wait = if reliable { Default::default() } else { sixty_four_t1 };
                self.wait_or_terminate(id, Timer::J, now, wait);
            }
        }
        Ok(())
    }

    fn on_request(&mut self, now: Instant, request: rsip::Request, fields: &Fields, source: Peer) {
        let key = ServerKey::new(&request, fields, &fields.cseq_method);
        if let Some(id) = self.server_index.get(&key).cloned() {
            self.on_retransmission(&id);
            return;
        }
        if let Some(bound) = self.over_bound(&request) {
            self.reject_overload(&request, source, bound);
            return;
        }
        let invite = request.method == Method::Invite;
        let id = self.next_id('s');
        let trying = invite.then(|| response_to(&request, 100, None));
        self.insert_server(id.clone(), key, &request, fields, source, invite);
        if let Some(trying) = trying {
            // The 100 is the INVITE's last response until the user answers, so an INVITE
            // retransmission gets it again.
            let _ = self.respond(now, &id, trying);
        }
        self.events.push_back(TransactionEvent::Request { id, request, source });
    }

    fn insert_server(
        &mut self,
        id: TransactionId,
        key: ServerKey,
        request: &rsip::Request,
        fields: &Fields,
        source: Peer,
        invite: bool,
    ) {
        self.server_index.insert(key.clone(), id.clone());
        let role = if invite { Role::InviteServer } else { Role::NonInviteServer };
        let index = IndexKey::Server(key);
        let txn = Transaction::new(role, source, request, fields.cseq, self.config.t1, index);
        self.transactions.insert(id.clone(), txn);
        self.recharge(&id);
    }

    /// A request matched a live server transaction: answer with the last response, except
    /// where RFC 3261 absorbs silently (non-INVITE Trying, INVITE Confirmed).
    fn on_retransmission(&mut self, id: &TransactionId) {
        let Some(txn) = self.transactions.get(id) else {
            return;
        };
        debug!(id = id.as_str(), state = ?txn.state, "request retransmission");
        if txn.state == State::Confirmed {
            return;
        }
        if let Some(response) = txn.last_response.clone() {
            let peer = txn.peer;
            self.transmit(peer, response);
        }
    }

    fn on_ack(&mut self, now: Instant, request: rsip::Request, fields: &Fields, source: Peer) {
        let key = ServerKey::new(&request, fields, "INVITE");
        if let Some(id) = self.server_index.get(&key).cloned() {
            self.on_matched_ack(now, &id, request, fields, source);
            return;
        }
        let ack_key = AckKey {
            call_id: fields.call_id.clone(),
            cseq: fields.cseq,
            from_tag: fields.from_tag.clone(),
        };
        if let Some(id) = self.accepted_index.get(&ack_key).cloned() {
            self.on_ack_to_2xx(&id);
        }
        self.events.push_back(TransactionEvent::Ack { request, source });
    }

    /// An ACK matched an INVITE server transaction by branch (or the RFC 2543 rules).
    fn on_matched_ack(
        &mut self,
        now: Instant,
        id: &TransactionId,
        request: rsip::Request,
        fields: &Fields,
        source: Peer,
    ) {
        let Some(txn) = self.transactions.get(id) else {
            return;
        };
        match txn.state {
            State::Completed => {
                let legacy = matches!(txn.index, IndexKey::Server(ServerKey::Legacy { .. }));
                let sent_tag = txn.last_response.as_ref().and_then(|r| fields::to_tag(&r.headers));
                if legacy && sent_tag.is_some() && sent_tag != fields.to_tag {
                    debug!(id = id.as_str(), "ACK dropped: To tag differs from the response");
                    return;
                }
                let wait = if txn.reliable() { Default::default() } else { self.config.t4 };
                if let Some(txn) = self.transactions.get_mut(id) {
                    txn.state = State::Confirmed;
                }
                self.disarm(id, &[Timer::G, Timer::H]);
                self.wait_or_terminate(id, Timer::I, now, wait);
            }
            State::Confirmed => {}
            // A peer that reuses the INVITE branch for the ACK to a 2xx.
            State::Accepted => {
                self.on_ack_to_2xx(id);
                self.events.push_back(TransactionEvent::Ack { request, source });
            }
            _ => debug!(id = id.as_str(), state = ?txn.state, "ACK dropped: no final response yet"),
        }
    }

    /// The ACK to the 2xx arrived: stop Timer G and H; Timer L keeps absorbing INVITEs.
    fn on_ack_to_2xx(&mut self, id: &TransactionId) {
        if let Some(txn) = self.transactions.get_mut(id) {
            txn.acked = true;
        }
        self.disarm(id, &[Timer::G, Timer::H]);
    }

    fn on_cancel(&mut self, now: Instant, request: rsip::Request, fields: &Fields, source: Peer) {
        let key = ServerKey::new(&request, fields, "CANCEL");
        if let Some(id) = self.server_index.get(&key).cloned() {
            self.on_retransmission(&id);
            return;
        }
        let invite_key = ServerKey::new(&request, fields, "INVITE");
        let invite = self
            .server_index
            .get(&invite_key)
            .and_then(|id| self.transactions.get(id).map(|txn| (id.clone(), txn)))
            .filter(|(_, txn)| txn.role == Role::InviteServer);
        let (status, cancelled, tag) = match invite {
            Some((id, txn)) => {
                let tag = txn.last_response.as_ref().and_then(|r| fields::to_tag(&r.headers));
                let pending = txn.state == State::Proceeding;
                (200, pending.then_some(id), tag)
            }
            None => (481, None, None),
        };
        let tag = tag.unwrap_or_else(new_tag);
        let response = response_to(&request, status, Some(&tag));
        if self.over_bound(&request).is_some() {
            // Answer statelessly: a retransmitted CANCEL is answered again the same way.
            self.transmit(source, response);
        } else {
            let id = self.next_id('s');
            self.insert_server(id.clone(), key, &request, fields, source, false);
            let _ = self.respond(now, &id, response);
        }
        if let Some(invite) = cancelled {
            self.events.push_back(TransactionEvent::Cancelled { invite, request });
        }
    }

    fn reject_overload(&mut self, request: &rsip::Request, source: Peer, bound: Bound) {
        self.count_rejection(bound);
        debug!(method = %request.method, bound = bound.as_str(), "transaction limit reached: 503");
        let response = response_to(request, 503, Some(&new_tag()));
        self.transmit(source, response);
    }

    pub(super) fn on_server_timer(&mut self, now: Instant, id: &TransactionId, timer: Timer) {
        let Some(txn) = self.transactions.get_mut(id) else {
            return;
        };
        match (timer, txn.state) {
            (Timer::G, State::Completed | State::Accepted) if !txn.acked => {
                let peer = txn.peer;
                let interval = txn.interval.saturating_mul(2).min(self.config.t2);
                txn.interval = interval;
                if let Some(response) = txn.last_response.clone() {
                    self.transmit(peer, response);
                }
                self.arm(id, Timer::G, now, interval);
            }
            (Timer::H, State::Completed | State::Accepted) => {
                debug!(id = id.as_str(), "no ACK for the final response (Timer H)");
                self.events.push_back(TransactionEvent::Timeout { id: id.clone() });
                self.terminate(id);
            }
            (Timer::I | Timer::J | Timer::L, _) => self.terminate(id),
            _ => {}
        }
    }
}
