//! A call: join a room and its state (who is here, their streams, how each connection is
//! doing) updates by itself, survives network trouble, and is cleaned up completely on leave.
//!
//! | file | job |
//! | --- | --- |
//! | `api.rs` | `Room`, the Rust API; hands each call to the file below that owns it |
//! | `state.rs` | the state container and change publication (snapshots never go stale) |
//! | `signaling.rs` | join, rejoin and reconnect, the poll loop, the outbox, leave |
//! | `plane.rs` | the media-plane seam between the room and its connections |
//! | `peers.rs` | the mesh and hub plane: one connection per linked pair |
//! | `sfu.rs` | the SFU plane: one connection to the room's SFU through the Calls proxy |
//! | `local.rs` | local media: publish, mute, camera, fallback, screen share, devices |
//! | `ticker.rs` | the once-a-second tick (recovery and quality) and the audio levels |
//! | `notify.rs` | change callbacks and event streams |
//! | `types.rs` | what apps read: `Snapshot`, `RemoteStream`, `RoomEvent` |
//! | `options.rs` | `JoinOptions` and their validation |

mod options;
pub use options::JoinOptions;

#[cfg(target_arch = "wasm32")]
mod api;
#[cfg(target_arch = "wasm32")]
mod local;
#[cfg(target_arch = "wasm32")]
mod notify;
#[cfg(target_arch = "wasm32")]
mod peers;
#[cfg(target_arch = "wasm32")]
mod plane;
#[cfg(target_arch = "wasm32")]
mod sfu;
#[cfg(target_arch = "wasm32")]
mod signaling;
#[cfg(target_arch = "wasm32")]
mod state;
#[cfg(target_arch = "wasm32")]
mod ticker;
#[cfg(target_arch = "wasm32")]
mod types;

#[cfg(target_arch = "wasm32")]
pub use api::Room;
#[cfg(target_arch = "wasm32")]
pub use notify::{Events, Subscription};
#[cfg(target_arch = "wasm32")]
pub(crate) use state::Shared;
#[cfg(target_arch = "wasm32")]
pub use types::{RecordingStatus, RemoteStream, RoomEvent, Snapshot};
