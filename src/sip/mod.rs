//! SIP: message framing and parsing, transactions, dialogs, and the transports.

pub mod ani;
pub mod dialog;
pub mod endpoint;
pub mod header_text;
pub mod message;
pub mod refer;
pub mod response;
pub mod session_timer;
pub mod transaction;
pub mod transport;
