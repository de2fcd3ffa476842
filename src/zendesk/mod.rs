//! The Zendesk data dip: API types, the client, phone-number normalisation and the simulator.

pub mod auth;
pub mod breaker;
pub mod cache;
pub mod client;
pub mod comment;
pub mod lookup;
pub mod model;
pub mod phone;
pub mod retry;
pub mod sim;

pub use client::{DipOutcome, FallbackReason, ZendeskClient};
pub use phone::{PhoneError, PhoneNumber, normalise};
