//! Carrying out the flow's actions (runtime layer): audio is prepared off the call's
//! task (TTS through the shared service, files and encoding on the blocking pool) and
//! played when ready; transfers go out by REFER or as an agent leg; hang-ups and the
//! flow's report land in the call summary.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{info, warn};

use super::driver::{Done, Driver};
use crate::config::{CodecName, TransferMode};
use crate::ivr::flow::{Action, FlowEvent, PlayId, Say, Sentence, TransferRequest, TransferUpdate};
use crate::ivr::outcome::TransferFailure;
use crate::media::engine::MediaEngine;
use crate::media::playback::PlaybackId;
use crate::media::prompt::Prompt;
use crate::sip::ani::CallerId;
use crate::sip::endpoint::Command;
use crate::transfer::bridge::AgentLeg;
use crate::transfer::{agent_headers, refer_target};
use crate::tts::Tts;

/// What plays now, as the driver tracks it.
#[derive(Debug, Default)]
pub(super) struct Stage {
    /// The flow's latest play; audio prepared for an older one is dropped.
    wanted: Option<PlayId>,
    /// The media playback of the flow's play in progress.
    playing: Option<(PlaybackId, PlayId)>,
}

impl Stage {
    /// The flow's play that a finished media playback was, if any.
    pub fn finished(&mut self, playback: PlaybackId) -> Option<PlayId> {
        match self.playing {
            Some((p, id)) if p == playback => {
                self.playing = None;
                Some(id)
            }
            _ => None,
        }
    }
}

/// Audio made ready for one play.
pub(super) struct Prepared {
    /// `None` for hold music (played in a loop).
    id: Option<PlayId>,
    prompts: Vec<Prompt>,
    barge_in: bool,
}

impl Driver<'_> {
    /// Carries out every action the flow has queued.
    pub async fn carry_out(&mut self) {
        while let Some(action) = self.flow.poll_action() {
            match action {
                Action::Play { id, items, barge_in } => {
                    self.stage.wanted = Some(id);
                    self.prepare(Some(id), items, barge_in);
                }
                Action::HoldMusic => {
                    self.stage.wanted = None;
                    self.prepare(None, Vec::new(), false);
                }
                Action::Stop => {
                    self.stage = Stage::default();
                    self.media.stop();
                }
                Action::Render(sentence) => self.render(sentence),
                Action::Transfer(request) => self.transfer(request).await,
                Action::CancelTransfer => {
                    if let Some(mut agent) = self.agent.take() {
                        agent.hang_up();
                    }
                }
                Action::Hangup => {
                    if let Some(mut agent) = self.agent.take() {
                        agent.hang_up();
                    }
                    self.ctx.endpoint.send(Command::Hangup { call: self.call });
                }
                Action::Finish(report) => self.summary.report = Some(report),
            }
        }
    }

    /// Gets a play's audio ready in another task; [`Driver::start_playback`] plays it.
    fn prepare(&mut self, id: Option<PlayId>, items: Vec<Say>, barge_in: bool) {
        let Some(codec) = self.media.codec() else {
            // No media (bridged, or not started): nothing can play; the flow moves on.
            if let Some(id) = id {
                self.flow.handle_event(
                    Instant::now(),
                    FlowEvent::PlaybackFinished { id, interrupted: false },
                );
            }
            return;
        };
        let (engine, tts, done) =
            (self.ctx.media.clone(), self.ctx.tts.clone(), self.done_tx.clone());
        tokio::spawn(async move {
            let prompts = match id {
                Some(_) => prompts_for(&engine, &tts, codec, items).await,
                None => music(&engine, codec).await,
            };
            let _ = done.send(Done::Prepared(Prepared { id, prompts, barge_in }));
        });
    }

    /// Plays prepared audio, unless the flow has moved on since it was asked for.
    pub fn start_playback(&mut self, now: Instant, prepared: Prepared) {
        let Prepared { id, prompts, barge_in } = prepared;
        if id != self.stage.wanted {
            return;
        }
        let Some(id) = id else {
            // Hold music: nobody waits for it to end.
            self.stage.playing = None;
            if let Some(music) = prompts.into_iter().next() {
                self.media.play_loop(music);
            }
            return;
        };
        if prompts.is_empty() {
            self.flow.handle_event(now, FlowEvent::PlaybackFinished { id, interrupted: false });
            return;
        }
        match self.media.play(prompts, barge_in) {
            Some(playback) => {
                if !std::mem::replace(&mut self.played, true) {
                    let since = super::driver::since_invite(self.summary);
                    metrics::histogram!("call_first_audio_seconds").record(since);
                }
                self.stage.playing = Some((playback, id))
            }
            None => {
                self.flow.handle_event(now, FlowEvent::PlaybackFinished { id, interrupted: false })
            }
        }
    }

    /// Renders the caller's status sentence ahead of its play.
    fn render(&mut self, sentence: Sentence) {
        let (tts, done) = (self.ctx.tts.clone(), self.done_tx.clone());
        tokio::spawn(async move {
            let started = Instant::now();
            let ok = match tts.render(&sentence.text, sentence.lang.as_str()).await {
                Ok(_) => true,
                Err(err) => {
                    warn!(%err, "the status sentence could not be rendered in time");
                    false
                }
            };
            info!(ok, ms = started.elapsed().as_millis() as u64, "status sentence rendered");
            let _ = done.send(Done::Rendered(ok));
        });
    }

    async fn transfer(&mut self, request: TransferRequest) {
        let now = Instant::now();
        if self.ctx.targets.is_down(&request.target) {
            info!(target = %request.target, "target down by its probe; skipped");
            let update = TransferUpdate::Failed(TransferFailure::Unavailable);
            self.flow.handle_event(now, FlowEvent::Transfer(update));
            return;
        }
        match request.mode {
            TransferMode::Refer => {
                let target = refer_target(&request.target, request.ticket_id, request.user_id);
                info!(%target, queue = %request.queue, "transferring by REFER");
                self.ctx.endpoint.send(Command::Refer { call: self.call, target });
            }
            TransferMode::Bridge if self.media.uses_srtp() => {
                // The relay forwards plain RTP; it would have to decrypt and re-encrypt
                // every packet between two keys. Refused before the agent is called.
                warn!(target = %request.target, "a call on SRTP cannot be transferred by bridge");
                let failure = crate::transfer::bridge::srtp_refused();
                self.flow.handle_event(now, FlowEvent::Transfer(TransferUpdate::Failed(failure)));
            }
            TransferMode::Bridge => {
                info!(target = %request.target, queue = %request.queue, "transferring by bridge");
                let config = &self.ctx.config;
                let caller = match &self.summary.ani.caller {
                    CallerId::Number(n) => Some(n.e164.clone()),
                    _ => None,
                };
                let headers = agent_headers(
                    caller.as_deref(),
                    &config.sip.advertised_ip().to_string(),
                    &config.zendesk.url,
                    request.ticket_id,
                    request.user_id,
                    request.queue_priority,
                );
                let from_user = caller.unwrap_or_else(|| "ivr".into());
                let ring = Duration::from_secs(config.transfer.ring_timeout_s);
                let dialed = AgentLeg::dial(
                    &self.ctx.endpoint,
                    &self.ctx.rtp_ports,
                    &request.target,
                    &from_user,
                    headers,
                    ring,
                )
                .await;
                match dialed {
                    Ok(agent) => self.agent = Some(agent),
                    Err(failure) => {
                        warn!(%failure, target = %request.target, "cannot call the agent");
                        let update = TransferUpdate::Failed(failure);
                        self.flow.handle_event(Instant::now(), FlowEvent::Transfer(update));
                    }
                }
            }
        }
    }
}

/// Each item's audio for `codec`: sentences through TTS (a cache hit for every sentence
/// rendered at startup, and for the status rendered ahead), files and encoding on the
/// blocking pool. An item that cannot be had is left out (and logged).
async fn prompts_for(
    engine: &MediaEngine,
    tts: &Tts,
    codec: CodecName,
    items: Vec<Say>,
) -> Vec<Prompt> {
    let mut sources = Vec::with_capacity(items.len());
    for item in items {
        match item {
            Say::File(path) => sources.push(Source::File(path)),
            Say::Sentence(s) => match tts.render_detailed(&s.text, s.lang.as_str()).await {
                Ok(rendered) => sources.push(Source::Rendered(rendered.key.bytes(), rendered.wav)),
                Err(err) => warn!(%err, text = %s.text, "sentence left out: no audio"),
            },
        }
    }
    let engine = engine.clone();
    let encoded = tokio::task::spawn_blocking(move || {
        let mut prompts = Vec::with_capacity(sources.len());
        for source in sources {
            let prompt = match &source {
                Source::File(path) => engine.prompt(path, codec),
                Source::Rendered(key, wav) => engine.prompt_cache().rendered(*key, wav, codec),
            };
            match prompt {
                Ok(prompt) => prompts.push(prompt),
                Err(err) => warn!(%err, "prompt left out"),
            }
        }
        prompts
    })
    .await;
    encoded.unwrap_or_default()
}

async fn music(engine: &MediaEngine, codec: CodecName) -> Vec<Prompt> {
    let engine = engine.clone();
    let music = tokio::task::spawn_blocking(move || engine.hold_music(codec)).await;
    match music {
        Ok(Ok(prompt)) => vec![prompt],
        Ok(Err(err)) => {
            warn!(%err, "no hold music");
            Vec::new()
        }
        Err(_) => Vec::new(),
    }
}

enum Source {
    File(std::path::PathBuf),
    /// TTS audio with its cache key, so the prompt cache never hashes it per call.
    Rendered([u8; 32], Arc<[u8]>),
}
