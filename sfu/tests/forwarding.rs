//! Push, pull and forwarding between str0m clients through the SFU.

mod common;

use std::time::Duration;

use callroom_sfu::calls::TrackStatus;
use callroom_sfu::SfuEvent;
use common::{frame_info, World};
use str0m::media::MediaKind;

const SECOND: Duration = Duration::from_secs(1);

#[test]
fn push_answers_the_client_offer_and_connects_over_ice_and_dtls() {
    let mut w = World::new();
    let a = w.add_client();
    let (response, mids) = w.push(a, &[("cam", MediaKind::Video, &[])]);
    assert!(!response.requires_immediate_renegotiation);
    assert_eq!(
        response.tracks[0].mid.as_deref(),
        Some(&*mids[0].to_string())
    );
    assert_eq!(response.tracks[0].track_name, "cam");
    let answer = response.session_description.expect("answer");
    assert!(
        answer.sdp.contains("a=ice-lite"),
        "the SFU answers as ICE-lite"
    );
    assert!(
        answer.sdp.contains("192.0.2.1 3478"),
        "host candidate at the public address"
    );

    w.run_until(5 * SECOND, "publisher connected", |w| w.connected(a));
    let sid = w.clients[a].session_id.clone();
    w.run_for(Duration::from_millis(100));
    assert!(w.events.contains(&SfuEvent::SessionConnected {
        session_id: sid.clone()
    }));
    assert!(w.events.contains(&SfuEvent::TrackPublished {
        session_id: sid,
        track_name: "cam".into(),
        kind: "video",
    }));
}

#[test]
fn a_pulled_track_delivers_the_frames_the_publisher_wrote() {
    let mut w = World::new();
    let a = w.add_client();
    let b = w.add_client();
    let (_, mids) = w.push(a, &[("cam", MediaKind::Video, &[])]);
    w.run_until(5 * SECOND, "publisher connected", |w| w.connected(a));

    let pulled = w.pull(b, a, "cam", None);
    assert!(pulled.requires_immediate_renegotiation);
    assert_eq!(
        pulled.tracks[0].session_id.as_deref(),
        Some(&*w.clients[a].session_id)
    );
    w.run_until(5 * SECOND, "subscriber connected", |w| w.connected(b));

    w.stream_video(a, mids[0], &[], 3000, 2 * SECOND);
    let frames = &w.clients[b].frames;
    assert!(frames.len() > 30, "only {} frames arrived", frames.len());
    assert!(frames[0].keyframe, "the subscriber starts at a keyframe");
    // Every forwarded frame is byte-identical to one the publisher wrote, in order.
    let mut last = None;
    for f in frames {
        let (n, _) = frame_info(&f.data);
        assert_eq!(f.data, common::frame_payload(f.keyframe, n, None, 3000));
        assert!(last.is_none_or(|l| n > l), "frames in order");
        last = Some(n);
    }
    let state = w
        .sfu
        .session_state(w.now, &w.clients[b].session_id.clone())
        .expect("state");
    assert_eq!(state.tracks[0].status, Some(TrackStatus::Active));
    let state = w
        .sfu
        .session_state(w.now, &w.clients[a].session_id.clone())
        .expect("state");
    assert_eq!(state.tracks[0].status, Some(TrackStatus::Active));
}

#[test]
fn pulling_before_the_first_packet_succeeds_and_media_flows_once_it_starts() {
    let mut w = World::new();
    let a = w.add_client();
    let b = w.add_client();
    let (_, mids) = w.push(a, &[("cam", MediaKind::Video, &[])]);
    // No connection and no media yet: the pull still succeeds.
    let pulled = w.pull(b, a, "cam", None);
    assert_eq!(pulled.tracks[0].error_code, None);
    w.run_until(5 * SECOND, "both connected", |w| {
        w.connected(a) && w.connected(b)
    });
    w.stream_video(a, mids[0], &[], 1000, SECOND);
    assert!(w.clients[b].frames.len() > 15);
}

#[test]
fn a_new_subscriber_triggers_a_keyframe_request_to_the_publisher() {
    let mut w = World::new();
    let a = w.add_client();
    let b = w.add_client();
    let (_, mids) = w.push(a, &[("cam", MediaKind::Video, &[])]);
    w.run_until(5 * SECOND, "publisher connected", |w| w.connected(a));
    // The publisher is past its first keyframe when the subscriber arrives.
    w.stream_video(a, mids[0], &[], 1000, SECOND);
    let requests_before = w.clients[a].keyframe_requests.len();

    w.pull(b, a, "cam", None);
    w.run_until(5 * SECOND, "subscriber connected", |w| w.connected(b));
    w.stream_video(a, mids[0], &[], 1000, SECOND);

    assert!(
        w.clients[a].keyframe_requests.len() > requests_before,
        "the publisher was asked for a keyframe"
    );
    let frames = &w.clients[b].frames;
    assert!(!frames.is_empty(), "the subscriber got media");
    assert!(
        frames[0].keyframe,
        "nothing before the keyframe is forwarded"
    );
    // Throttled: at most one request per 500 ms.
    let times: Vec<_> = w.clients[a]
        .keyframe_requests
        .iter()
        .map(|(t, _)| *t)
        .collect();
    for pair in times.windows(2) {
        assert!(pair[1] - pair[0] >= Duration::from_millis(450), "{times:?}");
    }
}

#[test]
fn audio_is_forwarded_from_the_first_packet() {
    let mut w = World::new();
    let a = w.add_client();
    let b = w.add_client();
    let (_, mids) = w.push(a, &[("mic", MediaKind::Audio, &[])]);
    w.pull(b, a, "mic", None);
    w.run_until(5 * SECOND, "both connected", |w| {
        w.connected(a) && w.connected(b)
    });
    for _ in 0..50 {
        w.write_audio(a, mids[0]);
        w.run_for(Duration::from_millis(20));
    }
    assert!(
        w.clients[b].frames.len() >= 40,
        "{}",
        w.clients[b].frames.len()
    );
    assert_eq!(w.clients[b].frames[0].data.len(), 60);
}

#[test]
fn one_publisher_reaches_several_subscribers() {
    let mut w = World::new();
    let a = w.add_client();
    let subs: Vec<usize> = (0..3).map(|_| w.add_client()).collect();
    let (_, mids) = w.push(a, &[("cam", MediaKind::Video, &[])]);
    for &s in &subs {
        w.pull(s, a, "cam", None);
    }
    w.run_until(5 * SECOND, "all connected", |w| {
        w.connected(a) && subs.iter().all(|&s| w.connected(s))
    });
    w.stream_video(a, mids[0], &[], 1000, SECOND);
    for &s in &subs {
        assert!(w.clients[s].frames.len() > 15, "subscriber {s}");
    }
}

#[test]
fn tracks_update_can_point_a_pulled_mid_at_another_publisher() {
    use callroom_sfu::calls::{Location, TrackObject, UpdateTracksRequest};
    let mut w = World::new();
    let a = w.add_client();
    let c = w.add_client();
    let b = w.add_client();
    let (_, mids_a) = w.push(a, &[("cam", MediaKind::Video, &[])]);
    let (_, mids_c) = w.push(c, &[("cam", MediaKind::Video, &[])]);
    let pulled = w.pull(b, a, "cam", None);
    w.run_until(5 * SECOND, "connected", |w| (0..3).all(|i| w.connected(i)));
    // a's frames are 1000 bytes, c's 2000.
    for _ in 0..30 {
        w.write_video(a, mids_a[0], &[], 1000);
        w.write_video(c, mids_c[0], &[], 2000);
        w.run_for(Duration::from_millis(33));
    }
    assert!(w.clients[b].frames.iter().all(|f| f.data.len() == 1000));
    let before = w.clients[b].frames.len();

    let sid = w.clients[b].session_id.clone();
    let now = w.now;
    let response = w
        .sfu
        .tracks_update(
            now,
            &sid,
            UpdateTracksRequest {
                tracks: vec![TrackObject {
                    location: Some(Location::Remote),
                    mid: pulled.tracks[0].mid.clone(),
                    session_id: Some(w.clients[c].session_id.clone()),
                    track_name: "cam".into(),
                    ..Default::default()
                }],
            },
        )
        .expect("update");
    assert_eq!(response.tracks[0].error_code, None);
    for _ in 0..45 {
        w.write_video(a, mids_a[0], &[], 1000);
        w.write_video(c, mids_c[0], &[], 2000);
        w.run_for(Duration::from_millis(33));
    }
    let after = &w.clients[b].frames[before..];
    let first_c = after
        .iter()
        .position(|f| f.data.len() == 2000)
        .expect("c's frames arrive");
    assert!(
        after[first_c].keyframe,
        "the new source starts at a keyframe"
    );
    assert!(
        after[first_c..].iter().all(|f| f.data.len() == 2000),
        "no more of a's frames"
    );
}

#[test]
fn a_push_may_name_its_mid_by_track_name_or_let_the_sfu_discover_tracks() {
    use callroom_sfu::calls::{Location, SessionDescription, TrackObject, TracksRequest};
    use str0m::media::Direction;
    let mut w = World::new();
    let a = w.add_client();
    let sid = w.clients[a].session_id.clone();
    let mut api = w.clients[a].rtc.sdp_api();
    let cam = api.add_media(
        MediaKind::Video,
        Direction::SendOnly,
        None,
        Some("cam".into()),
        None,
    );
    let mic = api.add_media(
        MediaKind::Audio,
        Direction::SendOnly,
        None,
        Some("mic".into()),
        None,
    );
    let (offer, _pending) = api.apply().expect("offer");
    let now = w.now;
    let response = w
        .sfu
        .tracks_new(
            now,
            &sid,
            TracksRequest {
                session_description: Some(SessionDescription::offer(offer.to_sdp_string())),
                tracks: vec![TrackObject {
                    location: Some(Location::Local),
                    mid: Some("#cam".into()),
                    track_name: "camera".into(),
                    ..Default::default()
                }],
                auto_discover: Some(true),
            },
        )
        .expect("push");
    assert_eq!(response.tracks.len(), 2, "{response:?}");
    assert_eq!(response.tracks[0].mid.as_deref(), Some(&*cam.to_string()));
    assert_eq!(response.tracks[0].track_name, "camera");
    // The microphone was not named: it was discovered with a random name.
    assert_eq!(response.tracks[1].mid.as_deref(), Some(&*mic.to_string()));
    assert_eq!(response.tracks[1].track_name.len(), 32);
}

#[test]
fn one_session_pushes_and_pulls_over_one_connection() {
    // Cloudflare's own client uses one connection per participant for both directions.
    let mut w = World::new();
    let a = w.add_client();
    let b = w.add_client();
    let (_, mids_a) = w.push(a, &[("cam", MediaKind::Video, &[])]);
    let (_, mids_b) = w.push(b, &[("cam", MediaKind::Video, &[])]);
    w.pull(a, b, "cam", None);
    w.pull(b, a, "cam", None);
    w.run_until(5 * SECOND, "connected", |w| {
        w.connected(a) && w.connected(b)
    });
    for _ in 0..30 {
        w.write_video(a, mids_a[0], &[], 1000);
        w.write_video(b, mids_b[0], &[], 2000);
        w.run_for(Duration::from_millis(33));
    }
    assert!(
        w.clients[a].frames.len() > 15 && w.clients[a].frames.iter().all(|f| f.data.len() == 2000)
    );
    assert!(
        w.clients[b].frames.len() > 15 && w.clients[b].frames.iter().all(|f| f.data.len() == 1000)
    );
    // A later push from the same client (its offer now carries the pulled m-line too).
    let (response, mids_mic) = w.push(a, &[("mic", MediaKind::Audio, &[])]);
    assert_eq!(response.tracks[0].error_code, None);
    w.pull(b, a, "mic", None);
    for _ in 0..25 {
        w.write_audio(a, mids_mic[0]);
        w.run_for(Duration::from_millis(20));
    }
    assert!(
        w.clients[b].frames.iter().any(|f| f.data.len() == 60),
        "audio arrives too"
    );
}

#[test]
fn h264_frames_are_forwarded_and_start_at_an_idr() {
    use str0m::format::Codec;
    use str0m::media::MediaTime;
    let mut w = World::new();
    let a = w.add_client();
    let b = w.add_client();
    let (_, mids) = w.push(a, &[("cam", MediaKind::Video, &[])]);
    w.run_until(5 * SECOND, "publisher connected", |w| w.connected(a));
    let frame = |n: u64, idr: bool| {
        // Annex B: start code, NAL header (5 = IDR slice, 1 = non-IDR slice), then filler
        // without zero bytes so no start code appears inside.
        let mut v = vec![0, 0, 0, 1, if idr { 0x65 } else { 0x41 }];
        v.extend_from_slice(&n.to_be_bytes().map(|b| b | 0x80));
        v.resize(1500, 0x55);
        v
    };
    let mut written = Vec::new();
    for n in 0..90u64 {
        if n == 20 {
            w.pull(b, a, "cam", None);
        }
        let idr = n == 0 || std::mem::take(&mut w.clients[a].keyframe_due);
        let data = frame(n, idr);
        let now = w.now;
        let writer = w.clients[a].rtc.writer(mids[0]).expect("writer");
        let pt = writer
            .payload_params()
            .find(|p| p.spec().codec == Codec::H264)
            .map(|p| p.pt())
            .expect("h264 negotiated");
        writer
            .write(pt, now, MediaTime::from_90khz(n * 3000), data.clone())
            .expect("write");
        written.push(data);
        w.run_for(Duration::from_millis(33));
    }
    let frames = &w.clients[b].frames;
    assert!(frames.len() > 30, "{} frames", frames.len());
    assert!(frames[0].keyframe, "the subscriber starts at an IDR");
    assert_eq!(frames[0].data[4], 0x65);
    for f in frames {
        assert!(
            written.contains(&f.data),
            "a forwarded frame differs from every written one"
        );
    }
}

/// Known issue: when every client datagram reaches the SFU twice, the SFU's DTLS handshake as
/// the DTLS client (SFU offers, where the client answers `setup:passive`) stalls in about 40%
/// of runs of this event-driven clock, while the client considers itself connected. Driven with
/// a 1 ms tick, the same duplication connected 20 times out of 20. dimpl's debug log shows the
/// SFU rejecting the server's Finished (`parse error: Verify`) after a duplicated server flight:
/// an upstream str0m issue. Browsers answer `setup:active`, which makes the SFU the DTLS server.
#[test]
#[ignore = "known issue: duplicated handshake datagrams stall the SFU's DTLS client role"]
fn a_network_that_duplicates_every_datagram_still_connects_and_forwards() {
    let mut w = World::new();
    w.duplicate_to_sfu = true;
    let a = w.add_client();
    let b = w.add_client();
    let (_, mids) = w.push(a, &[("cam", MediaKind::Video, &[])]);
    w.pull(b, a, "cam", None);
    w.run_until(5 * SECOND, "both connected", |w| {
        w.connected(a) && w.connected(b)
    });
    w.stream_video(a, mids[0], &[], 1000, 2 * SECOND);
    assert!(
        w.clients[b].frames.len() > 30,
        "{}",
        w.clients[b].frames.len()
    );
}
