#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod core;
pub mod error;
#[cfg(target_arch = "wasm32")]
pub mod js;
#[cfg(target_arch = "wasm32")]
mod js_error;
pub mod media;
pub mod room;
#[cfg(target_arch = "wasm32")]
mod web;

#[cfg(all(feature = "small-alloc", target_arch = "wasm32"))]
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

pub use callroom_protocol as protocol;
pub use error::Error;
pub use room::JoinOptions;
#[cfg(target_arch = "wasm32")]
pub use room::{Events, RemoteStream, Room, RoomEvent, Snapshot, Subscription};

/// The library's version, as published to crates.io and npm.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
