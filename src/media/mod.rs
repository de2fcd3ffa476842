//! Media: codecs, prompts, pacing, DTMF, per-call RTP sessions and bridging.

pub mod bridge;
pub mod bridge_relay;
pub mod codec;
pub mod dtmf;
pub mod pacer;
pub mod prompt;
pub mod rtp_ports;
