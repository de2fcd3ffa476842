//! Bounds on inbound TCP connections (sans-IO): caps per source address and in total,
//! the idle and slow-sender (slowloris) deadlines of one connection, and a throttle so a
//! source refused again and again is logged once per interval.
//!
//! The transport asks [`ConnectionCaps::admit`] for each accepted connection (closing it
//! at once when refused) and drives a [`StreamDeadlines`] from its reads.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The bounds, from `sip.tcp_*` config keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpLimits {
    /// Inbound connections held at once, from all sources.
    pub max_connections: usize,
    /// Inbound connections held at once from one IP address.
    pub max_per_ip: usize,
    /// A connection with no bytes received for this long is closed.
    pub idle_timeout: Duration,
    /// A message must be complete (headers and Content-Length body) this long after its
    /// first byte, or the sender is cut off.
    pub message_timeout: Duration,
    /// A source refused or cut off is logged as a security event at most once this often.
    pub report_interval: Duration,
    /// A write to a peer that does not finish in this long (the peer stopped reading)
    /// closes the connection.
    pub write_timeout: Duration,
}

impl Default for TcpLimits {
    fn default() -> Self {
        TcpLimits {
            max_connections: 1024,
            max_per_ip: 32,
            idle_timeout: Duration::from_secs(300),
            message_timeout: Duration::from_secs(10),
            report_interval: Duration::from_secs(60),
            write_timeout: Duration::from_secs(10),
        }
    }
}

impl From<&crate::config::SipConfig> for TcpLimits {
    /// Config keys `sip.tcp_max_connections`, `sip.tcp_max_connections_per_ip`,
    /// `sip.tcp_idle_timeout_s`, `sip.tcp_message_timeout_ms`.
    fn from(sip: &crate::config::SipConfig) -> Self {
        TcpLimits {
            max_connections: sip.tcp_max_connections,
            max_per_ip: sip.tcp_max_connections_per_ip,
            idle_timeout: Duration::from_secs(sip.tcp_idle_timeout_s),
            message_timeout: Duration::from_millis(sip.tcp_message_timeout_ms),
            ..TcpLimits::default()
        }
    }
}

/// Which cap refused a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CapReached {
    #[error("{0} connections from this source")]
    PerSource(usize),
    #[error("{0} connections in total")]
    Total(usize),
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// Live inbound connections, counted per source and in total. Cloned handles share
/// the counts.
#[derive(Debug, Clone)]
pub struct ConnectionCaps {
    max_total: usize,
    max_per_ip: usize,
    counts: Arc<Mutex<Counts>>,
}

impl ConnectionCaps {
    pub fn new(limits: &TcpLimits) -> Self {
        ConnectionCaps {
            max_total: limits.max_connections,
            max_per_ip: limits.max_per_ip,
            counts: Arc::default(),
        }
    }

    /// Counts one more connection from `ip`, or says which cap it would cross. The
    /// connection is counted until the permit is dropped.
    pub fn admit(&self, ip: IpAddr) -> Result<ConnectionPermit, CapReached> {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let from_ip = counts.per_ip.get(&ip).copied().unwrap_or(0);
        if from_ip >= self.max_per_ip {
            return Err(CapReached::PerSource(self.max_per_ip));
        }
        if counts.total >= self.max_total {
            return Err(CapReached::Total(self.max_total));
        }
        counts.total += 1;
        counts.per_ip.insert(ip, from_ip + 1);
        Ok(ConnectionPermit { counts: self.counts.clone(), ip })
    }

    /// Connections held now: in total, and from `ip`.
    pub fn held(&self, ip: IpAddr) -> (usize, usize) {
        let counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        (counts.total, counts.per_ip.get(&ip).copied().unwrap_or(0))
    }
}

/// One admitted connection; dropping it frees its place.
#[derive(Debug)]
pub struct ConnectionPermit {
    counts: Arc<Mutex<Counts>>,
    ip: IpAddr,
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        counts.total = counts.total.saturating_sub(1);
        if let Some(n) = counts.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.per_ip.remove(&self.ip);
            }
        }
    }
}

/// Most sources remembered by a [`ReportThrottle`]; past it, older entries are pruned and,
/// if all are recent, further sources go unreported until some age out.
const THROTTLE_SOURCES: usize = 4096;

/// Says whether an event should be logged: once per interval per key (a source, or a
/// source and a kind of event).
#[derive(Debug)]
pub struct ReportThrottle<K = IpAddr> {
    interval: Duration,
    last: HashMap<K, Instant>,
}

impl<K: Hash + Eq> ReportThrottle<K> {
    pub fn new(interval: Duration) -> Self {
        ReportThrottle { interval, last: HashMap::new() }
    }

    /// True if `key` was not reported within the interval before `now` (and records it).
    pub fn should_report(&mut self, now: Instant, key: K) -> bool {
        let interval = self.interval;
        let recent = |at: &Instant| now.saturating_duration_since(*at) < interval;
        if self.last.get(&key).is_some_and(recent) {
            return false;
        }
        if self.last.len() >= THROTTLE_SOURCES && !self.last.contains_key(&key) {
            self.last.retain(|_, at| recent(at));
            if self.last.len() >= THROTTLE_SOURCES {
                return false;
            }
        }
        self.last.insert(key, now);
        true
    }
}

/// Why a connection's deadline ended it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// Nothing received for the idle timeout.
    Idle,
    /// A message begun and not finished within the message timeout.
    SlowSender,
}

/// The deadlines of one connection, driven by its reads.
#[derive(Debug, Clone)]
pub struct StreamDeadlines {
    idle_timeout: Duration,
    message_timeout: Duration,
    last_read: Instant,
    message_started: Option<Instant>,
}

impl StreamDeadlines {
    pub fn new(now: Instant, limits: &TcpLimits) -> Self {
        StreamDeadlines {
            idle_timeout: limits.idle_timeout,
            message_timeout: limits.message_timeout,
            last_read: now,
            message_started: None,
        }
    }

    /// Bytes arrived at `now`. `completed` says whether they finished at least one message,
    /// `in_message` whether a message is left unfinished (see `StreamFramer::in_message`).
    pub fn on_read(&mut self, now: Instant, completed: bool, in_message: bool) {
        self.last_read = now;
        self.message_started = match (in_message, completed) {
            (false, _) => None,
            (true, true) => Some(now),
            (true, false) => Some(self.message_started.unwrap_or(now)),
        };
    }

    /// When the connection must be looked at again if nothing arrives.
    pub fn poll_timeout(&self) -> Instant {
        let idle = self.last_read + self.idle_timeout;
        match self.message_started {
            Some(started) => idle.min(started + self.message_timeout),
            None => idle,
        }
    }

    /// What ended the connection, if its deadline has passed at `now`.
    pub fn expired(&self, now: Instant) -> Option<Expiry> {
        if self.message_started.is_some_and(|s| now >= s + self.message_timeout) {
            Some(Expiry::SlowSender)
        } else if now >= self.last_read + self.idle_timeout {
            Some(Expiry::Idle)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("address")
    }

    fn limits(total: usize, per_ip: usize) -> TcpLimits {
        TcpLimits { max_connections: total, max_per_ip: per_ip, ..TcpLimits::default() }
    }

    #[test]
    fn caps_hold_per_source_and_in_total_and_free_on_drop() {
        let caps = ConnectionCaps::new(&limits(5, 3));
        let a: Vec<_> = (0..3).map(|_| caps.admit(ip("192.0.2.1")).expect("under cap")).collect();
        assert_eq!(caps.admit(ip("192.0.2.1")).unwrap_err(), CapReached::PerSource(3));
        let b: Vec<_> = (0..2).map(|_| caps.admit(ip("192.0.2.2")).expect("under cap")).collect();
        assert_eq!(caps.admit(ip("192.0.2.3")).unwrap_err(), CapReached::Total(5));
        assert_eq!(caps.held(ip("192.0.2.1")), (5, 3));
        drop(a);
        assert_eq!(caps.held(ip("192.0.2.1")), (2, 0));
        assert!(caps.admit(ip("192.0.2.3")).is_ok());
        drop(b);
        assert_eq!(caps.held(ip("192.0.2.2")), (0, 0));
        assert!(caps.counts.lock().unwrap().per_ip.is_empty(), "no entry outlives its source");
    }

    #[test]
    fn a_source_is_reported_once_per_interval() {
        let t0 = Instant::now();
        let mut throttle: ReportThrottle = ReportThrottle::new(Duration::from_secs(60));
        assert!(throttle.should_report(t0, ip("192.0.2.1")));
        assert!(!throttle.should_report(t0 + Duration::from_secs(59), ip("192.0.2.1")));
        assert!(throttle.should_report(t0 + Duration::from_secs(1), ip("192.0.2.2")));
        assert!(throttle.should_report(t0 + Duration::from_secs(60), ip("192.0.2.1")));
    }

    #[test]
    fn the_throttle_remembers_a_bounded_number_of_sources() {
        let t0 = Instant::now();
        let mut throttle: ReportThrottle = ReportThrottle::new(Duration::from_secs(60));
        for i in 0..THROTTLE_SOURCES as u32 {
            assert!(throttle.should_report(t0, IpAddr::from((0x0a00_0000 + i).to_be_bytes())));
        }
        assert!(!throttle.should_report(t0, ip("192.0.2.9")), "full of recent sources");
        assert_eq!(throttle.last.len(), THROTTLE_SOURCES);
        let later = t0 + Duration::from_secs(61);
        assert!(throttle.should_report(later, ip("192.0.2.9")), "old entries pruned");
        assert_eq!(throttle.last.len(), 1);
    }

    #[test]
    fn a_trickled_message_is_cut_off_at_the_message_timeout() {
        let limits = TcpLimits {
            idle_timeout: Duration::from_secs(300),
            message_timeout: Duration::from_secs(10),
            ..TcpLimits::default()
        };
        let t0 = Instant::now();
        let mut d = StreamDeadlines::new(t0, &limits);
        assert_eq!(d.poll_timeout(), t0 + Duration::from_secs(300));
        // One byte a second keeps the idle deadline away, never the message deadline.
        for s in 1..10 {
            d.on_read(t0 + Duration::from_secs(s), false, true);
            assert_eq!(d.poll_timeout(), t0 + Duration::from_secs(11));
            assert_eq!(d.expired(t0 + Duration::from_secs(s)), None);
        }
        assert_eq!(d.expired(t0 + Duration::from_secs(11)), Some(Expiry::SlowSender));
    }

    #[test]
    fn whole_messages_and_keepalives_reset_the_message_deadline() {
        let t0 = Instant::now();
        let mut d = StreamDeadlines::new(t0, &TcpLimits::default());
        let s = Duration::from_secs;
        d.on_read(t0 + s(1), false, true);
        // A message completes and the next one starts in the same read.
        d.on_read(t0 + s(9), true, true);
        assert_eq!(d.poll_timeout(), t0 + s(19));
        // Completed with nothing left over: only the idle deadline remains.
        d.on_read(t0 + s(12), true, false);
        assert_eq!(d.poll_timeout(), t0 + s(312));
        assert_eq!(d.expired(t0 + s(311)), None);
        assert_eq!(d.expired(t0 + s(312)), Some(Expiry::Idle));
    }
}
