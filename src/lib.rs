//! zendesk-ivr: a caller-aware SIP/RTP IVR.
//!
//! The layout follows `ARCHITECTURE.md` (kept in the team's shared folder): sans-IO protocol
//! cores (`sip::message`, `sip::transaction`, `sip::dialog`, `sdp`, `media::{codec,pacer,dtmf}`)
//! and one runtime layer that owns sockets, the clock, files and HTTP.

pub mod admin;
pub mod call;
pub mod caller;
pub mod check;
pub mod config;
pub mod demo;
pub mod ivr;
pub mod log_format;
pub mod media;
pub mod metric_catalog;
pub mod outbox;
pub mod phone;
pub mod post_call;
pub mod sdp;
pub mod secret;
pub mod secret_files;
pub mod security_event;
pub mod server;
pub mod sip;
pub mod srtp;
pub mod status;
pub mod systemd_notify;
pub mod transfer;
pub mod tts;
pub mod zendesk;
