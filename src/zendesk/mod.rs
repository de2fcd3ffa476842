//! The Zendesk data dip: API types, the client and the simulator (phone numbers are `crate::phone`).

pub mod auth;
pub mod breaker;
pub mod cache;
pub mod client;
pub mod comment;
pub mod lookup;
pub mod model;
pub mod retry;
pub mod sim;

pub use crate::phone::{self, PhoneError, PhoneNumber, normalise};
pub use client::{DipOutcome, FallbackReason, ZendeskClient};
