//! The Zendesk data dip: API types, the client, phone-number normalisation and the simulator.

pub mod client;
pub mod model;
pub mod phone;
pub mod sim;
