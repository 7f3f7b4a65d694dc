//! The decisions of a call, as plain Rust: no browser, no clock, no IO. The browser glue in
//! `web/` turns events into calls here and carries out what comes back, so all of this is
//! tested natively in milliseconds.

pub mod backoff;
pub mod guard;
pub mod layers;
pub mod negotiation;
pub mod quality;
pub mod recovery;
pub mod roster;
pub mod session;
pub mod speaking;
