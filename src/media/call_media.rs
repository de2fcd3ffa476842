//! A call's media as the call driver sees it (runtime layer), until the IVR flow takes
//! over: RTP ports held from the answer, a [`MediaSession`] once the call is established,
//! the welcome prompt then hold music in a loop, and digits collected.

use tracing::{info, warn};

use crate::media::dtmf::DigitEvent;
use crate::media::engine::MediaEngine;
use crate::media::playback::{PlayMode, PlaybackId, StopReason};
use crate::media::rtp_ports::RtpSockets;
use crate::media::session::{DetachedMedia, MediaEvent, MediaSession};
use crate::sdp::Negotiated;

/// Most digits remembered for the call summary.
pub const MAX_DIGITS: usize = 64;

/// What the call must act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallMediaEvent {
    Digit(DigitEvent),
    /// No RTP while not on hold: hang up.
    RtpTimeout,
}

/// One call's media.
pub struct CallMedia {
    engine: MediaEngine,
    sockets: Option<RtpSockets>,
    session: Option<MediaSession>,
    welcome: Option<PlaybackId>,
    digits: String,
    /// The media as last negotiated.
    negotiated: Option<Negotiated>,
}

impl CallMedia {
    pub fn new(engine: MediaEngine, sockets: RtpSockets) -> Self {
        CallMedia {
            engine,
            sockets: Some(sockets),
            session: None,
            welcome: None,
            digits: String::new(),
            negotiated: None,
        }
    }

    /// The digits received so far (at most [`MAX_DIGITS`]).
    pub fn digits(&self) -> &str {
        &self.digits
    }

    /// The call is up: start RTP, play the welcome prompt (a digit stops it), then hold music.
    pub fn established(&mut self, media: &Negotiated) {
        self.negotiated = Some(*media);
        if let Some(session) = &self.session {
            session.update(media);
            return;
        }
        let Some(sockets) = self.sockets.take() else { return };
        let mut session = match self.engine.session(sockets, media) {
            Ok(s) => s,
            Err(err) => {
                warn!(%err, "cannot start media; the call stays silent");
                return;
            }
        };
        match self.engine.welcome(session.codec()) {
            Ok(prompt) => self.welcome = Some(session.play(vec![prompt], PlayMode::Once, true)),
            Err(err) => {
                warn!(%err, "no welcome prompt");
                self.hold_music(&mut session);
            }
        }
        self.session = Some(session);
    }

    /// A re-INVITE or UPDATE changed the media.
    pub fn changed(&mut self, media: &Negotiated) {
        self.negotiated = Some(*media);
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

    /// Plays the hold music in a loop from now on (the welcome prompt, if still playing,
    /// stops). Nothing happens before the call is established or after [`Self::detach`].
    pub fn play_hold_music(&mut self) {
        self.welcome = None;
        if let Some(mut session) = self.session.take() {
            self.hold_music(&mut session);
            self.session = Some(session);
        }
    }

    /// Stops the call's RTP and hands back its sockets, the outgoing stream's state and
    /// the negotiated media (for a bridge). `None` before the call is established, or if
    /// already detached. Afterwards [`Self::next_event`] stays pending.
    pub async fn detach(&mut self) -> Option<(DetachedMedia, Negotiated)> {
        let negotiated = self.negotiated?;
        let session = self.session.take()?;
        self.welcome = None;
        Some((session.detach().await, negotiated))
    }

    fn hold_music(&mut self, session: &mut MediaSession) {
        match self.engine.hold_music(session.codec()) {
            Ok(music) => {
                session.play(vec![music], PlayMode::Loop, false);
            }
            Err(err) => warn!(%err, "no hold music"),
        }
    }

    /// The next event the call acts on (pending forever before the call is established).
    pub async fn next_event(&mut self) -> CallMediaEvent {
        loop {
            let Some(session) = self.session.as_mut() else {
                return std::future::pending().await;
            };
            match session.next_event().await {
                MediaEvent::Digit(d) => {
                    if self.digits.len() < MAX_DIGITS {
                        self.digits.push(d.digit);
                    }
                    return CallMediaEvent::Digit(d);
                }
                MediaEvent::RtpTimeout => return CallMediaEvent::RtpTimeout,
                MediaEvent::PlaybackFinished(f) => {
                    info!(id = f.id, reason = ?f.reason, "playback finished");
                    if Some(f.id) == self.welcome
                        && matches!(f.reason, StopReason::Completed | StopReason::BargeIn(_))
                    {
                        self.welcome = None;
                        if let Some(mut session) = self.session.take() {
                            self.hold_music(&mut session);
                            self.session = Some(session);
                        }
                    }
                }
            }
        }
    }
}
