//! The send schedule for many RTP streams, driven by one tick (sans-IO).
//!
//! Frame `n` of a stream is due at `t0 + n·period` on the monotonic clock. The deadline is
//! always computed from `n`, never by adding intervals, so there is no accumulated drift.
//! When the worker wakes late (a stall), a stream sends only its newest due frame: the late
//! frames are skipped and counted, never sent in a burst. Skipped frames still advance the
//! RTP timestamp (`ts0 + n·samples_per_frame`), so a receiver sees a gap, not compressed time.
//!
//! One [`Pacer`] serves every stream on a worker: call [`Pacer::poll`] when the clock reaches
//! [`Pacer::next_deadline`], and send one packet for each [`Due`] it returns.

use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;
use std::time::{Duration, Instant};

/// The usual packet interval.
pub const DEFAULT_PERIOD: Duration = Duration::from_millis(20);

/// Why a stream could not be scheduled.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PacerError {
    #[error("a stream with this id is already scheduled")]
    Duplicate,
    #[error("the period must be between 1 ms and 1 s")]
    Period,
}

/// One stream's schedule.
#[derive(Debug, Clone)]
struct Schedule {
    t0: Instant,
    period: Duration,
    ts0: u32,
    samples_per_frame: u32,
    /// The next frame index to send.
    next: u64,
    /// The deadline of `next` (cached; always `t0 + next·period`).
    deadline: Instant,
    skipped: u64,
}

impl Schedule {
    fn due_at(&self, n: u64) -> Instant {
        // period ≤ 1 s and n < 2^40 frames keeps this far inside u128 and Duration.
        let nanos = self.period.as_nanos().saturating_mul(u128::from(n));
        let nanos = u64::try_from(nanos).unwrap_or(u64::MAX);
        self.t0 + Duration::from_nanos(nanos)
    }

    fn timestamp(&self, n: u64) -> u32 {
        let step = n.wrapping_mul(u64::from(self.samples_per_frame));
        self.ts0.wrapping_add(step as u32)
    }
}

/// A frame to send now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due<K> {
    /// The stream.
    pub stream: K,
    /// Frame index since the stream started (0-based). Pick the audio by this index so
    /// the content stays aligned with real time after a skip.
    pub frame: u64,
    /// RTP timestamp of this frame: `ts0 + frame·samples_per_frame` (wrapping).
    pub timestamp: u32,
    /// Frames skipped just before this one because they were already late.
    pub skipped: u64,
}

/// The deadline schedule of many streams. `K` names a stream (a call id, a leg id).
#[derive(Debug)]
pub struct Pacer<K> {
    streams: HashMap<K, Schedule>,
    queue: BTreeSet<(Instant, K)>,
    skipped_total: u64,
    sent_total: u64,
}

impl<K: Copy + Eq + Hash + Ord> Default for Pacer<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Copy + Eq + Hash + Ord> Pacer<K> {
    pub fn new() -> Self {
        Pacer { streams: HashMap::new(), queue: BTreeSet::new(), skipped_total: 0, sent_total: 0 }
    }

    /// Schedules a stream whose frame 0 is due at `t0` and carries RTP timestamp `ts0`.
    pub fn add(
        &mut self,
        stream: K,
        t0: Instant,
        period: Duration,
        ts0: u32,
        samples_per_frame: u32,
    ) -> Result<(), PacerError> {
        if !(Duration::from_millis(1)..=Duration::from_secs(1)).contains(&period) {
            return Err(PacerError::Period);
        }
        if self.streams.contains_key(&stream) {
            return Err(PacerError::Duplicate);
        }
        self.streams.insert(
            stream,
            Schedule { t0, period, ts0, samples_per_frame, next: 0, deadline: t0, skipped: 0 },
        );
        self.queue.insert((t0, stream));
        Ok(())
    }

    /// Stops a stream. Returns whether it was scheduled.
    pub fn remove(&mut self, stream: K) -> bool {
        match self.streams.remove(&stream) {
            Some(s) => {
                self.queue.remove(&(s.deadline, stream));
                true
            }
            None => false,
        }
    }

    pub fn contains(&self, stream: K) -> bool {
        self.streams.contains_key(&stream)
    }

    pub fn len(&self) -> usize {
        self.streams.len()
    }

    pub fn is_empty(&self) -> bool {
        self.streams.is_empty()
    }

    /// The earliest deadline of any stream: sleep until then, then call [`Pacer::poll`].
    pub fn next_deadline(&self) -> Option<Instant> {
        self.queue.first().map(|(t, _)| *t)
    }

    /// Appends one [`Due`] for every stream with a frame due at or before `now`. Each stream
    /// yields at most one frame per call: its newest due frame, the older late ones skipped.
    pub fn poll(&mut self, now: Instant, out: &mut Vec<Due<K>>) {
        while let Some(&(deadline, stream)) = self.queue.first() {
            if deadline > now {
                break;
            }
            self.queue.pop_first();
            let Some(s) = self.streams.get_mut(&stream) else {
                continue;
            };
            // The newest frame whose deadline has passed.
            let elapsed = now.saturating_duration_since(s.t0).as_nanos();
            let newest = u64::try_from(elapsed / s.period.as_nanos().max(1)).unwrap_or(u64::MAX);
            let frame = newest.max(s.next);
            let skipped = frame - s.next;
            s.skipped += skipped;
            self.skipped_total += skipped;
            self.sent_total += 1;
            out.push(Due { stream, frame, timestamp: s.timestamp(frame), skipped });
            s.next = frame.saturating_add(1);
            s.deadline = s.due_at(s.next);
            self.queue.insert((s.deadline, stream));
        }
    }

    /// Frames skipped by one stream so far.
    pub fn skipped(&self, stream: K) -> Option<u64> {
        self.streams.get(&stream).map(|s| s.skipped)
    }

    /// Frames skipped by all streams since the pacer was made (for a metric).
    pub fn skipped_total(&self) -> u64 {
        self.skipped_total
    }

    /// Frames handed out by all streams since the pacer was made.
    pub fn sent_total(&self) -> u64 {
        self.sent_total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS20: Duration = DEFAULT_PERIOD;

    #[test]
    fn ten_minutes_without_drift() {
        let t0 = Instant::now();
        let mut p = Pacer::new();
        p.add(1u32, t0, MS20, 1000, 160).unwrap();
        let mut out = Vec::new();
        let mut n = 0u64;
        // Wake exactly at each deadline, as a perfect timer would.
        while let Some(deadline) = p.next_deadline() {
            if deadline > t0 + Duration::from_secs(600) {
                break;
            }
            assert_eq!(deadline, t0 + MS20 * n as u32, "frame {n}");
            out.clear();
            p.poll(deadline, &mut out);
            assert_eq!(out.len(), 1);
            assert_eq!(out[0].frame, n);
            assert_eq!(out[0].timestamp, 1000u32.wrapping_add((n * 160) as u32));
            assert_eq!(out[0].skipped, 0);
            n += 1;
        }
        assert_eq!(n, 30_001, "frames 0..=30000 in 600 s");
        assert_eq!(p.sent_total(), 30_001);
        assert_eq!(p.skipped_total(), 0);
    }

    /// Waking a little late every time (timer jitter) never drifts and never skips.
    #[test]
    fn jittery_wakeups_do_not_drift() {
        let t0 = Instant::now();
        let mut p = Pacer::new();
        p.add(7u8, t0, MS20, 0, 960).unwrap();
        let mut out = Vec::new();
        for n in 0..30_000u64 {
            let deadline = p.next_deadline().unwrap();
            assert_eq!(deadline, t0 + Duration::from_millis(20 * n));
            let late = Duration::from_micros((n * 7919) % 5000); // up to 5 ms late
            out.clear();
            p.poll(deadline + late, &mut out);
            assert_eq!(out.len(), 1);
            assert_eq!(out[0].frame, n);
        }
        assert_eq!(p.next_deadline(), Some(t0 + Duration::from_secs(600)));
        assert_eq!(p.skipped_total(), 0);
    }

    #[test]
    fn stall_skips_instead_of_bursting() {
        let t0 = Instant::now();
        let mut p = Pacer::new();
        p.add(1u32, t0, MS20, 0, 160).unwrap();
        let mut out = Vec::new();
        for n in 0..5u64 {
            p.poll(t0 + MS20 * n as u32, &mut out);
        }
        assert_eq!(out.len(), 5);
        out.clear();
        // Frame 5 was due at 100 ms; the worker stalls for 200 ms and wakes at 300 ms.
        let wake = t0 + Duration::from_millis(300);
        p.poll(wake, &mut out);
        assert_eq!(out.len(), 1, "one frame, no burst");
        assert_eq!(out[0].frame, 15);
        assert_eq!(out[0].skipped, 10, "frames 5..=14 skipped");
        assert_eq!(out[0].timestamp, 15 * 160, "the timestamp shows the gap");
        // Polling again at the same instant yields nothing more.
        out.clear();
        p.poll(wake, &mut out);
        assert!(out.is_empty());
        // And the schedule resumes on the original grid.
        assert_eq!(p.next_deadline(), Some(t0 + Duration::from_millis(320)));
        p.poll(t0 + Duration::from_millis(320), &mut out);
        assert_eq!(out[0].frame, 16);
        assert_eq!(out[0].skipped, 0);
        assert_eq!(p.skipped(1), Some(10));
        assert_eq!(p.skipped_total(), 10);
    }

    #[test]
    fn timestamps_wrap() {
        let t0 = Instant::now();
        let mut p = Pacer::new();
        p.add(1u32, t0, MS20, u32::MAX - 159, 160).unwrap();
        let mut out = Vec::new();
        p.poll(t0, &mut out);
        p.poll(t0 + MS20, &mut out);
        p.poll(t0 + MS20 * 2, &mut out);
        let ts: Vec<u32> = out.iter().map(|d| d.timestamp).collect();
        assert_eq!(ts, vec![u32::MAX - 159, 0, 160]);
    }

    #[test]
    fn many_streams_share_one_tick() {
        let t0 = Instant::now();
        let mut p = Pacer::new();
        // 1,000 streams, started 1 ms apart modulo 20 ms.
        for id in 0..1000u32 {
            let start = t0 + Duration::from_millis(u64::from(id % 20));
            p.add(id, start, MS20, id * 3, 160).unwrap();
        }
        let mut out = Vec::new();
        let mut per_stream = vec![0u64; 1000];
        // Tick every 5 ms for 2 s.
        for tick in 0..=400u64 {
            let now = t0 + Duration::from_millis(tick * 5);
            out.clear();
            p.poll(now, &mut out);
            for d in &out {
                let id = d.stream as usize;
                assert_eq!(d.frame, per_stream[id], "stream {id} in order");
                assert_eq!(d.skipped, 0);
                assert_eq!(d.timestamp, d.stream * 3 + (d.frame as u32) * 160);
                per_stream[id] += 1;
            }
            assert!(p.next_deadline().unwrap() > now);
        }
        // Each stream sent every frame whose deadline is ≤ 2 s.
        for (id, &count) in per_stream.iter().enumerate() {
            let offset = (id % 20) as u64;
            assert_eq!(count, (2000 - offset) / 20 + 1, "stream {id}");
        }
        assert!(p.remove(3));
        assert!(!p.remove(3));
        assert_eq!(p.len(), 999);
    }

    #[test]
    fn rejects_duplicates_and_bad_periods() {
        let t0 = Instant::now();
        let mut p = Pacer::new();
        p.add(1u32, t0, MS20, 0, 160).unwrap();
        assert_eq!(p.add(1, t0, MS20, 0, 160), Err(PacerError::Duplicate));
        assert_eq!(p.add(2, t0, Duration::ZERO, 0, 160), Err(PacerError::Period));
    }

    #[test]
    fn removed_stream_is_not_polled() {
        let t0 = Instant::now();
        let mut p = Pacer::new();
        p.add(1u32, t0, MS20, 0, 160).unwrap();
        p.add(2u32, t0 + MS20, MS20, 0, 160).unwrap();
        p.remove(1);
        assert_eq!(p.next_deadline(), Some(t0 + MS20));
        let mut out = Vec::new();
        p.poll(t0 + MS20, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].stream, 2);
    }
}
