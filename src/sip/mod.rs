//! SIP: message framing and parsing, transactions, dialogs, and the transports.

pub mod ani;
pub mod dialog;
mod framer;
pub mod message;
mod normalise;
mod syntax;
pub mod transaction;
