//! A short-lived, size-bounded cache of data-dip results for repeat callers (sans-IO).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct TtlCache<V> {
    ttl: Duration,
    capacity: usize,
    /// Key to (stored at, insertion number, value).
    entries: HashMap<String, (Instant, u64, V)>,
    /// Keys in insertion order, with their insertion number (stale ones of replaced entries
    /// are skipped by comparing the number).
    order: VecDeque<(u64, String)>,
    next_seq: u64,
}

impl<V: Clone> TtlCache<V> {
    /// A TTL or capacity of zero disables the cache.
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        TtlCache { ttl, capacity, entries: HashMap::new(), order: VecDeque::new(), next_seq: 0 }
    }

    pub fn is_enabled(&self) -> bool {
        !self.ttl.is_zero() && self.capacity > 0
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn get(&mut self, key: &str, now: Instant) -> Option<V> {
        let (stored, _, value) = self.entries.get(key)?;
        if now.saturating_duration_since(*stored) < self.ttl {
            return Some(value.clone());
        }
        self.entries.remove(key);
        None
    }

    pub fn insert(&mut self, key: String, value: V, now: Instant) {
        if !self.is_enabled() {
            return;
        }
        self.evict(now);
        self.entries.remove(&key);
        while self.entries.len() >= self.capacity {
            let Some((seq, oldest)) = self.order.pop_front() else { break };
            if self.is_live(&oldest, seq) {
                self.entries.remove(&oldest);
            }
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.order.push_back((seq, key.clone()));
        self.entries.insert(key, (now, seq, value));
        // Stale keys of replaced entries must not make `order` grow without bound.
        if self.order.len() > self.capacity.saturating_mul(2) {
            let entries = &self.entries;
            self.order.retain(|(seq, k)| entries.get(k).is_some_and(|(_, live, _)| live == seq));
        }
    }

    pub fn remove(&mut self, key: &str) {
        self.entries.remove(key);
    }

    /// Drops expired entries from the front of the insertion order.
    fn evict(&mut self, now: Instant) {
        while let Some((seq, key)) = self.order.front() {
            match self.entries.get(key) {
                Some((stored, live, _)) if live == seq => {
                    if now.saturating_duration_since(*stored) < self.ttl {
                        break;
                    }
                    self.entries.remove(key);
                }
                _ => {}
            }
            self.order.pop_front();
        }
    }

    fn is_live(&self, key: &str, seq: u64) -> bool {
        self.entries.get(key).is_some_and(|(_, live, _)| *live == seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_after_the_ttl() {
        let t0 = Instant::now();
        let mut c = TtlCache::new(Duration::from_secs(30), 10);
        c.insert("a".into(), 1, t0);
        assert_eq!(c.get("a", t0 + Duration::from_secs(29)), Some(1));
        assert_eq!(c.get("a", t0 + Duration::from_secs(30)), None);
        assert!(c.is_empty());
    }

    #[test]
    fn size_is_bounded_oldest_first() {
        let t0 = Instant::now();
        let mut c = TtlCache::new(Duration::from_secs(30), 2);
        c.insert("a".into(), 1, t0);
        c.insert("b".into(), 2, t0 + Duration::from_millis(1));
        c.insert("c".into(), 3, t0 + Duration::from_millis(2));
        assert_eq!(c.len(), 2);
        assert_eq!(c.get("a", t0), None);
        assert_eq!(c.get("c", t0), Some(3));
        // Replacing one key many times keeps the bookkeeping bounded.
        for i in 0..1000 {
            c.insert("b".into(), i, t0 + Duration::from_millis(3));
        }
        assert!(c.order.len() <= 4);
        assert_eq!(c.get("b", t0 + Duration::from_millis(3)), Some(999));
    }

    #[test]
    fn zero_disables_it() {
        let t0 = Instant::now();
        let mut c = TtlCache::new(Duration::ZERO, 10);
        c.insert("a".into(), 1, t0);
        assert_eq!(c.get("a", t0), None);
        let mut c = TtlCache::new(Duration::from_secs(1), 0);
        c.insert("a".into(), 1, t0);
        assert_eq!(c.get("a", t0), None);
    }
}
