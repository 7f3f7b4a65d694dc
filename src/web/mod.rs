//! Everything that touches the browser: fetch, peer connections, media devices, stats.
//! It stays thin: decisions live in `core/`.
//!
//! Beware: web-sys `MediaStream` and `MediaStreamTrack` have an inherent `clone()` that
//! calls the JavaScript method (a new stream or track). To copy a handle, write
//! `Clone::clone(&x)`.

pub(crate) mod audio;
pub(crate) mod http;
pub(crate) mod js;
pub(crate) mod peer;
pub(crate) mod stats;
pub(crate) mod wire;
