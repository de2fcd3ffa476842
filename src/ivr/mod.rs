//! The IVR's decisions: where a call goes.

pub mod routing;
