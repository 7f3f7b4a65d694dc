//! callroom's signaling protocol on Cloudflare Workers: the same HTTP API as callroom-server,
//! with a Durable Object per room holding its peers, queues and long-polls in its own SQLite
//! storage. The modules outside `wasm32` are pure and tested natively.
#![forbid(unsafe_code)]

pub mod config;
pub mod cors;
pub mod error;
pub mod ids;
pub mod signal;
pub mod ticket;

#[cfg(target_arch = "wasm32")]
mod calls;
#[cfg(target_arch = "wasm32")]
mod entry;
#[cfg(target_arch = "wasm32")]
mod http;
#[cfg(target_arch = "wasm32")]
mod room;
