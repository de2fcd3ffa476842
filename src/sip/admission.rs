//! Admission (sans-IO): the first look at every message, before the transaction layer.
//!
//! It judges requests (a response can only complete a transaction of ours). In order: the
//! source must be in `sip.allow` (when set); a request whose User-Agent names a known
//! scanner is dropped; each source has a limit on requests per second and one on new
//! INVITEs per second; new calls overall are held to `sip.max_cps`. What is
//! refused is dropped silently, except where an answer helps a peer we know: 403 for a
//! source outside `sip.allow` when `sip.deny_response = "403"`, 503 with Retry-After for a
//! trusted source over its limit, and for any INVITE over `sip.max_cps`.
//!
//! Each refusal of a source is reported once per interval as a [`Notice`] for the
//! security log (fail2ban), so a flood cannot flood the log too. Time comes in as `now`.

mod peers;
mod rate;
mod source_net;

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::security_event::SecurityEvent;
use crate::sip::header_text as ht;
use crate::sip::rate_budget::retry_after_seconds;
pub use peers::{MAX_ADDRESSES_PER_NAME, PeerAddresses};
use rate::{GlobalRate, PerSourceRate, SourceClass, SteppedClock};
pub use source_net::{SourceNet, SourceNetError, any_contains, canonical};

/// What a source outside `sip.allow` gets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum DenyResponse {
    /// Nothing: the packet is dropped, so a scan learns nothing.
    #[default]
    #[serde(rename = "drop")]
    Drop,
    /// 403 Forbidden.
    #[serde(rename = "403")]
    Forbidden,
}

/// User-Agents of well-known SIP scanners (matched as case-insensitive substrings).
pub const KNOWN_SCANNERS: &[&str] = &[
    "friendly-scanner",
    "sipvicious",
    "sipcli",
    "vaxsipuseragent",
    "sip-scan",
    "sipscan",
    "iwar",
    "sivus",
    "smap",
];

/// How long after a source's refusal is logged the next one is.
pub const NOTICE_INTERVAL: Duration = Duration::from_secs(60);

/// Admission settings (from `[sip]`, see [`AdmissionSettings::from_config`]).
#[derive(Debug, Clone, PartialEq)]
pub struct AdmissionSettings {
    /// Empty: every source may send.
    pub allow: Vec<SourceNet>,
    pub deny_response: DenyResponse,
    /// Sources told 503 instead of silence when over their limit.
    pub trusted: Vec<SourceNet>,
    /// Peers the endpoint itself talks to, by address (queue targets and registrars
    /// written as IP literals; those named by host name are added as they resolve, see
    /// [`Admission::set_resolved_peers`]): admitted when `allow` is set, and given
    /// rate buckets of their own.
    pub peers: Vec<IpAddr>,
    /// Per source; `None`: no limit.
    pub requests_per_s: Option<NonZeroU32>,
    pub invites_per_s: Option<NonZeroU32>,
    /// New calls per second overall.
    pub max_cps: Option<NonZeroU32>,
    /// Most sources the per-source limits remember at once.
    pub max_sources: usize,
    /// Lower-case User-Agent substrings whose requests are dropped.
    pub scanner_user_agents: Vec<String>,
    pub notice_interval: Duration,
}

impl AdmissionSettings {
    /// From `[sip]` and `[routing]`. The queue targets and registrars written with an IP
    /// address are [`AdmissionSettings::peers`] (an agent's phone sends BYE and re-INVITEs
    /// of a bridged call; a registrar sends the calls for its registration).
    pub fn from_config(config: &crate::config::Config) -> Self {
        let sip = &config.sip;
        let mut peers: Vec<IpAddr> = Vec::new();
        for uri in peer_uris(config) {
            if let Some(addr) = ht::ip_host(uri) {
                let ip = canonical(addr.ip());
                if !peers.contains(&ip) {
                    peers.push(ip);
                }
            }
        }
        AdmissionSettings {
            allow: sip.allow.clone(),
            deny_response: sip.deny_response,
            trusted: sip.trusted_sources.clone(),
            peers,
            requests_per_s: NonZeroU32::new(sip.rate_limit_requests_per_s),
            invites_per_s: NonZeroU32::new(sip.rate_limit_invites_per_s),
            max_cps: NonZeroU32::new(sip.max_cps),
            max_sources: sip.rate_limit_sources,
            scanner_user_agents: sip
                .scanner_user_agents
                .iter()
                .map(|s| s.trim().to_ascii_lowercase())
                .filter(|s| !s.is_empty())
                .collect(),
            notice_interval: NOTICE_INTERVAL,
        }
    }

    /// Everything admitted: no list, no limit.
    pub fn open() -> Self {
        AdmissionSettings {
            allow: Vec::new(),
            deny_response: DenyResponse::Drop,
            trusted: Vec::new(),
            peers: Vec::new(),
            requests_per_s: None,
            invites_per_s: None,
            max_cps: None,
            max_sources: 1,
            scanner_user_agents: Vec::new(),
            notice_interval: NOTICE_INTERVAL,
        }
    }
}

/// The URIs of the peers the endpoint itself talks to: every queue target and every
/// `[[sip.register]]` registrar.
pub fn peer_uris(config: &crate::config::Config) -> impl Iterator<Item = &str> {
    let routing = &config.routing;
    [&routing.default_queue, &routing.priority_queue]
        .into_iter()
        .chain(routing.queues.values().flat_map(|q| q.targets.iter()))
        .chain(config.sip.register.iter().map(|r| &r.registrar))
        .map(String::as_str)
        .filter(|uri| !uri.is_empty())
}

/// Why a message was refused; the words are the `reason` label of
/// `sip_requests_rejected_total` (a fixed, small set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    NotAllowed,
    Scanner,
    SourceRate,
    SourceInviteRate,
    MaxCps,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::NotAllowed => "not_allowed",
            Reason::Scanner => "scanner",
            Reason::SourceRate => "source_rate",
            Reason::SourceInviteRate => "source_invite_rate",
            Reason::MaxCps => "max_cps",
        }
    }

    fn event(self) -> Option<SecurityEvent> {
        match self {
            Reason::NotAllowed => Some(SecurityEvent::NotAllowed),
            Reason::Scanner => Some(SecurityEvent::Scanner),
            Reason::SourceRate | Reason::SourceInviteRate => Some(SecurityEvent::RateLimited),
            // Many callers at once is load, not an attack by one source.
            Reason::MaxCps => None,
        }
    }
}

/// What to do with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Admit,
    /// Dropped without a word.
    Drop(Reason),
    /// Answered statelessly with `status` (and `Retry-After: retry_after` seconds when
    /// set), and not passed on.
    Reject {
        reason: Reason,
        status: u16,
        retry_after: Option<u32>,
    },
}

impl Verdict {
    pub fn reason(&self) -> Option<Reason> {
        match self {
            Verdict::Admit => None,
            Verdict::Drop(reason) | Verdict::Reject { reason, .. } => Some(*reason),
        }
    }
}

/// A security event to log: a source refused (at most once per source, kind and interval).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub event: SecurityEvent,
    pub source: IpAddr,
    pub detail: String,
}

/// How long an admitted INVITE's branch is remembered, so that its retransmissions are
/// not counted again nor refused while its transaction runs (64*T1, Timer B).
const BRANCH_MEMORY: Duration = Duration::from_secs(32);
/// Most admitted INVITE branches remembered.
const BRANCH_CAPACITY: usize = 8192;
/// Longest branch remembered (longer ones are not, and count as new each time).
const BRANCH_MAX_LEN: usize = 128;

/// The admission core. See the module documentation.
pub struct Admission {
    settings: AdmissionSettings,
    clock: SteppedClock,
    requests: Option<PerSourceRate>,
    invites: Option<PerSourceRate>,
    calls: Option<GlobalRate>,
    /// [`AdmissionSettings::peers`] and the addresses of the peers named by host name.
    peers: HashSet<IpAddr>,
    logged: HashMap<(IpAddr, SecurityEvent), Instant>,
    notices: VecDeque<Notice>,
    branches: HashMap<String, Instant>,
    branch_order: VecDeque<(String, Instant)>,
}

impl Admission {
    pub fn new(now: Instant, settings: AdmissionSettings) -> Self {
        let clock = SteppedClock::new(now);
        let max = settings.max_sources;
        let per_source =
            |rate: Option<NonZeroU32>| rate.map(|rate| PerSourceRate::new(rate, max, now));
        Admission {
            requests: per_source(settings.requests_per_s),
            invites: per_source(settings.invites_per_s),
            calls: settings.max_cps.map(|rate| GlobalRate::new(rate, &clock)),
            peers: settings.peers.iter().copied().collect(),
            clock,
            settings,
            logged: HashMap::new(),
            notices: VecDeque::new(),
            branches: HashMap::new(),
            branch_order: VecDeque::new(),
        }
    }

    /// Admits everything.
    pub fn open(now: Instant) -> Self {
        Admission::new(now, AdmissionSettings::open())
    }

    /// Sets the addresses the peers named by host name resolve to now (all of them, in
    /// place of the last set). With the configured [`AdmissionSettings::peers`] they are
    /// admitted when `sip.allow` is set and have rate buckets of their own.
    pub fn set_resolved_peers(&mut self, resolved: impl IntoIterator<Item = IpAddr>) {
        self.peers = self.settings.peers.iter().copied().collect();
        self.peers.extend(resolved.into_iter().map(canonical));
    }

    /// Whether `source` is one of the peers the endpoint talks to.
    pub fn is_peer(&self, source: IpAddr) -> bool {
        self.peers.contains(&canonical(source))
    }

    /// A message from `source`.
    pub fn check(&mut self, now: Instant, source: IpAddr, message: &rsip::SipMessage) -> Verdict {
        match message {
            rsip::SipMessage::Request(request) => self.check_request(now, source, request),
            rsip::SipMessage::Response(_) => self.check_response(now, source),
        }
    }

    /// A response: always let through. It can only complete a transaction this endpoint
    /// started (the transaction layer drops any other), and the agents and targets it
    /// calls need not be in `sip.allow`.
    pub fn check_response(&mut self, _now: Instant, _source: IpAddr) -> Verdict {
        Verdict::Admit
    }

    pub fn check_request(
        &mut self,
        now: Instant,
        source: IpAddr,
        request: &rsip::Request,
    ) -> Verdict {
        self.clock.set(now);
        let verdict = self.judge(now, canonical(source), request);
        if request.method == rsip::Method::Ack {
            // An ACK is never answered.
            if let Verdict::Reject { reason, .. } = verdict {
                return Verdict::Drop(reason);
            }
        }
        verdict
    }

    fn judge(&mut self, now: Instant, source: IpAddr, request: &rsip::Request) -> Verdict {
        let method = request.method.to_string();
        if !self.allowed(source) {
            self.notice(now, Reason::NotAllowed, source, &method);
            return match self.settings.deny_response {
                DenyResponse::Drop => Verdict::Drop(Reason::NotAllowed),
                DenyResponse::Forbidden => {
                    Verdict::Reject { reason: Reason::NotAllowed, status: 403, retry_after: None }
                }
            };
        }
        if let Some(agent) = self.scanner(request) {
            self.notice(now, Reason::Scanner, source, &format!("User-Agent {agent}"));
            return Verdict::Drop(Reason::Scanner);
        }
        let new_invite = request.method == rsip::Method::Invite
            && ht::first(&request.headers, "To", Some("t"))
                .is_some_and(|to| ht::tag(&to).is_none());
        let branch = new_invite.then(|| top_branch(request)).flatten();
        self.forget_branches(now);
        // A retransmission of an INVITE already let in: not a new call, and never refused
        // with an answer while its transaction runs.
        let known = branch.as_ref().is_some_and(|b| self.branches.contains_key(b));
        let trusted_source = any_contains(&self.settings.trusted, source);
        let trusted = trusted_source && !known;
        let class = if trusted_source || self.peers.contains(&source) {
            SourceClass::Privileged
        } else {
            SourceClass::Other
        };
        if let Some(limit) = self.requests.as_mut()
            && let Err(limited) = limit.check(now, source, class)
        {
            return self.over_source_limit(
                now,
                Reason::SourceRate,
                source,
                trusted,
                limited.wait,
                &method,
            );
        }
        if new_invite && !known {
            if let Some(limit) = self.invites.as_mut()
                && let Err(limited) = limit.check(now, source, class)
            {
                return self.over_source_limit(
                    now,
                    Reason::SourceInviteRate,
                    source,
                    trusted,
                    limited.wait,
                    "INVITE",
                );
            }
            if let Some(calls) = &self.calls
                && let Err(limited) = calls.check()
            {
                return Verdict::Reject {
                    reason: Reason::MaxCps,
                    status: 503,
                    retry_after: Some(retry_after_seconds(limited.wait)),
                };
            }
            if let Some(branch) = branch {
                self.remember_branch(now, branch);
            }
        }
        Verdict::Admit
    }

    fn over_source_limit(
        &mut self,
        now: Instant,
        reason: Reason,
        source: IpAddr,
        trusted: bool,
        wait: Duration,
        what: &str,
    ) -> Verdict {
        let limit = match reason {
            Reason::SourceInviteRate => self.settings.invites_per_s,
            _ => self.settings.requests_per_s,
        };
        let rate = limit.map_or(0, NonZeroU32::get);
        let kind = if reason == Reason::SourceInviteRate { "new INVITEs" } else { "requests" };
        self.notice(now, reason, source, &format!("{what}: over {rate} {kind}/s"));
        if trusted {
            Verdict::Reject { reason, status: 503, retry_after: Some(retry_after_seconds(wait)) }
        } else {
            Verdict::Drop(reason)
        }
    }

    fn allowed(&self, source: IpAddr) -> bool {
        self.settings.allow.is_empty()
            || any_contains(&self.settings.allow, source)
            || self.peers.contains(&source)
    }

    /// The request's User-Agent, when it names a known scanner.
    fn scanner(&self, request: &rsip::Request) -> Option<String> {
        if self.settings.scanner_user_agents.is_empty() {
            return None;
        }
        let agent = ht::first(&request.headers, "User-Agent", None)?;
        let lower = agent.to_ascii_lowercase();
        self.settings
            .scanner_user_agents
            .iter()
            .any(|s| lower.contains(s.as_str()))
            .then_some(agent)
    }

    /// Queues a notice unless this source had one of this kind within the interval.
    fn notice(&mut self, now: Instant, reason: Reason, source: IpAddr, detail: &str) {
        let Some(event) = reason.event() else { return };
        let interval = self.settings.notice_interval;
        if let Some(at) = self.logged.get(&(source, event))
            && now.saturating_duration_since(*at) < interval
        {
            return;
        }
        if self.logged.len() >= self.settings.max_sources.max(1) {
            self.logged.retain(|_, at| now.saturating_duration_since(*at) < interval);
            if self.logged.len() >= self.settings.max_sources.max(1) {
                // Full of sources logged within the interval: the metrics still count them.
                return;
            }
        }
        self.logged.insert((source, event), now);
        self.notices.push_back(Notice { event, source, detail: detail.to_string() });
    }

    /// The next security event to log.
    pub fn poll_notice(&mut self) -> Option<Notice> {
        self.notices.pop_front()
    }

    fn forget_branches(&mut self, now: Instant) {
        while let Some((_, expiry)) = self.branch_order.front() {
            if *expiry > now {
                break;
            }
            if let Some((branch, expiry)) = self.branch_order.pop_front()
                && self.branches.get(&branch) == Some(&expiry)
            {
                self.branches.remove(&branch);
            }
        }
    }

    fn remember_branch(&mut self, now: Instant, branch: String) {
        if self.branches.len() >= BRANCH_CAPACITY
            && let Some((oldest, expiry)) = self.branch_order.pop_front()
            && self.branches.get(&oldest) == Some(&expiry)
        {
            self.branches.remove(&oldest);
        }
        if self.branches.len() < BRANCH_CAPACITY {
            let expiry = now + BRANCH_MEMORY;
            self.branches.insert(branch.clone(), expiry);
            self.branch_order.push_back((branch, expiry));
        }
    }

    /// Buckets the per-source request limit holds (for tests and metrics).
    pub fn tracked_sources(&self) -> usize {
        self.requests.as_ref().map_or(0, |r| r.len())
    }
}

/// The top Via's branch with the Call-ID (a retransmission repeats both).
fn top_branch(request: &rsip::Request) -> Option<String> {
    let via = ht::first(&request.headers, "Via", Some("v"))?;
    let branch = ht::header_param(&via, "branch")?;
    let call_id = ht::first(&request.headers, "Call-ID", Some("i"))?;
    let key = format!("{branch} {call_id}");
    (key.len() <= BRANCH_MAX_LEN).then_some(key)
}

/// The stateless answer for a [`Verdict::Reject`]: `status`, a fresh To tag, Retry-After
/// when set, and the configured Server header (none when empty).
pub fn rejection(
    request: &rsip::Request,
    status: u16,
    retry_after: Option<u32>,
    to_tag: &str,
    server: &str,
) -> rsip::Response {
    let extra = retry_after.map(crate::sip::response::retry_after).into_iter().collect();
    crate::sip::response::build(request, status, Some(to_tag), extra, Vec::new(), server)
}

#[cfg(test)]
mod tests;
