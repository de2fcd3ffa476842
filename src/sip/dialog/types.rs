//! The UA core's public types: its settings, call handles, actions, events and errors.

use crate::config::{CodecName, SrtpPolicy};
use crate::sdp::{Negotiated, SdpError};
use crate::sip::message::Transport;
use crate::sip::refer::TargetError;
use crate::sip::transaction::{Peer, TimerConfig, TransactionId};

/// Settings of the user agent.
#[derive(Debug, Clone)]
pub struct UaConfig {
    /// User part of our Contact.
    pub contact_user: String,
    /// Host (IP or name) written in Contact and Via.
    pub local_host: String,
    pub local_port: u16,
    /// Port written in Via and Contact on TLS (`sip.tls_listen`); `local_port` when none.
    pub tls_port: Option<u16>,
    /// User-Agent header value of our requests (empty: none).
    pub user_agent: String,
    /// Server header value of our responses (empty: none).
    pub server: String,
    /// Codecs in preference order.
    pub codecs: Vec<CodecName>,
    /// Offer RFC 4733 telephone-event in our SDP offers (off only for a test caller that
    /// sends its keys as tones, like a phone without RFC 4733).
    pub offer_telephone_event: bool,
    /// SRTP (SDES) for the calls we answer (`media.srtp`); only over TLS.
    pub srtp: SrtpPolicy,
    /// RFC 4028 interval we offer, and the least we accept (seconds).
    pub session_expires: u32,
    pub min_se: u32,
    /// Send 180 Ringing before `Incoming`.
    pub send_ringing: bool,
    /// Concurrent calls; past it, 503 with Retry-After.
    pub max_calls: usize,
    pub timers: TimerConfig,
}

impl UaConfig {
    /// From the typed config; `local` is the address written in Contact and Via.
    pub fn from_config(
        config: &crate::config::Config,
        local_host: String,
        local_port: u16,
    ) -> Self {
        UaConfig {
            contact_user: "ivr".into(),
            local_host,
            local_port,
            tls_port: config.sip.tls_listen.map(|addr| addr.port()),
            user_agent: config.sip.user_agent().to_string(),
            server: config.sip.server().to_string(),
            codecs: config.media.codecs.clone(),
            offer_telephone_event: true,
            srtp: config.media.srtp,
            session_expires: config.sip.session_expires_s,
            min_se: config.sip.min_se_s,
            send_ringing: config.sip.rings_before_answer(),
            max_calls: config.sip.max_calls,
            timers: TimerConfig { t1: config.sip.t1(), t2: config.sip.t2(), t4: config.sip.t4() },
        }
    }

    /// The port we are reached on over `transport`.
    pub fn port_for(&self, transport: Transport) -> u16 {
        match transport {
            Transport::Tls => self.tls_port.unwrap_or(self.local_port),
            Transport::Udp | Transport::Tcp => self.local_port,
        }
    }
}

/// Identifies one call for the life of the UA.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct CallHandle(pub u64);

/// Something for the runtime to do.
#[derive(Debug, Clone)]
pub enum UaAction {
    /// Send this response on the server transaction `id`.
    Respond {
        id: TransactionId,
        response: rsip::Response,
    },
    /// New request to send: the runtime opens a client transaction for it, except for
    /// ACK, which it sends as is.
    Send {
        request: rsip::Request,
        dest: Peer,
    },
    Event(CallEvent),
    /// An OPTIONS probe ended: its final status, or 408 when it timed out.
    Probed {
        id: super::probe::ProbeId,
        status: u16,
    },
}

/// Why a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    RemoteBye,
    LocalBye,
    /// The caller cancelled an incoming call, or we hung up an outgoing call before
    /// its final response (CANCEL).
    Cancelled,
    AckTimeout,
    SessionExpired,
    /// We refused an incoming call (`reject`).
    Rejected,
    Error,
    /// The far end refused our outgoing call with this final status (300-699).
    Failed(u16),
    /// Our outgoing call got no final response in time (Timer B, or ringing past
    /// the ringing limit, after which it is cancelled).
    Timeout,
}

/// What happened to a call.
// `Incoming` carries the whole INVITE; it comes once per call, so boxing buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum CallEvent {
    /// A new call passed every check (codecs, Require, size); the runtime allocates
    /// RTP and calls `accept` (or `reject`). `invite` is for caller-ID extraction.
    Incoming {
        call: CallHandle,
        call_id: String,
        invite: rsip::Request,
        source: Peer,
    },
    /// A provisional response (101-199, e.g. 180 Ringing, 183 Session Progress) to our
    /// outgoing call. Early media in a 183 is not used.
    Progress {
        call: CallHandle,
        status: u16,
    },
    /// After the ACK (the answer came in the ACK for an INVITE without SDP); for an
    /// outgoing call, once the 2xx came and we sent the ACK.
    Established {
        call: CallHandle,
        media: Negotiated,
    },
    /// A re-INVITE or UPDATE changed the media: hold, unhold, new address.
    MediaChanged {
        call: CallHandle,
        media: Negotiated,
    },
    /// DTMF by SIP INFO (already answered 200).
    Info {
        call: CallHandle,
        content_type: String,
        body: Vec<u8>,
    },
    /// Transfer progress from a NOTIFY sipfrag, or the REFER's own failure status.
    ReferProgress {
        call: CallHandle,
        status: u16,
    },
    /// The far end asked us to call `target` (a REFER, answered 202), in a call that
    /// accepts REFER ([`super::Ua::allow_refer`]). Report how it goes with
    /// [`super::Ua::notify_refer`].
    Referred {
        call: CallHandle,
        target: String,
    },
    /// A REFER we were asked to send was not sent (another transfer's subscription is
    /// still open, or the target was refused): the transfer failed at once.
    ReferNotSent {
        call: CallHandle,
        reason: String,
    },
    Terminated {
        call: CallHandle,
        reason: EndReason,
    },
}

/// Why a local command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UaError {
    #[error("no such call")]
    UnknownCall,
    #[error("the call cannot do this now: {0}")]
    InvalidState(&'static str),
    #[error("status {0} is not a final failure status (300-699)")]
    InvalidStatus(u16),
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error(transparent)]
    Sdp(#[from] SdpError),
    #[error("cannot build the request: {0}")]
    Build(String),
    #[error("cannot dial: {0}")]
    Dial(&'static str),
}

impl CallEvent {
    /// The call the event is about.
    pub fn call(&self) -> CallHandle {
        match self {
            CallEvent::Incoming { call, .. }
            | CallEvent::Progress { call, .. }
            | CallEvent::Established { call, .. }
            | CallEvent::MediaChanged { call, .. }
            | CallEvent::Info { call, .. }
            | CallEvent::ReferProgress { call, .. }
            | CallEvent::Referred { call, .. }
            | CallEvent::ReferNotSent { call, .. }
            | CallEvent::Terminated { call, .. } => *call,
        }
    }
}
