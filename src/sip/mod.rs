//! SIP: message framing and parsing, transactions, dialogs, and the transports.

pub mod ani;
pub mod dialog;
pub mod endpoint;
pub mod message;
pub mod transaction;
pub mod transport;
