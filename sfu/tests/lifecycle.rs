//! Track and session lifetimes: closing, idle cleanup, SFU-offered pushes, panic isolation.

mod common;

use std::time::Duration;

use callroom_sfu::calls::{
    CloseTrackObject, CloseTracksRequest, Location, SessionDescription, TrackObject, TrackStatus,
    TracksRequest,
};
use callroom_sfu::{codes, CloseReason, SfuEvent, TrackRemovedReason};
use common::World;
use str0m::change::{SdpAnswer, SdpOffer};
use str0m::media::MediaKind;

const SECOND: Duration = Duration::from_secs(1);

fn removed(w: &World, c: usize, track: &str, reason: TrackRemovedReason) -> bool {
    w.events.contains(&SfuEvent::TrackRemoved {
        session_id: w.clients[c].session_id.clone(),
        track_name: track.into(),
        reason,
    })
}

fn closed(w: &World, c: usize, reason: CloseReason) -> bool {
    w.events.contains(&SfuEvent::SessionClosed {
        session_id: w.clients[c].session_id.clone(),
        reason,
    })
}

#[test]
fn a_track_without_packets_for_30_seconds_is_removed() {
    let mut w = World::new();
    w.max_step = Duration::from_millis(50);
    let a = w.add_client();
    let b = w.add_client();
    let (_, mids) = w.push(a, &[("cam", MediaKind::Video, &[])]);
    w.pull(b, a, "cam", None);
    w.run_until(5 * SECOND, "both connected", |w| {
        w.connected(a) && w.connected(b)
    });
    w.stream_video(a, mids[0], &[], 1000, SECOND);
    assert!(!w.clients[b].frames.is_empty());

    // The camera stops; the connection stays up.
    w.run_for(25 * SECOND);
    assert!(
        !removed(&w, a, "cam", TrackRemovedReason::NoPackets),
        "not before 30 s"
    );
    w.run_for(6 * SECOND);
    assert!(removed(&w, a, "cam", TrackRemovedReason::NoPackets));
    assert!(w.connected(a), "the session itself lives on");

    let (sa, sb) = (
        w.clients[a].session_id.clone(),
        w.clients[b].session_id.clone(),
    );
    assert!(w
        .sfu
        .session_state(w.now, &sa)
        .expect("state")
        .tracks
        .is_empty());
    let sub = w.sfu.session_state(w.now, &sb).expect("state");
    assert_eq!(sub.tracks[0].status, Some(TrackStatus::Inactive));
    // A new pull of it fails per track.
    let response = w.pull_request(
        b,
        TracksRequest {
            tracks: vec![TrackObject {
                location: Some(Location::Remote),
                session_id: Some(sa),
                track_name: "cam".into(),
                ..Default::default()
            }],
            ..Default::default()
        },
    );
    assert_eq!(
        response.tracks[0].error_code.as_deref(),
        Some(codes::NOT_FOUND_TRACK_ERROR)
    );
}

#[test]
fn a_session_that_loses_connectivity_is_closed_after_30_seconds() {
    let mut w = World::new();
    w.max_step = Duration::from_millis(50);
    let a = w.add_client();
    let b = w.add_client();
    w.push(a, &[("cam", MediaKind::Video, &[])]);
    w.push(b, &[("cam", MediaKind::Video, &[])]);
    w.run_until(5 * SECOND, "connected", |w| {
        w.connected(a) && w.connected(b)
    });

    w.clients[a].unplugged = true;
    w.run_for(20 * SECOND);
    assert!(
        !closed(&w, a, CloseReason::Idle),
        "a session may come back within 30 s"
    );
    w.run_for(20 * SECOND);
    assert!(closed(&w, a, CloseReason::Idle));
    // Its silent track went at 30 s as well (whichever sweep came first says why).
    assert!(
        removed(&w, a, "cam", TrackRemovedReason::SessionClosed)
            || removed(&w, a, "cam", TrackRemovedReason::NoPackets)
    );
    let sa = w.clients[a].session_id.clone();
    assert_eq!(
        w.sfu.session_state(w.now, &sa).expect_err("gone").code,
        codes::SESSION_ERROR
    );
    // The other session is untouched.
    assert!(!closed(&w, b, CloseReason::Idle));
    assert_eq!(w.sfu.session_count(), 1);
}

#[test]
fn a_session_that_never_connects_is_closed_after_30_seconds() {
    let mut w = World::new();
    w.max_step = Duration::from_millis(100);
    let a = w.add_client();
    w.run_for(29 * SECOND);
    assert_eq!(w.sfu.session_count(), 1);
    w.run_for(2 * SECOND);
    assert!(closed(&w, a, CloseReason::Idle));
    assert_eq!(w.sfu.session_count(), 0);
}

#[test]
fn a_negotiated_close_answers_the_client_offer_and_stops_forwarding() {
    let mut w = World::new();
    let a = w.add_client();
    let b = w.add_client();
    let (_, mids) = w.push(
        a,
        &[
            ("cam", MediaKind::Video, &[]),
            ("mic", MediaKind::Audio, &[]),
        ],
    );
    w.pull(b, a, "cam", None);
    w.run_until(5 * SECOND, "connected", |w| {
        w.connected(a) && w.connected(b)
    });
    w.stream_video(a, mids[0], &[], 1000, SECOND);

    // The publisher stops its camera transceiver and offers.
    let mut api = w.clients[a].rtc.sdp_api();
    api.stop_media(mids[0]);
    let (offer, pending) = api.apply().expect("offer");
    let sid = w.clients[a].session_id.clone();
    let now = w.now;
    let response = w
        .sfu
        .tracks_close(
            now,
            &sid,
            CloseTracksRequest {
                session_description: Some(SessionDescription::offer(offer.to_sdp_string())),
                tracks: vec![CloseTrackObject {
                    mid: mids[0].to_string(),
                    ..Default::default()
                }],
                force: false,
            },
        )
        .expect("close");
    assert_eq!(response.tracks[0].error_code, None);
    assert!(!response.requires_immediate_renegotiation);
    let answer = response.session_description.expect("an answer");
    w.clients[a]
        .rtc
        .sdp_api()
        .accept_answer(
            pending,
            SdpAnswer::from_sdp_string(&answer.sdp).expect("parses"),
        )
        .expect("client accepts");
    w.kick(a);
    w.run_for(100 * Duration::from_millis(1));
    assert!(removed(&w, a, "cam", TrackRemovedReason::Closed));
    let state = w.sfu.session_state(w.now, &sid).expect("state");
    assert_eq!(state.tracks.len(), 1, "only the microphone is left");
    assert_eq!(state.tracks[0].track_name, "mic");
    let sb = w.clients[b].session_id.clone();
    let sub = w.sfu.session_state(w.now, &sb).expect("state");
    assert_eq!(sub.tracks[0].status, Some(TrackStatus::Inactive));
}

#[test]
fn a_push_without_an_offer_gets_the_sfu_offer_and_then_forwards() {
    let mut w = World::new();
    let a = w.add_client();
    let b = w.add_client();
    let sid = w.clients[a].session_id.clone();
    let now = w.now;
    let response = w
        .sfu
        .tracks_new(
            now,
            &sid,
            TracksRequest {
                tracks: vec![TrackObject {
                    location: Some(Location::Local),
                    track_name: "cam".into(),
                    kind: Some("video".into()),
                    ..Default::default()
                }],
                ..Default::default()
            },
        )
        .expect("push");
    assert!(response.requires_immediate_renegotiation);
    let offer = response.session_description.expect("offer");
    let answer = w.clients[a]
        .rtc
        .sdp_api()
        .accept_offer(SdpOffer::from_sdp_string(&offer.sdp).expect("parses"))
        .expect("client answers");
    w.kick(a);
    assert!(!w
        .events
        .iter()
        .any(|e| matches!(e, SfuEvent::TrackPublished { .. })));
    w.sfu
        .renegotiate(
            now,
            &sid,
            SessionDescription::answer(answer.to_sdp_string()),
        )
        .expect("renegotiate");
    w.pump();
    assert!(w.events.contains(&SfuEvent::TrackPublished {
        session_id: sid,
        track_name: "cam".into(),
        kind: "video",
    }));

    w.pull(b, a, "cam", None);
    w.run_until(5 * SECOND, "connected", |w| {
        w.connected(a) && w.connected(b)
    });
    let mid = str0m::media::Mid::from(response.tracks[0].mid.as_deref().expect("mid"));
    w.stream_video(a, mid, &[], 1000, SECOND);
    assert!(
        w.clients[b].frames.len() > 15,
        "{}",
        w.clients[b].frames.len()
    );
}

#[test]
fn a_panicking_session_is_closed_and_the_others_keep_forwarding() {
    let mut w = World::new();
    let a = w.add_client();
    let b = w.add_client();
    let victim = w.add_client();
    let (_, mids) = w.push(a, &[("cam", MediaKind::Video, &[])]);
    w.pull(b, a, "cam", None);
    w.pull(victim, a, "cam", None);
    w.run_until(5 * SECOND, "connected", |w| (0..3).all(|c| w.connected(c)));
    w.stream_video(a, mids[0], &[], 1000, SECOND);
    let before = w.clients[b].frames.len();

    let sid = w.clients[victim].session_id.clone();
    let now = w.now;
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    w.sfu
        .run_guarded_for_test(now, &sid, |_| panic!("a broken invariant inside str0m"))
        .expect("session exists");
    std::panic::set_hook(hook);
    w.pump();

    assert!(closed(&w, victim, CloseReason::Panicked));
    assert_eq!(w.sfu.stats().panicked_sessions, 1);
    assert_eq!(
        w.sfu.session_state(w.now, &sid).expect_err("closed").code,
        codes::SESSION_ERROR
    );
    w.stream_video(a, mids[0], &[], 1000, SECOND);
    assert!(
        w.clients[b].frames.len() > before + 20,
        "the other subscriber still receives"
    );
}

#[test]
fn a_server_side_close_ends_the_session_and_its_published_tracks() {
    let mut w = World::new();
    let a = w.add_client();
    let b = w.add_client();
    w.push(a, &[("cam", MediaKind::Video, &[])]);
    w.pull(b, a, "cam", None);
    w.run_until(5 * SECOND, "connected", |w| {
        w.connected(a) && w.connected(b)
    });
    let sa = w.clients[a].session_id.clone();
    let now = w.now;
    w.sfu.close_session(now, &sa).expect("close");
    w.pump();
    assert!(closed(&w, a, CloseReason::Closed));
    assert!(removed(&w, a, "cam", TrackRemovedReason::SessionClosed));
    let sb = w.clients[b].session_id.clone();
    let sub = w.sfu.session_state(w.now, &sb).expect("state");
    assert_eq!(sub.tracks[0].status, Some(TrackStatus::Inactive));
}
