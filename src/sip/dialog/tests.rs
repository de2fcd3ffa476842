//! UA tests in virtual time: messages are written as text, parsed by rsip, and fed in.

mod harness;

mod basic;
mod contacts;
mod errors;
mod invite_auth;
mod midcall;
mod outgoing;
mod probe;
mod refresh_rate;
mod srtp;
mod tls;
