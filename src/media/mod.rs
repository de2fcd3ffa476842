//! Media: codecs, prompts, pacing, DTMF, per-call RTP sessions and bridging.

pub mod batch_send;
pub mod bridge;
pub mod bridge_relay;
pub mod bridge_rtcp;
pub mod call_media;
pub mod codec;
pub mod dtmf;
pub mod engine;
pub mod latch;
pub mod liveness;
pub mod pacer;
pub mod playback;
pub mod prompt;
pub mod receive;
pub mod recv_batch;
pub mod rtcp;
pub mod rtp_ports;
pub mod session;
pub(crate) mod srtp_stream;
pub mod worker;
