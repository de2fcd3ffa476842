//! A call's media as the call driver sees it (runtime layer): RTP ports held from the
//! answer, a [`MediaSession`] once the call is established, playback of what it is told,
//! and digits collected. What to play is the IVR flow's decision, not this module's.

use tracing::warn;

use crate::config::CodecName;
use crate::media::dtmf::{DigitEvent, DigitSource};
use crate::media::engine::MediaEngine;
use crate::media::playback::{Finished, PlayMode, PlaybackId};
use crate::media::prompt::Prompt;
use crate::media::rtp_ports::RtpSockets;
use crate::media::session::{DetachedMedia, MediaEvent, MediaSession};
use crate::sdp::Negotiated;

/// Most digits remembered for the call summary.
pub const MAX_DIGITS: usize = 64;

/// What the call must act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallMediaEvent {
    Digit(DigitEvent),
    /// A playback ended (played out, stopped by a key, or replaced).
    PlaybackFinished(Finished),
    /// No RTP while not on hold.
    RtpTimeout,
}

/// One call's media.
pub struct CallMedia {
    engine: MediaEngine,
    sockets: Option<RtpSockets>,
    session: Option<MediaSession>,
    digits: String,
    /// How each digit of `digits` came (RFC 4733, SIP INFO, in-band), in order.
    digit_sources: Vec<DigitSource>,
    /// The media as last negotiated.
    negotiated: Option<Negotiated>,
}

impl CallMedia {
    pub fn new(engine: MediaEngine, sockets: RtpSockets) -> Self {
        CallMedia {
            engine,
            sockets: Some(sockets),
            session: None,
            digits: String::new(),
            digit_sources: Vec::new(),
            negotiated: None,
        }
    }

    /// The digits received so far (at most [`MAX_DIGITS`]).
    pub fn digits(&self) -> &str {
        &self.digits
    }

    /// How each digit of [`CallMedia::digits`] came, in order.
    pub fn digit_sources(&self) -> &[DigitSource] {
        &self.digit_sources
    }

    /// The codec in use, once the call is established (and until it is detached).
    pub fn codec(&self) -> Option<CodecName> {
        self.session.as_ref().map(MediaSession::codec)
    }

    /// Whether the call's media is SRTP (the bridge relay forwards plain RTP only).
    pub fn uses_srtp(&self) -> bool {
        self.negotiated.as_ref().is_some_and(|m| m.srtp.is_some())
    }

    /// The call is up: start RTP (silence until something is played). Later calls (a
    /// repeated ACK) only update the session.
    pub fn established(&mut self, media: &Negotiated) {
        self.negotiated = Some(media.clone());
        if let Some(session) = &self.session {
            session.update(media);
            return;
        }
        let Some(sockets) = self.sockets.take() else { return };
        match self.engine.session(sockets, media) {
            Ok(session) => self.session = Some(session),
            Err(err) => warn!(%err, "cannot start media; the call stays silent"),
        }
    }

    /// A re-INVITE or UPDATE changed the media.
    pub fn changed(&mut self, media: &Negotiated) {
        self.negotiated = Some(media.clone());
        if let Some(session) = &self.session {
            session.update(media);
        }
    }

    /// A SIP INFO arrived.
    pub fn sip_info(&mut self, content_type: &str, body: &[u8]) {
        if let Some(session) = &mut self.session {
            session.sip_info(content_type, body);
        }
    }

    /// Plays `prompts` once, replacing what plays; with `barge_in`, a digit stops it.
    /// `None` when there is no session (not established, or detached).
    pub fn play(&mut self, prompts: Vec<Prompt>, barge_in: bool) -> Option<PlaybackId> {
        let session = self.session.as_mut()?;
        Some(session.play(prompts, PlayMode::Once, barge_in))
    }

    /// Plays `prompt` in a loop, replacing what plays.
    pub fn play_loop(&mut self, prompt: Prompt) -> Option<PlaybackId> {
        let session = self.session.as_mut()?;
        Some(session.play(vec![prompt], PlayMode::Loop, false))
    }

    /// Stops what plays (silence follows).
    pub fn stop(&mut self) {
        if let Some(session) = &mut self.session {
            session.stop_playback();
        }
    }

    /// Stops the call's RTP and hands back its sockets, the outgoing stream's state and
    /// the negotiated media (for a bridge). `None` before the call is established, or if
    /// already detached. Afterwards [`Self::next_event`] stays pending.
    pub async fn detach(&mut self) -> Option<(DetachedMedia, Negotiated)> {
        let negotiated = self.negotiated.clone()?;
        let session = self.session.take()?;
        Some((session.detach().await, negotiated))
    }

    /// The next event the call acts on (pending forever without a session).
    pub async fn next_event(&mut self) -> CallMediaEvent {
        let Some(session) = self.session.as_mut() else {
            return std::future::pending().await;
        };
        match session.next_event().await {
            MediaEvent::Digit(d) => {
                if self.digits.len() < MAX_DIGITS {
                    self.digits.push(d.digit);
                    self.digit_sources.push(d.source);
                }
                CallMediaEvent::Digit(d)
            }
            MediaEvent::RtpTimeout => CallMediaEvent::RtpTimeout,
            MediaEvent::PlaybackFinished(f) => CallMediaEvent::PlaybackFinished(f),
        }
    }
}
