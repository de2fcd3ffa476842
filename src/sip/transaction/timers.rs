//! One table for every transaction timer (RFC 3261 timers A–K, RFC 6026 timers L and M).

use std::collections::BTreeMap;
use std::time::Instant;

use super::TransactionId;

/// The RFC 3261 / RFC 6026 transaction timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Timer {
    /// Client INVITE request retransmission (unreliable transports).
    A,
    /// Client INVITE transaction timeout.
    B,
    /// Client INVITE wait for response retransmissions after a non-2xx final.
    D,
    /// Client non-INVITE request retransmission (unreliable transports).
    E,
    /// Client non-INVITE transaction timeout.
    F,
    /// Server INVITE final response retransmission (unreliable transports).
    G,
    /// Server INVITE wait for ACK.
    H,
    /// Server INVITE wait for ACK retransmissions (Confirmed).
    I,
    /// Server non-INVITE wait for request retransmissions (Completed).
    J,
    /// Client non-INVITE wait for response retransmissions (Completed).
    K,
    /// Server INVITE wait for INVITE retransmissions after a 2xx (Accepted).
    L,
    /// Client INVITE wait for 2xx retransmissions (Accepted).
    M,
}

/// The position of one armed timer in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct TimerKey {
    at: Instant,
    seq: u64,
}

/// Armed timers ordered by deadline (ties by arming order).
#[derive(Debug, Default)]
pub(super) struct TimerTable {
    entries: BTreeMap<TimerKey, (TransactionId, Timer)>,
    next_seq: u64,
}

impl TimerTable {
    pub fn insert(&mut self, at: Instant, id: TransactionId, timer: Timer) -> TimerKey {
        let key = TimerKey { at, seq: self.next_seq };
        self.next_seq = self.next_seq.wrapping_add(1);
        self.entries.insert(key, (id, timer));
        key
    }

    pub fn remove(&mut self, key: TimerKey) {
        self.entries.remove(&key);
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.entries.keys().next().map(|key| key.at)
    }

    /// Removes and returns the earliest timer due at or before `now`.
    pub fn pop_expired(&mut self, now: Instant) -> Option<(TimerKey, TransactionId, Timer)> {
        let entry = self.entries.first_entry()?;
        if entry.key().at > now {
            return None;
        }
        let key = *entry.key();
        let (id, timer) = entry.remove();
        Some((key, id, timer))
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn pops_in_deadline_then_arming_order() {
        let t0 = Instant::now();
        let mut table = TimerTable::default();
        let id = TransactionId("s1".into());
        table.insert(t0 + Duration::from_secs(2), id.clone(), Timer::H);
        let g = table.insert(t0 + Duration::from_secs(1), id.clone(), Timer::G);
        table.insert(t0 + Duration::from_secs(2), id.clone(), Timer::L);
        assert_eq!(table.next_deadline(), Some(t0 + Duration::from_secs(1)));
        assert!(table.pop_expired(t0).is_none());
        table.remove(g);
        assert_eq!(table.next_deadline(), Some(t0 + Duration::from_secs(2)));
        let later = t0 + Duration::from_secs(3);
        assert_eq!(table.pop_expired(later).map(|e| e.2), Some(Timer::H));
        assert_eq!(table.pop_expired(later).map(|e| e.2), Some(Timer::L));
        assert!(table.pop_expired(later).is_none());
        assert_eq!(table.len(), 0);
    }
}
