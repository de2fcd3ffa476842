//! The IVR (sans-IO): the flow, its prompts and routing, and how a call went.

pub mod config;
pub mod flow;
pub mod outcome;
pub mod prompts;
pub mod routing;
