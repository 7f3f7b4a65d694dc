//! Browser tests of `Room` against a real callroom-server (started by `cargo xtask test`,
//! which passes its URL at compile time). Real headless Chromium, fake camera and microphone.
#![cfg(target_arch = "wasm32")]

use callroom::core::roster::ConnectionState;
use callroom::media::{MediaRequest, TrackRequest};
use callroom::{JoinOptions, Room, Snapshot};
use callroom_protocol::Role;
use gloo_timers::future::TimeoutFuture;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

fn server() -> String {
    match option_env!("CALLROOM_TEST_SERVER") {
        Some(url) => url.to_owned(),
        None => panic!("run the browser tests through `cargo xtask test`, which starts the server"),
    }
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", (js_sys::Math::random() * 1e12) as u64)
}

fn options(room: &str, name: &str, role: Role, publish: bool) -> JoinOptions {
    let mut o = JoinOptions::new(room);
    o.server = server();
    o.name = name.into();
    o.role = role;
    o.stats_interval_ms = 1_000;
    o.poll_wait_ms = 10_000;
    o.media = publish.then_some(MediaRequest {
        audio: TrackRequest::Any,
        video: TrackRequest::Any,
    });
    o
}

async fn join(room: &str, name: &str, role: Role, publish: bool) -> Room {
    Room::join(options(room, name, role, publish))
        .await
        .unwrap_or_else(|e| panic!("{name} could not join: {e}"))
}

/// Polls `check` every 100 ms for up to `ms`; true as soon as it holds.
async fn eventually(ms: u32, mut check: impl FnMut() -> bool) -> bool {
    for _ in 0..(ms / 100) {
        if check() {
            return true;
        }
        TimeoutFuture::new(100).await;
    }
    check()
}

fn frames_from(snapshot: &Snapshot, peer: &str) -> f64 {
    snapshot
        .remote_streams
        .iter()
        .find(|r| r.peer_id == peer)
        .map_or(0.0, |r| r.frames_decoded)
}

fn id(room: &Room) -> String {
    room.snapshot().session_id.expect("joined")
}

#[wasm_bindgen_test]
async fn two_rooms_in_one_page_decode_each_others_video() {
    let name = unique("mesh");
    let a = join(&name, "Ann", Role::Peer, true).await;
    let b = join(&name, "Bob", Role::Peer, true).await;
    let (a_id, b_id) = (id(&a), id(&b));
    assert!(
        eventually(30_000, || frames_from(&a.snapshot(), &b_id) > 0.0
            && frames_from(&b.snapshot(), &a_id) > 0.0)
        .await,
        "both sides decode video: a sees {:?}, b sees {:?}",
        a.snapshot().remote_streams,
        b.snapshot().remote_streams
    );
    let snap = a.snapshot();
    assert_eq!(snap.connection_state.as_str(), "connected");
    assert_eq!(snap.participants.len(), 1);
    assert_eq!(snap.participants[0].name, "Bob");
    assert_eq!(snap.remote_streams[0].name, "Bob");
    assert_eq!(
        snap.remote_streams[0].stream.get_tracks().length(),
        2,
        "Bob's stream carries his camera and microphone"
    );
    assert!(
        snap.remote_streams[0].quality.is_some(),
        "quality is measured"
    );
    a.leave().await;
    b.leave().await;
}

#[wasm_bindgen_test]
async fn a_hub_host_decodes_both_guests_and_guests_link_only_to_the_host() {
    let name = unique("hub");
    let host = join(&name, "Host", Role::Host, false).await;
    let g1 = join(&name, "G1", Role::Guest, true).await;
    let g2 = join(&name, "G2", Role::Guest, true).await;
    let (g1_id, g2_id) = (id(&g1), id(&g2));
    assert!(
        eventually(30_000, || {
            let s = host.snapshot();
            frames_from(&s, &g1_id) > 0.0 && frames_from(&s, &g2_id) > 0.0
        })
        .await,
        "host decodes both guests: {:?}",
        host.snapshot().remote_streams
    );
    assert_eq!(host.snapshot().topology.map(|t| t.as_str()), Some("hub"));
    let g1_snapshot = g1.snapshot();
    assert_eq!(
        g1_snapshot.remote_streams.len(),
        1,
        "a guest links only to the host"
    );
    assert_eq!(g1_snapshot.participants.len(), 2, "but sees everyone");
    for room in [host, g1, g2] {
        room.leave().await;
    }
}

#[wasm_bindgen_test]
async fn leave_empties_the_other_sides_remote_streams_at_once() {
    let name = unique("leave");
    let a = join(&name, "A", Role::Peer, true).await;
    let b = join(&name, "B", Role::Peer, true).await;
    let b_id = id(&b);
    assert!(eventually(30_000, || frames_from(&a.snapshot(), &b_id) > 0.0).await);
    b.leave().await;
    assert_eq!(b.snapshot().connection_state.as_str(), "disconnected");
    assert!(
        eventually(10_000, || a.snapshot().remote_streams.is_empty()
            && a.snapshot().participants.is_empty())
        .await,
        "a forgot b: {:?}",
        a.snapshot().remote_streams
    );
    a.leave().await;
}

#[wasm_bindgen_test]
async fn camera_off_stops_video_in_the_stats_and_camera_on_resumes_it_without_renegotiation() {
    record_page_resources();
    let name = unique("camera");
    let a = join(&name, "A", Role::Peer, true).await;
    let b = join(&name, "B", Role::Peer, true).await;
    let a_id = id(&a);
    assert!(eventually(30_000, || frames_from(&b.snapshot(), &a_id) > 0.0).await);
    let negotiated = descriptions_set();
    assert!(
        negotiated >= 2,
        "the call's own offer and answer are counted ({negotiated})"
    );

    a.set_mic_enabled(false);
    let local = a.snapshot().local_stream.expect("publishing");
    let mic: web_sys::MediaStreamTrack = local.get_audio_tracks().get(0).unchecked_into();
    assert!(!mic.enabled(), "mute disables the track");
    assert!(!a.snapshot().mic_enabled);

    a.set_camera_enabled(false).await.expect("camera off");
    assert!(!a.snapshot().camera_enabled);
    let now_local = a.snapshot().local_stream.expect("still publishing audio");
    assert_eq!(now_local.id(), local.id(), "same stream");
    assert_eq!(
        now_local.get_video_tracks().length(),
        0,
        "the camera is released (snapshot)"
    );
    assert_eq!(
        local.get_video_tracks().length(),
        0,
        "the camera is released"
    );
    TimeoutFuture::new(2_500).await; // let frames in flight drain and stats refresh
    let frozen = frames_from(&b.snapshot(), &a_id);
    TimeoutFuture::new(3_000).await;
    assert_eq!(
        frames_from(&b.snapshot(), &a_id),
        frozen,
        "no new frames while the camera is off"
    );

    a.set_camera_enabled(true).await.expect("camera on");
    assert!(
        eventually(15_000, || frames_from(&b.snapshot(), &a_id) > frozen).await,
        "frames flow again"
    );
    assert_eq!(b.snapshot().connection_state.as_str(), "connected");
    assert_eq!(
        descriptions_set(),
        negotiated,
        "mute, camera off and camera on set no new offer or answer"
    );
    a.leave().await;
    b.leave().await;
}

#[wasm_bindgen_test]
async fn switching_camera_keeps_the_call_up() {
    let name = unique("switch");
    let a = join(&name, "A", Role::Peer, true).await;
    let b = join(&name, "B", Role::Peer, true).await;
    let a_id = id(&a);
    assert!(eventually(30_000, || frames_from(&b.snapshot(), &a_id) > 0.0).await);
    let before = a.snapshot().local_stream.unwrap().get_video_tracks().get(0);
    a.switch_camera(None).await.expect("switch camera");
    let after = a.snapshot().local_stream.unwrap().get_video_tracks().get(0);
    assert_ne!(before, after, "a new camera track");
    let seen = frames_from(&b.snapshot(), &a_id);
    assert!(
        eventually(15_000, || frames_from(&b.snapshot(), &a_id) > seen).await,
        "video keeps flowing"
    );
    a.leave().await;
    b.leave().await;
}

/// Joins as a bare HTTP client, to send what a broken or hostile peer might.
async fn raw_join(room: &str) -> (String, String) {
    let body = format!(r#"{{"type":"join","room":"{room}","role":"peer","name":"raw"}}"#);
    let json = fetch_json("/signaling", None, &body).await;
    (
        js_sys::Reflect::get(&json, &"peerId".into())
            .unwrap()
            .as_string()
            .unwrap(),
        js_sys::Reflect::get(&json, &"token".into())
            .unwrap()
            .as_string()
            .unwrap(),
    )
}

async fn fetch_json(path: &str, token: Option<&str>, body: &str) -> JsValue {
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    init.set_body(&JsValue::from_str(body));
    let headers = web_sys::Headers::new().unwrap();
    headers.set("content-type", "application/json").unwrap();
    if let Some(token) = token {
        headers
            .set("authorization", &format!("Bearer {token}"))
            .unwrap();
    }
    init.set_headers(&headers);
    let window = web_sys::window().unwrap();
    let response: web_sys::Response =
        JsFuture::from(window.fetch_with_str_and_init(&format!("{}{path}", server()), &init))
            .await
            .unwrap()
            .unchecked_into();
    JsFuture::from(response.json().unwrap()).await.unwrap()
}

#[wasm_bindgen_test]
async fn malformed_messages_from_the_network_are_protocol_errors_and_the_room_keeps_working() {
    let name = unique("garbage");
    let a = join(&name, "A", Role::Peer, true).await;
    let a_id = id(&a);
    let (_raw_id, raw_token) = raw_join(&name).await;
    for body in [
        format!(
            r#"{{"type":"offer","to":"{a_id}","payload":{{"type":"offer","sdp":"this is not SDP"}}}}"#
        ),
        format!(r#"{{"type":"answer","to":"{a_id}","payload":42}}"#),
        format!(r#"{{"type":"candidate","to":"{a_id}","payload":{{"nope":true}}}}"#),
    ] {
        fetch_json("/signaling", Some(&raw_token), &body).await;
    }
    assert!(
        eventually(10_000, || a
            .snapshot()
            .error
            .is_some_and(|e| e.code() == "protocol_error"))
        .await,
        "a reports protocol_error: {:?}",
        a.snapshot().error
    );
    // Still working: a newcomer connects and video flows both ways.
    let b = join(&name, "B", Role::Peer, true).await;
    let b_id = id(&b);
    assert!(
        eventually(30_000, || frames_from(&a.snapshot(), &b_id) > 0.0
            && frames_from(&b.snapshot(), &a_id) > 0.0)
        .await,
        "the room still connects after garbage"
    );
    a.leave().await;
    b.leave().await;
}

#[wasm_bindgen_test]
async fn a_join_the_server_refuses_fails_with_the_servers_code() {
    let name = unique("refused");
    let a = join(&name, "A", Role::Peer, false).await;
    let err = Room::join(options(&name, "H", Role::Host, false))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "role_mismatch");
    let mut bad = options(&name, "X", Role::Peer, false);
    bad.server = "http://127.0.0.1:9".into(); // nothing listens on the discard port
    assert_eq!(Room::join(bad).await.unwrap_err().code(), "network_error");
    a.leave().await;
}

/// Records every peer connection and captured track the page creates, by wrapping the real
/// constructors (the calls still go to the browser).
fn record_page_resources() {
    let install = js_sys::Function::new_no_args(
        r#"
        if (window.__callroomRecorded) return;
        const pcs = [], tracks = [], screens = [], requests = [];
        window.__callroomRecorded = { pcs, tracks, screens, requests };
        // "METHOD path status" of every request the page made.
        const realFetch = window.fetch.bind(window);
        window.fetch = async (input, init) => {
            const response = await realFetch(input, init);
            const url = new URL(typeof input === "string" ? input : input.url, location.href);
            const method = (init && init.method) || (typeof input === "string" ? "GET" : input.method);
            requests.push(`${method} ${url.pathname} ${response.status}`);
            return response;
        };
        const Real = window.RTCPeerConnection;
        window.RTCPeerConnection = class extends Real {
            constructor(...args) { super(...args); this.descriptionsSet = 0; pcs.push(this); }
            // Every offer and answer goes through here: a count that does not move means no
            // renegotiation happened.
            setLocalDescription(...args) { this.descriptionsSet++; return super.setLocalDescription(...args); }
        };
        const gdm = navigator.mediaDevices.getDisplayMedia.bind(navigator.mediaDevices);
        navigator.mediaDevices.getDisplayMedia = async (c) => {
            const s = await gdm(c);
            screens.push(...s.getTracks());
            return s;
        };
        const gum = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
        navigator.mediaDevices.getUserMedia = async (c) => {
            const s = await gum(c);
            tracks.push(...s.getTracks());
            return s;
        };
        // Cloned streams and tracks hold devices open too.
        const cloneStream = MediaStream.prototype.clone;
        MediaStream.prototype.clone = function () {
            const s = cloneStream.call(this);
            tracks.push(...s.getTracks());
            return s;
        };
        const cloneTrack = MediaStreamTrack.prototype.clone;
        MediaStreamTrack.prototype.clone = function () {
            const t = cloneTrack.call(this);
            tracks.push(t);
            return t;
        };
        "#,
    );
    install.call0(&JsValue::NULL).unwrap();
}

fn live_resources() -> (u32, u32, u32) {
    let count = js_sys::Function::new_no_args(
        r#"
        const { pcs, tracks } = window.__callroomRecorded;
        return [pcs.length,
                pcs.filter(pc => pc.signalingState !== "closed").length,
                tracks.filter(t => t.readyState === "live").length];
        "#,
    );
    let result: js_sys::Array = count.call0(&JsValue::NULL).unwrap().unchecked_into();
    let n = |i| result.get(i).as_f64().unwrap() as u32;
    (n(0), n(1), n(2))
}

/// "METHOD path status" of every request the page made since `record_page_resources`.
fn requests_made() -> Vec<String> {
    let list = js_sys::Function::new_no_args("return window.__callroomRecorded.requests;");
    let result: js_sys::Array = list.call0(&JsValue::NULL).unwrap().unchecked_into();
    result.iter().filter_map(|v| v.as_string()).collect()
}

/// Offers and answers set so far on every peer connection the page made (closed ones too,
/// so a rebuilt connection counts as renegotiation).
fn descriptions_set() -> u32 {
    let count = js_sys::Function::new_no_args(
        r#"
        return window.__callroomRecorded.pcs.reduce((n, pc) => n + pc.descriptionsSet, 0);
        "#,
    );
    count.call0(&JsValue::NULL).unwrap().as_f64().unwrap() as u32
}

/// What the page's open peer connections send as video: "screen" or "camera:<track id>".
fn video_senders() -> Vec<String> {
    let list = js_sys::Function::new_no_args(
        r#"
        const { pcs, screens } = window.__callroomRecorded;
        return pcs.filter(pc => pc.signalingState !== "closed")
            .flatMap(pc => pc.getSenders())
            .filter(s => s.track && s.track.kind === "video")
            .map(s => screens.includes(s.track) ? "screen" : "camera:" + s.track.id);
        "#,
    );
    let result: js_sys::Array = list.call0(&JsValue::NULL).unwrap().unchecked_into();
    result.iter().filter_map(|v| v.as_string()).collect()
}

#[wasm_bindgen_test]
async fn repeated_join_and_leave_leaves_no_connection_or_track_alive() {
    record_page_resources();
    let (created_before, _, _) = live_resources();
    for cycle in 0..4 {
        let name = unique("cycle");
        let a = join(&name, "A", Role::Peer, true).await;
        let b = join(&name, "B", Role::Peer, true).await;
        let b_id = id(&b);
        assert!(
            eventually(30_000, || frames_from(&a.snapshot(), &b_id) > 0.0).await,
            "cycle {cycle} connects"
        );
        // Snapshots are taken the way a UI takes them, many times.
        for _ in 0..5 {
            assert!(a.snapshot().local_stream.is_some());
        }
        a.leave().await;
        drop(b); // dropping without leave() must clean up too
        drop(a);
    }
    let (created, open, live_tracks) = live_resources();
    assert!(
        created - created_before >= 8,
        "the cycles really made connections ({created})"
    );
    assert_eq!(open, 0, "every peer connection is closed");
    assert_eq!(live_tracks, 0, "every captured track is stopped");
}

fn restartable() -> (String, String) {
    match (
        option_env!("CALLROOM_TEST_RESTARTABLE_SERVER"),
        option_env!("CALLROOM_TEST_CONTROL"),
    ) {
        (Some(server), Some(control)) => (server.to_owned(), control.to_owned()),
        _ => panic!("run the browser tests through `cargo xtask test`"),
    }
}

/// Stops or starts the restartable server (through the test runner's control endpoint).
async fn control(path: &str) {
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    let url = format!("{}{path}", restartable().1);
    let response: web_sys::Response = JsFuture::from(
        web_sys::window()
            .unwrap()
            .fetch_with_str_and_init(&url, &init),
    )
    .await
    .expect("control endpoint reachable")
    .unchecked_into();
    assert!(response.ok(), "control {path} failed");
}

/// Joins the SFU room `room`.
async fn join_sfu(room: &str, who: &str, publish: bool) -> Room {
    let mut o = options(room, who, Role::Peer, publish);
    o.topology = Some(callroom_protocol::Topology::Sfu);
    Room::join(o)
        .await
        .unwrap_or_else(|e| panic!("{who} could not join: {e}"))
}

/// Joins `room` on the restartable server, retrying at most a second apart.
async fn join_restartable(room: &str, who: &str) -> Room {
    let mut o = options(room, who, Role::Peer, true);
    o.server = restartable().0;
    o.retry_max_ms = 1_000;
    Room::join(o)
        .await
        .unwrap_or_else(|e| panic!("{who} could not join: {e}"))
}

#[wasm_bindgen_test]
async fn a_server_that_lost_its_state_answers_unauthorized_and_the_room_rejoins_as_a_new_peer() {
    let name = unique("amnesia");
    let a = join_restartable(&name, "A").await;
    let b = join_restartable(&name, "B").await;
    let (a_id, b_id) = (id(&a), id(&b));
    assert!(eventually(30_000, || frames_from(&a.snapshot(), &b_id) > 0.0).await);

    control("/stop").await;
    control("/start-empty").await;
    // The old tokens now get `401 unauthorized`: each room joins anew, as a new peer, and
    // the two connect again through the new sessions.
    assert!(
        eventually(20_000, || {
            let (sa, sb) = (a.snapshot(), b.snapshot());
            let (na, nb) = (
                sa.session_id.clone().unwrap_or_default(),
                sb.session_id.clone().unwrap_or_default(),
            );
            na != a_id && nb != b_id && frames_from(&sa, &nb) > 0.0 && frames_from(&sb, &na) > 0.0
        })
        .await,
        "both rejoined with new sessions and decode each other: a {:?}, b {:?}",
        a.snapshot().remote_streams,
        b.snapshot().remote_streams
    );
    let s = a.snapshot();
    assert_eq!(s.connection_state.as_str(), "connected");
    assert_eq!(s.participants.len(), 1, "the old session of b is gone");
    assert!(s.error.is_none(), "a rejoin is not an error: {:?}", s.error);
    a.leave().await;
    b.leave().await;
}

#[wasm_bindgen_test]
async fn a_server_restart_mid_call_shows_reconnecting_keeps_media_and_resumes_signaling() {
    let name = unique("restart");
    let a = join_restartable(&name, "A").await;
    let b = join_restartable(&name, "B").await;
    let (a_id, b_id) = (id(&a), id(&b));
    assert!(
        eventually(30_000, || frames_from(&a.snapshot(), &b_id) > 0.0
            && frames_from(&b.snapshot(), &a_id) > 0.0)
        .await
    );

    control("/stop").await;
    assert!(
        eventually(15_000, || a.snapshot().connection_state.as_str()
            == "reconnecting"
            && b.snapshot().connection_state.as_str() == "reconnecting")
        .await,
        "both show reconnecting: {:?}",
        a.snapshot().connection_state
    );
    let during = frames_from(&b.snapshot(), &a_id);
    assert!(
        eventually(10_000, || frames_from(&b.snapshot(), &a_id) > during).await,
        "media keeps flowing on the existing connection while the server is down"
    );

    control("/start").await;
    // Retries back off to at most 1 s here, and the first answer after that clears the state.
    assert!(
        eventually(5_000, || a.snapshot().connection_state.as_str()
            == "connected"
            && b.snapshot().connection_state.as_str() == "connected")
        .await,
        "both are connected again"
    );
    assert_eq!(
        a.snapshot().session_id.as_deref(),
        Some(a_id.as_str()),
        "the same session resumed"
    );

    // Signaling works after the restart: a newcomer reaches both.
    // (C joins after the restart.)
    let c = join_restartable(&name, "C").await;
    let c_id = id(&c);
    assert!(
        eventually(30_000, || {
            let cs = c.snapshot();
            frames_from(&cs, &a_id) > 0.0
                && frames_from(&cs, &b_id) > 0.0
                && frames_from(&a.snapshot(), &c_id) > 0.0
                && frames_from(&b.snapshot(), &c_id) > 0.0
        })
        .await,
        "the newcomer and the others decode each other"
    );
    for room in [a, b, c] {
        room.leave().await;
    }
}

#[wasm_bindgen_test]
async fn screen_share_replaces_the_camera_and_stopping_restores_it_with_the_call_up() {
    record_page_resources();
    let name = unique("screen");
    let a = join(&name, "A", Role::Peer, true).await;
    let b = join(&name, "B", Role::Peer, false).await;
    let a_id = id(&a);
    assert!(eventually(30_000, || frames_from(&b.snapshot(), &a_id) > 0.0).await);
    let camera = a.snapshot().local_stream.unwrap().get_video_tracks().get(0);
    let camera: web_sys::MediaStreamTrack = camera.unchecked_into();
    let camera_sender = format!("camera:{}", camera.id());
    assert_eq!(
        video_senders(),
        std::slice::from_ref(&camera_sender),
        "before: a's one video sender carries the camera"
    );
    a.start_screen_share().await.expect("screen share starts");
    assert!(a.snapshot().screen_sharing);
    assert_eq!(
        video_senders(),
        ["screen"],
        "the video sender carries the screen track"
    );
    let seen = frames_from(&b.snapshot(), &a_id);
    assert!(
        eventually(15_000, || frames_from(&b.snapshot(), &a_id) > seen).await,
        "b keeps decoding while a shares"
    );
    a.stop_screen_share().await;
    assert!(!a.snapshot().screen_sharing);
    assert_eq!(
        video_senders(),
        [camera_sender],
        "the camera is back on the sender"
    );
    let seen = frames_from(&b.snapshot(), &a_id);
    assert!(
        eventually(15_000, || frames_from(&b.snapshot(), &a_id) > seen).await,
        "the camera flows again"
    );
    assert_eq!(b.snapshot().connection_state.as_str(), "connected");
    a.leave().await;
    b.leave().await;
}

#[wasm_bindgen_test]
async fn a_camera_that_ends_on_its_own_falls_back_to_another_and_says_so() {
    let name = unique("unplug");
    let a = join(&name, "A", Role::Peer, true).await;
    let b = join(&name, "B", Role::Peer, true).await;
    let a_id = id(&a);
    assert!(eventually(30_000, || frames_from(&b.snapshot(), &a_id) > 0.0).await);
    let old: web_sys::MediaStreamTrack = a
        .snapshot()
        .local_stream
        .unwrap()
        .get_video_tracks()
        .get(0)
        .unchecked_into();
    // Fake devices cannot be unplugged; the browser signals an unplugged device with `ended`.
    old.dispatch_event(&web_sys::Event::new("ended").unwrap())
        .unwrap();
    assert!(
        eventually(10_000, || a
            .snapshot()
            .error
            .is_some_and(|e| e.code() == "device_lost"))
        .await,
        "the snapshot says the camera was lost: {:?}",
        a.snapshot().error
    );
    let new = a.snapshot().local_stream.unwrap().get_video_tracks().get(0);
    assert_ne!(
        JsValue::from(old),
        new,
        "a new camera track replaced the old one"
    );
    let seen = frames_from(&b.snapshot(), &a_id);
    assert!(
        eventually(15_000, || frames_from(&b.snapshot(), &a_id) > seen).await,
        "video flows from the new camera"
    );
    a.leave().await;
    b.leave().await;
}

#[wasm_bindgen_test]
async fn devicechange_updates_the_snapshots_device_list() {
    let name = unique("devices");
    let a = join(&name, "A", Role::Peer, true).await;
    assert!(
        a.snapshot().devices.is_empty(),
        "not listed until asked or changed"
    );
    let devices = js_sys::Reflect::get(
        &web_sys::window().unwrap().navigator(),
        &"mediaDevices".into(),
    )
    .unwrap();
    devices
        .unchecked_ref::<web_sys::EventTarget>()
        .dispatch_event(&web_sys::Event::new("devicechange").unwrap())
        .unwrap();
    assert!(
        eventually(5_000, || a
            .snapshot()
            .devices
            .iter()
            .any(|d| d.kind == "videoinput"))
        .await,
        "the fake camera is listed after devicechange"
    );
    a.leave().await;
}

#[wasm_bindgen_test]
async fn reconnect_rejoins_with_a_new_session_and_the_call_comes_back() {
    let name = unique("rejoin");
    let a = join(&name, "A", Role::Peer, true).await;
    let b = join(&name, "B", Role::Peer, true).await;
    let (a_id, b_id) = (id(&a), id(&b));
    assert!(eventually(30_000, || frames_from(&b.snapshot(), &a_id) > 0.0).await);
    a.reconnect().expect("reconnect");
    assert!(
        eventually(10_000, || a.snapshot().connection_state.as_str()
            == "connected"
            && a.snapshot().session_id.as_deref() != Some(a_id.as_str()))
        .await,
        "a has a new session"
    );
    let new_a = id(&a);
    assert!(
        eventually(30_000, || frames_from(&b.snapshot(), &new_a) > 0.0
            && frames_from(&a.snapshot(), &b_id) > 0.0)
        .await,
        "video flows both ways again"
    );
    assert!(
        eventually(5_000, || b
            .snapshot()
            .remote_streams
            .iter()
            .all(|r| r.peer_id != a_id))
        .await,
        "b dropped a's old session at once"
    );
    assert_eq!(b.snapshot().participants.len(), 1);
    a.leave().await;
    b.leave().await;
}

#[wasm_bindgen_test]
async fn a_host_replaced_by_another_host_stops_instead_of_fighting_back() {
    let name = unique("twohosts");
    let first = join(&name, "Host 1", Role::Host, false).await;
    let guest = join(&name, "Guest", Role::Guest, true).await;
    // The seat of a live host is taken only with proof: the reclaim key the first host keeps
    // in this tab's sessionStorage (so a reload of the host gets its seat back). Without it,
    // another host is refused.
    let stash = js_sys::Function::new_with_args(
        "room",
        "const k = Object.keys(sessionStorage).filter(k => k.startsWith('callroom.reclaim') && k.endsWith(room));
         if (k.length !== 1) return null;
         const v = sessionStorage.getItem(k[0]); sessionStorage.removeItem(k[0]); return [k[0], v];",
    );
    let stashed = stash
        .call1(&JsValue::NULL, &JsValue::from_str(&name))
        .unwrap();
    assert!(
        !stashed.is_null(),
        "the host's reclaim key is kept in sessionStorage"
    );
    let refused = Room::join(options(&name, "Host 2", Role::Host, false))
        .await
        .err()
        .map(|e| e.code().to_owned());
    assert_eq!(refused.as_deref(), Some("host_taken"));
    js_sys::Function::new_with_args("kv", "sessionStorage.setItem(kv[0], kv[1])")
        .call1(&JsValue::NULL, &stashed)
        .unwrap();
    let second = join(&name, "Host 2", Role::Host, false).await;
    let second_id = id(&second);
    assert!(
        eventually(10_000, || first.snapshot().connection_state.as_str()
            == "failed")
        .await,
        "the replaced host stops"
    );
    assert_eq!(
        first
            .snapshot()
            .error
            .map(|e| e.code().to_owned())
            .as_deref(),
        Some("replaced")
    );
    let guest_id = id(&guest);
    assert!(
        eventually(30_000, || frames_from(&second.snapshot(), &guest_id) > 0.0).await,
        "the new host receives the guest"
    );
    // No tug of war: a few seconds later the second host is still the host.
    TimeoutFuture::new(3_000).await;
    assert_eq!(second.snapshot().connection_state.as_str(), "connected");
    assert_eq!(id(&second), second_id);
    assert!(guest
        .snapshot()
        .participants
        .iter()
        .any(|p| p.peer_id == second_id));
    for room in [first, guest, second] {
        room.leave().await;
    }
}

#[wasm_bindgen_test]
async fn a_capture_that_finishes_after_leave_is_stopped_and_rejected() {
    let record = js_sys::Function::new_no_args(
        r#"
        window.__screens = [];
        const real = navigator.mediaDevices.getDisplayMedia.bind(navigator.mediaDevices);
        navigator.mediaDevices.getDisplayMedia = async (c) => {
            const s = await real(c);
            window.__screens.push(...s.getTracks());
            // Like a user taking their time in the picker.
            await new Promise((r) => setTimeout(r, 300));
            return s;
        };
        "#,
    );
    record.call0(&JsValue::NULL).unwrap();
    let name = unique("late");
    let room = std::rc::Rc::new(join(&name, "A", Role::Peer, false).await);
    let result = std::rc::Rc::new(std::cell::RefCell::new(None));
    {
        let (room, result) = (room.clone(), result.clone());
        wasm_bindgen_futures::spawn_local(async move {
            let outcome = room.start_screen_share().await;
            *result.borrow_mut() = Some(outcome);
        });
    }
    TimeoutFuture::new(100).await; // the share call is now waiting for the browser
    room.leave().await;
    assert!(
        eventually(5_000, || result.borrow().is_some()).await,
        "the share call settles"
    );
    let outcome = result.borrow_mut().take().unwrap();
    assert_eq!(
        outcome.map_err(|e| e.code().to_owned()),
        Err("closed".to_owned())
    );
    let counts: js_sys::Array = js_sys::Function::new_no_args(
        "return [window.__screens.length, window.__screens.filter(t => t.readyState === 'live').length]",
    )
    .call0(&JsValue::NULL)
    .unwrap()
    .unchecked_into();
    assert_eq!(
        counts.get(0).as_f64(),
        Some(1.0),
        "a screen really was captured, late"
    );
    assert_eq!(counts.get(1).as_f64(), Some(0.0), "and it was stopped");
    assert!(!room.snapshot().screen_sharing);
}

#[wasm_bindgen_test]
async fn two_rooms_call_through_the_rooms_sfu_with_one_connection_each() {
    record_page_resources();
    let (created_before, _, _) = live_resources();
    let name = unique("sfu");
    let a = join_sfu(&name, "A", true).await;
    let b = join_sfu(&name, "B", true).await;
    let (a_id, b_id) = (id(&a), id(&b));
    assert_eq!(a.snapshot().topology.map(|t| t.as_str()), Some("sfu"));
    assert!(
        eventually(30_000, || frames_from(&a.snapshot(), &b_id) > 0.0
            && frames_from(&b.snapshot(), &a_id) > 0.0)
        .await,
        "both decode each other through the SFU: a sees {:?} ({:?}), b sees {:?} ({:?})",
        a.snapshot().remote_streams,
        a.snapshot().error,
        b.snapshot().remote_streams,
        b.snapshot().error,
    );
    let (created, _, _) = live_resources();
    assert_eq!(
        created - created_before,
        2,
        "one peer connection per participant, to the SFU"
    );
    let entry = a.snapshot().remote_streams[0].clone();
    assert_eq!(entry.name, "B");
    assert_eq!(
        entry.stream.get_tracks().length(),
        2,
        "b's camera and microphone in one stream"
    );

    // Camera off and on swaps the sent track without a new offer.
    let negotiated = descriptions_set();
    a.set_camera_enabled(false).await.expect("camera off");
    a.set_camera_enabled(true).await.expect("camera on");
    let seen = frames_from(&b.snapshot(), &a_id);
    assert!(
        eventually(15_000, || frames_from(&b.snapshot(), &a_id) > seen).await,
        "a's video flows again"
    );
    assert_eq!(
        descriptions_set(),
        negotiated,
        "no renegotiation for camera off/on"
    );

    b.leave().await;
    assert!(
        eventually(10_000, || a.snapshot().remote_streams.is_empty()).await,
        "b's pulls are closed when it leaves: {:?}",
        a.snapshot().remote_streams
    );
    a.leave().await;
}

#[wasm_bindgen_test]
async fn a_camera_turned_on_after_joining_without_media_reaches_a_peer_who_joins_later() {
    let name = unique("late-camera");
    let a = join(&name, "A", Role::Peer, false).await;
    let b = join(&name, "B", Role::Peer, false).await;
    let a_id = id(&a);
    a.set_camera_enabled(true).await.expect("camera on");
    assert!(
        eventually(20_000, || frames_from(&b.snapshot(), &a_id) > 0.0).await,
        "b, already linked, gets the camera"
    );
    let c = join(&name, "C", Role::Peer, false).await;
    assert!(
        eventually(20_000, || frames_from(&c.snapshot(), &a_id) > 0.0).await,
        "c, linked after the camera came on, gets it too: {:?}",
        c.snapshot().remote_streams
    );
    for room in [a, b, c] {
        room.leave().await;
    }
}

#[wasm_bindgen_test]
async fn a_peer_flooding_candidates_before_its_offer_gets_one_protocol_error_and_no_more_memory() {
    use futures_core::Stream;
    let name = unique("flood");
    let a = join(&name, "A", Role::Peer, false).await;
    let a_id = id(&a);
    let (_raw_id, raw_token) = raw_join(&name).await;
    let padding = "x".repeat(2_000);
    let mut errors = a.events();
    for i in 0..100 {
        let body = format!(
            r#"{{"type":"candidate","to":"{a_id}","payload":{{"candidate":"candidate:{i} 1 udp 1 192.0.2.9 9 typ host {padding}","sdpMid":"0"}}}}"#
        );
        fetch_json("/signaling", Some(&raw_token), &body).await;
    }
    assert!(
        eventually(10_000, || a
            .snapshot()
            .error
            .is_some_and(|e| e.to_string().contains("more ICE candidates")))
        .await,
        "the overflow is reported: {:?}",
        a.snapshot().error
    );
    TimeoutFuture::new(500).await;
    a.leave().await;
    let mut overflow_reports = 0;
    while let Some(event) =
        std::future::poll_fn(|cx| std::pin::Pin::new(&mut errors).poll_next(cx)).await
    {
        if let callroom::RoomEvent::Error(e) = event {
            if e.to_string().contains("more ICE candidates") {
                overflow_reports += 1;
            }
        }
    }
    assert_eq!(overflow_reports, 1, "reported once, then dropped quietly");
}

/// The frame heights of the video the page's open peer connections receive.
async fn received_heights() -> Vec<f64> {
    let read = js_sys::Function::new_no_args(
        r#"
        return (async () => {
            const heights = [];
            for (const pc of window.__callroomRecorded.pcs.filter(pc => pc.signalingState !== "closed")) {
                (await pc.getStats()).forEach(s => {
                    if (s.type === "inbound-rtp" && s.kind === "video" && s.frameHeight) heights.push(s.frameHeight);
                });
            }
            return heights;
        })();
        "#,
    );
    let promise: js_sys::Promise = read.call0(&JsValue::NULL).unwrap().unchecked_into();
    let heights: js_sys::Array = JsFuture::from(promise).await.unwrap().unchecked_into();
    heights.iter().filter_map(|h| h.as_f64()).collect()
}

#[wasm_bindgen_test]
async fn in_an_sfu_room_the_camera_goes_out_in_layers_and_a_small_tile_pulls_a_smaller_one() {
    record_page_resources();
    let name = unique("layers");
    let a = join_sfu(&name, "A", true).await;
    let b = join_sfu(&name, "B", false).await;
    let a_id = id(&a);
    assert!(eventually(30_000, || frames_from(&b.snapshot(), &a_id) > 0.0).await);
    let tallest = tallest_received_until(|h| h >= 480.0).await;
    assert!(tallest >= 480.0, "b first gets the full layer ({tallest})");

    // The fake camera captures 480 lines; Chrome sends such a capture in two layers
    // (480 and 240), so a 200 px tile is served by the half layer.
    b.set_tile_size(&a_id, 267, 200);
    let now = shortest_received_until(|h| h <= 240.0).await;
    assert!(
        now <= 240.0,
        "a 200 px tile gets the half layer ({now} px; b's error: {:?})",
        b.snapshot().error
    );

    b.set_tile_size(&a_id, 640, 480);
    let back = tallest_received_until(|h| h >= 480.0).await;
    assert!(
        back >= 480.0,
        "a large tile gets the full layer again ({back} px)"
    );

    // The app's hint wins over the tile.
    b.set_video_quality(&a_id, callroom::core::layers::Hint::Medium);
    let hinted = shortest_received_until(|h| h <= 240.0).await;
    assert!(
        hinted <= 240.0,
        "\"medium\" gets the half layer ({hinted} px)"
    );

    // The room keeps the hint: the connection made after a rejoin asks for it too.
    let old_b = id(&b);
    b.reconnect().expect("reconnect");
    assert!(
        eventually(15_000, || b.snapshot().session_id.as_deref()
            != Some(old_b.as_str())
            && frames_from(&b.snapshot(), &a_id) > 0.0)
        .await,
        "b rejoined with a new session and gets a's video again"
    );
    assert!(
        eventually(15_000, || b
            .snapshot()
            .remote_streams
            .iter()
            .any(|r| r.peer_id == a_id
                && r.video_layer == Some(callroom::core::layers::Hint::Medium)))
        .await,
        "after the rejoin, the room asks for the hinted layer"
    );
    let rehinted = shortest_received_until(|h| h <= 240.0).await;
    assert!(
        rehinted <= 240.0,
        "after the rejoin, \"medium\" still gets the half layer ({rehinted} px)"
    );
    a.leave().await;
    b.leave().await;
}

/// The tallest video frame received, polled until `done` holds for it (20 s at most).
async fn tallest_received_until(done: impl Fn(f64) -> bool) -> f64 {
    received_until(|heights| heights.iter().copied().fold(0.0, f64::max), done).await
}

/// The shortest video frame received, polled until `done` holds for it (20 s at most).
async fn shortest_received_until(done: impl Fn(f64) -> bool) -> f64 {
    received_until(
        |heights| heights.iter().copied().fold(f64::MAX, f64::min),
        done,
    )
    .await
}

async fn received_until(pick: impl Fn(&[f64]) -> f64, done: impl Fn(f64) -> bool) -> f64 {
    let mut now = 0.0;
    for _ in 0..100 {
        now = pick(&received_heights().await);
        if done(now) {
            break;
        }
        TimeoutFuture::new(200).await;
    }
    now
}

#[wasm_bindgen_test]
async fn in_an_sfu_room_a_screen_goes_out_beside_the_camera_as_a_stream_of_its_own() {
    let name = unique("sfu-screen");
    let a = join_sfu(&name, "A", true).await;
    let b = join_sfu(&name, "B", false).await;
    let a_id = id(&a);
    assert!(eventually(30_000, || frames_from(&b.snapshot(), &a_id) > 0.0).await);
    a.start_screen_share().await.expect("screen share starts");
    let screen_of_a = |b: &Room| {
        b.snapshot()
            .remote_streams
            .into_iter()
            .find(|r| r.peer_id == a_id)
            .and_then(|r| r.screen)
    };
    assert!(
        eventually(30_000, || screen_of_a(&b)
            .is_some_and(|s| s.get_video_tracks().length() == 1))
        .await,
        "b gets a's screen as a stream of its own: {:?} ({:?})",
        b.snapshot().remote_streams,
        a.snapshot().error
    );
    let entry = b.snapshot().remote_streams[0].clone();
    assert_eq!(
        entry.stream.get_video_tracks().length(),
        1,
        "and a's camera beside it"
    );
    let seen = frames_from(&b.snapshot(), &a_id);
    assert!(
        eventually(15_000, || frames_from(&b.snapshot(), &a_id) > seen).await,
        "video keeps flowing"
    );
    a.stop_screen_share().await;
    assert!(
        eventually(15_000, || screen_of_a(&b).is_none()).await,
        "the screen goes when sharing stops"
    );
    a.leave().await;
    b.leave().await;
}

#[wasm_bindgen_test]
async fn in_an_sfu_room_a_camera_off_for_longer_than_the_sfu_keeps_silent_tracks_comes_back() {
    let name = unique("sfu-silent");
    let a = join_sfu(&name, "A", true).await;
    let b = join_sfu(&name, "B", false).await;
    let a_id = id(&a);
    assert!(eventually(30_000, || frames_from(&b.snapshot(), &a_id) > 0.0).await);
    a.set_camera_enabled(false).await.expect("camera off");
    // The SFU removes a pushed track that sent nothing for 30 s.
    TimeoutFuture::new(32_000).await;
    let before = frames_from(&b.snapshot(), &a_id);
    a.set_camera_enabled(true).await.expect("camera on");
    assert!(
        eventually(30_000, || frames_from(&b.snapshot(), &a_id) > before).await,
        "b sees a's camera again: {:?} ({:?})",
        b.snapshot().remote_streams,
        a.snapshot().error
    );
    a.leave().await;
    b.leave().await;
}

#[wasm_bindgen_test]
async fn an_sfu_call_comes_back_by_itself_after_the_server_and_its_sfu_restart() {
    record_page_resources();
    let name = unique("sfu-restart");
    let join_sfu = |who: &'static str| {
        let mut o = options(&name, who, Role::Peer, true);
        o.server = restartable().0;
        o.retry_max_ms = 1_000;
        o.topology = Some(callroom_protocol::Topology::Sfu);
        Room::join(o)
    };
    let a = std::rc::Rc::new(join_sfu("A").await.expect("A joins"));
    let b = join_sfu("B").await.expect("B joins");
    let (a_id, b_id) = (id(&a), id(&b));
    assert!(
        eventually(30_000, || frames_from(&a.snapshot(), &b_id) > 0.0
            && frames_from(&b.snapshot(), &a_id) > 0.0)
        .await
    );
    // Every state A shows from the restart on, beside its SFU connection's state then.
    let shown = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let _watch = {
        let (room, shown) = (std::rc::Rc::downgrade(&a), shown.clone());
        a.on_change(move || {
            if let Some(room) = room.upgrade() {
                let s = room.snapshot();
                let sfu = s.remote_streams.first().map(|r| r.connection_state.clone());
                shown.borrow_mut().push((s.connection_state, sfu));
            }
        })
    };
    let (connections_before, _, _) = live_resources();
    control("/stop").await;
    control("/start").await;
    let restarted = js_sys::Date::now();
    // The SFU's sessions died with it: each side rebuilds its connection to the SFU (a new
    // peer connection and session), pushes and pulls again.
    assert!(
        eventually(60_000, || live_resources().0 >= connections_before + 2).await,
        "both rebuilt their SFU connection"
    );
    let mut flowing = false;
    for _ in 0..30 {
        let before = (
            frames_from(&a.snapshot(), &b_id),
            frames_from(&b.snapshot(), &a_id),
        );
        TimeoutFuture::new(1_500).await;
        let after = (
            frames_from(&a.snapshot(), &b_id),
            frames_from(&b.snapshot(), &a_id),
        );
        if after.0 > before.0 + 5.0 && after.1 > before.1 + 5.0 {
            flowing = true;
            break;
        }
    }
    assert!(
        flowing,
        "media flows again both ways: a {:?} ({:?}), b {:?}",
        a.snapshot().remote_streams,
        a.snapshot().error,
        b.snapshot().remote_streams
    );
    wasm_bindgen_test::console_log!(
        "sfu media back within {:.0} ms of the restart",
        js_sys::Date::now() - restarted
    );
    assert_eq!(
        a.snapshot().session_id.as_deref(),
        Some(a_id.as_str()),
        "signaling resumed the same session"
    );
    // Signaling came back first and asked whether the SFU session survived the restart: it
    // had not (410), so the SFU connection was rebuilt then, not after ICE noticed.
    let requests = requests_made();
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with("GET /sfu/sessions/") && r.ends_with(" 410")),
        "the session was checked after signaling came back: {requests:?}"
    );
    // Signaling is back long before the new SFU connection is: the room shows `reconnecting`
    // until its media is back, never `connected` over a lost or new SFU connection.
    assert!(
        eventually(10_000, || a.snapshot().connection_state
            == ConnectionState::Connected)
        .await
    );
    let shown = shown.take();
    let lost = |sfu: &Option<String>| sfu.as_deref().is_some_and(|s| s != "connected");
    assert!(
        shown
            .iter()
            .any(|(state, sfu)| *state == ConnectionState::Reconnecting && lost(sfu)),
        "reconnecting while the SFU connection was down: {shown:?}"
    );
    assert!(
        !shown
            .iter()
            .any(|(state, sfu)| *state == ConnectionState::Connected && lost(sfu)),
        "connected shown over a lost SFU connection: {shown:?}"
    );
    a.leave().await;
    b.leave().await;
}
