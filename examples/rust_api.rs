//! The Rust API as an app uses it (mirrors README "Use it from Rust"). Compiled for wasm32 by
//! `cargo xtask test` (clippy), so the README example cannot rot.

#[cfg(target_arch = "wasm32")]
mod call {
    use std::pin::Pin;

    use callroom::{JoinOptions, Room, RoomEvent};
    use futures_core::Stream;

    pub async fn call() -> Result<(), callroom::Error> {
        let mut options = JoinOptions::new("standup");
        options.server = "http://127.0.0.1:8080".into();
        options.name = "Ann".into();
        let room = Room::join(options).await?;
        let snapshot = room.snapshot(); // connection_state, remote_streams, participants, ...
        let _others = snapshot.participants.len();

        let mut events = room.events(); // a futures Stream; with futures-util: events.next().await
        while let Some(event) = std::future::poll_fn(|cx| Pin::new(&mut events).poll_next(cx)).await
        {
            match event {
                RoomEvent::Track { peer_id, stream } => {
                    // Attach `stream` to a <video> for `peer_id`.
                    let _ = (peer_id, stream);
                }
                RoomEvent::ParticipantLeft { .. } => break,
                _ => {}
            }
        }
        room.set_mic_enabled(false);
        room.leave().await;
        Ok(())
    }
}

fn main() {
    #[cfg(target_arch = "wasm32")]
    wasm_bindgen_futures::spawn_local(async {
        let _ = call::call().await;
    });
}
