//! Playback: what a call's outgoing stream carries, frame by frame (sans-IO).
//!
//! A [`PlayRequest`] is a list of prompts played once, or looped (hold music). A new
//! request replaces the current one; a digit can stop it (barge-in, decided by the
//! session); the end of a one-shot list is reported as [`Finished`]. Between playbacks the
//! stream carries encoded silence, so the peer's jitter buffer and NAT bindings stay alive.
//!
//! [`Player::next`] is called once per paced packet with how many frame slots passed
//! (1, or more after a stall: late frames are skipped, so the audio stays aligned with
//! real time). It returns the frame to send and whether it starts a talk-spurt (the RTP
//! marker bit): the first frame of every playback, and the first audio after silence.

use crate::media::codec::Frame;
use crate::media::prompt::Prompt;

/// Identifies one playback of a call (increasing per call).
pub type PlaybackId = u64;

/// Once through the list, or round and round until stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlayMode {
    Once,
    Loop,
}

/// A list of prompts to play.
#[derive(Debug, Clone)]
pub struct PlayRequest {
    pub id: PlaybackId,
    pub prompts: Vec<Prompt>,
    pub mode: PlayMode,
    /// Whether a digit stops it.
    pub barge_in: bool,
}

/// Why a playback ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// It played to its end.
    Completed,
    /// A digit interrupted it.
    BargeIn(char),
    /// Stopped by a command, or replaced by a new playback.
    Stopped,
}

/// A playback that ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finished {
    pub id: PlaybackId,
    pub reason: StopReason,
}

/// The frame to send now.
#[derive(Debug, PartialEq, Eq)]
pub struct Output<'a> {
    pub frame: &'a Frame,
    /// Set the RTP marker bit: a talk-spurt starts here.
    pub marker: bool,
    /// A one-shot playback that reached its end during this step.
    pub finished: Option<Finished>,
}

#[derive(Debug)]
struct Current {
    request: PlayRequest,
    item: usize,
    pos: usize,
}

/// One stream's playback state.
#[derive(Debug)]
pub struct Player {
    current: Option<Current>,
    silence: Frame,
    /// Whether the previous frame was audio from a playback.
    talking: bool,
}

impl Player {
    /// A player that sends `silence` (one encoded 20 ms frame) when nothing plays.
    pub fn new(silence: Frame) -> Self {
        Player { current: None, silence, talking: false }
    }

    /// Starts `request`, replacing (and returning) the current playback.
    pub fn play(&mut self, request: PlayRequest) -> Option<Finished> {
        let old = self.stop(None, StopReason::Stopped);
        self.talking = false;
        self.current = Some(Current { request, item: 0, pos: 0 });
        old
    }

    /// Stops the current playback (only if it is `id`, when given).
    pub fn stop(&mut self, id: Option<PlaybackId>, reason: StopReason) -> Option<Finished> {
        let current = self.current.as_ref()?;
        if id.is_some_and(|id| id != current.request.id) {
            return None;
        }
        let id = current.request.id;
        self.current = None;
        Some(Finished { id, reason })
    }

    /// The playback in progress.
    pub fn playing(&self) -> Option<PlaybackId> {
        self.current.as_ref().map(|c| c.request.id)
    }

    /// Whether the playback in progress stops on a digit.
    pub fn barge_in(&self) -> bool {
        self.current.as_ref().is_some_and(|c| c.request.barge_in)
    }

    /// The next frame, `slots` frame times after the previous one (`slots - 1` skipped).
    pub fn next(&mut self, slots: u64) -> Output<'_> {
        let mut finished = None;
        let mut frame = None;
        if let Some(c) = self.current.as_mut() {
            match advance(c, slots.saturating_sub(1)) {
                Some((item, pos)) => {
                    c.item = item;
                    c.pos = pos + 1;
                    frame = Some((item, pos));
                }
                None => {
                    finished = Some(Finished { id: c.request.id, reason: StopReason::Completed });
                }
            }
        }
        if finished.is_some() {
            self.current = None;
        }
        match (frame, self.current.as_ref()) {
            (Some((item, pos)), Some(c)) => {
                let marker = !self.talking;
                self.talking = true;
                Output { frame: &c.request.prompts[item][pos], marker, finished }
            }
            _ => {
                self.talking = false;
                Output { frame: &self.silence, marker: false, finished }
            }
        }
    }
}

/// The (item, frame) `skip` frames past the cursor, or None when a one-shot list ran out.
/// Empty prompts are passed over; a loop of nothing but empty prompts ends.
fn advance(c: &Current, skip: u64) -> Option<(usize, usize)> {
    let prompts = &c.request.prompts;
    let total: u64 = prompts.iter().map(|p| p.len() as u64).sum();
    if total == 0 {
        return None;
    }
    let mut skip = skip;
    if c.request.mode == PlayMode::Loop {
        skip %= total;
    }
    let (mut item, mut pos) = (c.item, c.pos);
    // Bounded: at most one pass over the list plus a wrap for a loop.
    for _ in 0..=(2 * prompts.len() + 1) {
        let Some(prompt) = prompts.get(item) else {
            if c.request.mode == PlayMode::Loop {
                item = 0;
                pos = 0;
                continue;
            }
            return None;
        };
        let left = (prompt.len() - pos.min(prompt.len())) as u64;
        if skip < left {
            return Some((item, pos + skip as usize));
        }
        skip -= left;
        item += 1;
        pos = 0;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn prompt(tag: u8, frames: usize) -> Prompt {
        (0..frames)
            .map(|i| Frame { payload: Bytes::from(vec![tag, i as u8]), samples: 160 })
            .collect::<Vec<_>>()
            .into()
    }

    fn silence() -> Frame {
        Frame { payload: Bytes::from_static(&[0xff]), samples: 160 }
    }

    fn req(id: u64, prompts: Vec<Prompt>, mode: PlayMode) -> PlayRequest {
        PlayRequest { id, prompts, mode, barge_in: true }
    }

    fn tags(out: &Output<'_>) -> (u8, u8) {
        let p = &out.frame.payload;
        (p[0], p.get(1).copied().unwrap_or(0))
    }

    #[test]
    fn plays_a_list_once_then_silence_and_reports_the_end() {
        let mut p = Player::new(silence());
        assert!(!p.next(1).marker, "silence has no marker");
        p.play(req(1, vec![prompt(1, 2), prompt(2, 2)], PlayMode::Once));
        let got: Vec<_> = (0..4)
            .map(|_| {
                let o = p.next(1);
                assert!(o.finished.is_none());
                (tags(&o), o.marker)
            })
            .collect();
        assert_eq!(got, vec![((1, 0), true), ((1, 1), false), ((2, 0), false), ((2, 1), false)]);
        let end = p.next(1);
        assert_eq!(end.frame.payload.as_ref(), &[0xff]);
        assert_eq!(end.finished, Some(Finished { id: 1, reason: StopReason::Completed }));
        assert!(p.next(1).finished.is_none(), "reported once");
        assert_eq!(p.playing(), None);
    }

    #[test]
    fn loops_forever_without_a_marker_at_the_wrap() {
        let mut p = Player::new(silence());
        p.play(req(3, vec![prompt(9, 3)], PlayMode::Loop));
        let mut markers = 0;
        for i in 0..3000 {
            let o = p.next(1);
            assert_eq!(tags(&o), (9, (i % 3) as u8));
            assert!(o.finished.is_none());
            markers += usize::from(o.marker);
        }
        assert_eq!(markers, 1);
    }

    #[test]
    fn skipped_slots_keep_the_audio_aligned() {
        let mut p = Player::new(silence());
        p.play(req(1, vec![prompt(1, 5), prompt(2, 5)], PlayMode::Once));
        assert_eq!(tags(&p.next(1)), (1, 0));
        assert_eq!(tags(&p.next(8)), (2, 3), "7 frames skipped");
        assert_eq!(tags(&p.next(1)), (2, 4));
        let o = p.next(40);
        assert_eq!(o.finished.map(|f| f.reason), Some(StopReason::Completed));
        // A loop wraps over a long stall.
        p.play(req(2, vec![prompt(3, 4)], PlayMode::Loop));
        assert_eq!(tags(&p.next(1)), (3, 0));
        assert_eq!(tags(&p.next(4 * 1000 + 2)), (3, 2));
    }

    #[test]
    fn replace_and_stop_report_the_old_playback() {
        let mut p = Player::new(silence());
        assert_eq!(p.play(req(1, vec![prompt(1, 10)], PlayMode::Once)), None);
        p.next(1);
        assert_eq!(
            p.play(req(2, vec![prompt(2, 10)], PlayMode::Loop)),
            Some(Finished { id: 1, reason: StopReason::Stopped })
        );
        let o = p.next(1);
        assert_eq!((tags(&o), o.marker), ((2, 0), true), "a new playback starts a talk-spurt");
        assert_eq!(p.stop(Some(1), StopReason::Stopped), None, "a stale id stops nothing");
        assert_eq!(
            p.stop(None, StopReason::BargeIn('5')),
            Some(Finished { id: 2, reason: StopReason::BargeIn('5') })
        );
        assert!(!p.next(1).marker);
    }

    #[test]
    fn empty_prompts_finish_at_once_and_are_passed_over() {
        let mut p = Player::new(silence());
        p.play(req(1, vec![], PlayMode::Loop));
        assert_eq!(p.next(1).finished.map(|f| f.id), Some(1));
        p.play(req(2, vec![prompt(0, 0), prompt(4, 1), prompt(0, 0)], PlayMode::Once));
        assert_eq!(tags(&p.next(1)), (4, 0));
        assert!(p.next(1).finished.is_some());
    }
}
