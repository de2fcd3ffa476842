//! SIP: message framing and parsing, transactions, dialogs, and the transports.

pub mod admission;
pub mod ani;
pub mod auth_config;
pub mod call_events;
pub mod dialog;
pub mod digest;
pub mod endpoint;
mod framer;
pub mod gate;
pub mod header_text;
pub mod message;
mod normalise;
pub mod peer_resolver;
pub mod rate_budget;
pub mod refer;
pub mod registration;
pub mod registrations;
pub mod response;
pub mod session_timer;
mod syntax;
pub mod tcp_guard;
pub mod transaction;
pub mod transport;
