//! Cloudflare's error codes and statuses, request-level and per track.

mod common;

use callroom_sfu::calls::{
    CloseTrackObject, CloseTracksRequest, Location, SessionDescription, TrackObject, TracksRequest,
    UpdateTracksRequest,
};
use callroom_sfu::{codes, MAX_TRACKS_PER_CALL};
use common::World;
use str0m::media::MediaKind;

fn remote(session_id: &str, name: &str) -> TrackObject {
    TrackObject {
        location: Some(Location::Remote),
        session_id: Some(session_id.into()),
        track_name: name.into(),
        ..Default::default()
    }
}

fn local(name: &str, kind: &str) -> TrackObject {
    TrackObject {
        location: Some(Location::Local),
        track_name: name.into(),
        kind: Some(kind.into()),
        ..Default::default()
    }
}

#[test]
fn an_unknown_session_is_a_410_session_error() {
    let mut w = World::new();
    let now = w.now;
    let err = w
        .sfu
        .tracks_new(now, "0123456789abcdef", TracksRequest::default())
        .expect_err("unknown session");
    assert_eq!((err.status, err.code), (410, codes::SESSION_ERROR));
    let err = w
        .sfu
        .session_state(now, "nope")
        .expect_err("unknown session");
    assert_eq!(err.code, codes::SESSION_ERROR);
}

#[test]
fn session_ids_are_long_random_hex() {
    let mut w = World::new();
    let a = w.add_client();
    let b = w.add_client();
    let (ia, ib) = (&w.clients[a].session_id, &w.clients[b].session_id);
    assert_eq!(ia.len(), 32);
    assert!(ia.bytes().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(ia, ib);
}

#[test]
fn an_offer_that_does_not_parse_is_invalid_session_description() {
    let mut w = World::new();
    let a = w.add_client();
    let sid = w.clients[a].session_id.clone();
    let request = TracksRequest {
        session_description: Some(SessionDescription::offer("this is not sdp")),
        tracks: vec![TrackObject {
            location: Some(Location::Local),
            mid: Some("0".into()),
            track_name: "cam".into(),
            ..Default::default()
        }],
        auto_discover: None,
    };
    let now = w.now;
    let err = w.sfu.tracks_new(now, &sid, request).expect_err("bad sdp");
    assert_eq!(
        (err.status, err.code),
        (400, codes::INVALID_SESSION_DESCRIPTION)
    );
    // The session survives a bad request.
    assert!(w.sfu.session_state(now, &sid).is_ok());
}

#[test]
fn mixing_local_and_remote_tracks_is_invalid_params() {
    let mut w = World::new();
    let a = w.add_client();
    let sid = w.clients[a].session_id.clone();
    let request = TracksRequest {
        tracks: vec![local("cam", "video"), remote(&sid, "other")],
        ..Default::default()
    };
    let now = w.now;
    let err = w.sfu.tracks_new(now, &sid, request).expect_err("mixed");
    assert_eq!((err.status, err.code), (406, codes::INVALID_PARAMS));
}

#[test]
fn more_than_64_tracks_in_one_call_is_invalid_params() {
    let mut w = World::new();
    let a = w.add_client();
    let sid = w.clients[a].session_id.clone();
    let tracks = (0..=MAX_TRACKS_PER_CALL)
        .map(|i| local(&format!("t{i}"), "audio"))
        .collect();
    let now = w.now;
    let err = w
        .sfu
        .tracks_new(
            now,
            &sid,
            TracksRequest {
                tracks,
                ..Default::default()
            },
        )
        .expect_err("too many");
    assert_eq!((err.status, err.code), (406, codes::INVALID_PARAMS));
    // Exactly 64 is fine.
    let tracks = (0..MAX_TRACKS_PER_CALL)
        .map(|i| local(&format!("t{i}"), "audio"))
        .collect();
    let ok = w
        .sfu
        .tracks_new(
            now,
            &sid,
            TracksRequest {
                tracks,
                ..Default::default()
            },
        )
        .expect("64 tracks");
    assert_eq!(ok.tracks.len(), MAX_TRACKS_PER_CALL);
    assert!(ok.tracks.iter().all(|t| t.error_code.is_none()));
}

#[test]
fn a_repeated_local_track_name_fails_that_track_only() {
    let mut w = World::new();
    let a = w.add_client();
    w.push(a, &[("cam", MediaKind::Video, &[])]);
    let sid = w.clients[a].session_id.clone();
    let now = w.now;
    // Without an offer the SFU offers; "cam" is taken, "mic" is new.
    let response = w
        .sfu
        .tracks_new(
            now,
            &sid,
            TracksRequest {
                tracks: vec![local("cam", "video"), local("mic", "audio")],
                ..Default::default()
            },
        )
        .expect("200 with a per-track failure");
    assert_eq!(
        response.tracks[0].error_code.as_deref(),
        Some(codes::REPEATED_LOCAL_TRACK_ERROR)
    );
    assert_eq!(response.tracks[0].mid.as_deref(), Some(""));
    assert_eq!(response.tracks[1].error_code, None);
    assert!(response.requires_immediate_renegotiation);
}

#[test]
fn the_sfu_offer_needs_a_kind() {
    let mut w = World::new();
    let a = w.add_client();
    let sid = w.clients[a].session_id.clone();
    let mut track = local("cam", "video");
    track.kind = None;
    let now = w.now;
    let err = w
        .sfu
        .tracks_new(
            now,
            &sid,
            TracksRequest {
                tracks: vec![track],
                ..Default::default()
            },
        )
        .expect_err("no kind");
    assert_eq!(err.code, codes::INVALID_PARAMS);
}

#[test]
fn pulling_an_unknown_track_or_session_is_not_found_per_track() {
    let mut w = World::new();
    let a = w.add_client();
    let b = w.add_client();
    w.push(a, &[("cam", MediaKind::Video, &[])]);
    let publisher = w.clients[a].session_id.clone();
    let request = TracksRequest {
        tracks: vec![
            remote(&publisher, "nope"),
            remote("ffffffffffffffffffffffffffffffff", "cam"),
            remote(&publisher, ""),
            remote(&publisher, "cam"),
        ],
        ..Default::default()
    };
    let response = w.pull_request(b, request);
    let codes_seen: Vec<Option<&str>> = response
        .tracks
        .iter()
        .map(|t| t.error_code.as_deref())
        .collect();
    assert_eq!(
        codes_seen,
        [
            Some(codes::NOT_FOUND_TRACK_ERROR),
            Some(codes::NOT_FOUND_TRACK_ERROR),
            Some(codes::EMPTY_TRACK_ERROR),
            None
        ]
    );
    assert!(
        response.requires_immediate_renegotiation,
        "the good track is offered"
    );
}

#[test]
fn a_pull_where_every_track_fails_offers_nothing() {
    let mut w = World::new();
    let a = w.add_client();
    let b = w.add_client();
    let publisher = w.clients[a].session_id.clone();
    let response = w.pull_request(
        b,
        TracksRequest {
            tracks: vec![remote(&publisher, "nope")],
            ..Default::default()
        },
    );
    assert!(!response.requires_immediate_renegotiation);
    assert!(response.session_description.is_none());
}

#[test]
fn a_second_mutation_before_the_answer_is_refused() {
    let mut w = World::new();
    let a = w.add_client();
    let b = w.add_client();
    w.push(
        a,
        &[
            ("cam", MediaKind::Video, &[]),
            ("mic", MediaKind::Audio, &[]),
        ],
    );
    let publisher = w.clients[a].session_id.clone();
    let sid = w.clients[b].session_id.clone();
    let now = w.now;
    let first = w
        .sfu
        .tracks_new(
            now,
            &sid,
            TracksRequest {
                tracks: vec![remote(&publisher, "cam")],
                ..Default::default()
            },
        )
        .expect("first pull");
    assert!(first.requires_immediate_renegotiation);
    let err = w
        .sfu
        .tracks_new(
            now,
            &sid,
            TracksRequest {
                tracks: vec![remote(&publisher, "mic")],
                ..Default::default()
            },
        )
        .expect_err("overlapping");
    assert_eq!((err.status, err.code), (406, codes::INVALID_PARAMS));
}

#[test]
fn renegotiate_without_a_pending_offer_or_with_an_offer_is_refused() {
    let mut w = World::new();
    let a = w.add_client();
    let sid = w.clients[a].session_id.clone();
    let now = w.now;
    let err = w
        .sfu
        .renegotiate(now, &sid, SessionDescription::answer("v=0"))
        .expect_err("nothing to answer");
    assert_eq!(err.code, codes::INVALID_PARAMS);
    let err = w
        .sfu
        .renegotiate(now, &sid, SessionDescription::offer("v=0"))
        .expect_err("not an answer");
    assert_eq!(err.code, codes::INVALID_PARAMS);
}

#[test]
fn closing_an_unknown_mid_is_a_per_track_close_track_error() {
    let mut w = World::new();
    let a = w.add_client();
    let (_, mids) = w.push(a, &[("cam", MediaKind::Video, &[])]);
    let sid = w.clients[a].session_id.clone();
    let now = w.now;
    let response = w
        .sfu
        .tracks_close(
            now,
            &sid,
            CloseTracksRequest {
                session_description: None,
                tracks: vec![
                    CloseTrackObject {
                        mid: "99".into(),
                        ..Default::default()
                    },
                    CloseTrackObject {
                        mid: mids[0].to_string(),
                        ..Default::default()
                    },
                ],
                force: true,
            },
        )
        .expect("200");
    assert_eq!(
        response.tracks[0].error_code.as_deref(),
        Some(codes::CLOSE_TRACK_ERROR)
    );
    assert_eq!(response.tracks[1].error_code, None);
    assert!(!response.requires_immediate_renegotiation);
    // Closing it again fails: it is gone.
    let again = w
        .sfu
        .tracks_close(
            now,
            &sid,
            CloseTracksRequest {
                session_description: None,
                tracks: vec![CloseTrackObject {
                    mid: mids[0].to_string(),
                    ..Default::default()
                }],
                force: true,
            },
        )
        .expect("200");
    assert_eq!(
        again.tracks[0].error_code.as_deref(),
        Some(codes::CLOSE_TRACK_ERROR)
    );
}

#[test]
fn a_close_without_force_needs_the_client_offer() {
    let mut w = World::new();
    let a = w.add_client();
    let (_, mids) = w.push(a, &[("cam", MediaKind::Video, &[])]);
    let sid = w.clients[a].session_id.clone();
    let now = w.now;
    let err = w
        .sfu
        .tracks_close(
            now,
            &sid,
            CloseTracksRequest {
                session_description: None,
                tracks: vec![CloseTrackObject {
                    mid: mids[0].to_string(),
                    ..Default::default()
                }],
                force: false,
            },
        )
        .expect_err("offer needed");
    assert_eq!(err.code, codes::INVALID_PARAMS);
}

#[test]
fn updating_an_unknown_mid_is_a_per_track_update_track_error() {
    let mut w = World::new();
    let a = w.add_client();
    let sid = w.clients[a].session_id.clone();
    let now = w.now;
    let response = w
        .sfu
        .tracks_update(
            now,
            &sid,
            UpdateTracksRequest {
                tracks: vec![TrackObject {
                    location: Some(Location::Remote),
                    mid: Some("7".into()),
                    session_id: Some(sid.clone()),
                    track_name: "cam".into(),
                    ..Default::default()
                }],
            },
        )
        .expect("200");
    assert_eq!(
        response.tracks[0].error_code.as_deref(),
        Some(codes::UPDATE_TRACK_ERROR)
    );
}

#[test]
fn the_session_cap_is_a_retryable_error() {
    let mut w = World::with_config(|mut c| {
        c.max_sessions = 2;
        c
    });
    w.add_client();
    w.add_client();
    let now = w.now;
    let err = w.sfu.new_session(now).expect_err("full");
    assert_eq!(
        (err.status, err.code),
        (503, codes::RETRYABLE_TRANSIENT_ERROR)
    );
}

#[test]
fn the_per_session_track_cap_fails_tracks_beyond_it() {
    let mut w = World::with_config(|mut c| {
        c.max_tracks_per_session = 3;
        c
    });
    let a = w.add_client();
    let sid = w.clients[a].session_id.clone();
    let tracks = (0..5).map(|i| local(&format!("t{i}"), "audio")).collect();
    let now = w.now;
    let response = w
        .sfu
        .tracks_new(
            now,
            &sid,
            TracksRequest {
                tracks,
                ..Default::default()
            },
        )
        .expect("200");
    let failed = response
        .tracks
        .iter()
        .filter(|t| t.error_code.is_some())
        .count();
    assert_eq!(failed, 2);
}

#[test]
fn datagrams_from_strangers_are_dropped_and_counted() {
    let mut w = World::new();
    let a = w.add_client();
    w.push(a, &[("cam", MediaKind::Video, &[])]);
    w.run_until(std::time::Duration::from_secs(5), "connected", |w| {
        w.connected(a)
    });
    let stranger: std::net::SocketAddr = "203.0.113.9:4000".parse().expect("addr");
    let before = w.sfu.stats().unrouted_datagrams;
    let now = w.now;
    // From an address no session knows: an RTP-looking datagram, garbage, foreign STUN.
    let mut rtp = vec![0x80, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1];
    rtp.extend_from_slice(&[0u8; 100]);
    w.sfu
        .handle_receive(now, stranger, common::sfu_addr(), &rtp);
    w.sfu
        .handle_receive(now, stranger, common::sfu_addr(), &[0xff; 40]);
    // A STUN binding request naming a ufrag no session has.
    let username = b"nope:peer";
    let mut stun = vec![0x00, 0x01, 0x00, 16, 0x21, 0x12, 0xa4, 0x42];
    stun.extend_from_slice(&[7; 12]);
    stun.extend_from_slice(&[0x00, 0x06, 0x00, username.len() as u8]);
    stun.extend_from_slice(username);
    stun.extend_from_slice(&[0, 0, 0]);
    w.sfu
        .handle_receive(now, stranger, common::sfu_addr(), &stun);
    assert_eq!(w.sfu.stats().unrouted_datagrams, before + 3);
    assert!(w.connected(a), "the real session is unaffected");
    assert_eq!(w.sfu.session_count(), 1);
}

#[test]
fn garbage_from_a_connected_client_address_does_not_close_its_session() {
    // Anyone can spoof a client's source address; junk must not end the client's session.
    let mut w = World::new();
    let a = w.add_client();
    let b = w.add_client();
    let (_, mids) = w.push(a, &[("cam", MediaKind::Video, &[])]);
    w.pull(b, a, "cam", None);
    w.run_until(std::time::Duration::from_secs(5), "connected", |w| {
        w.connected(a) && w.connected(b)
    });
    let from = w.clients[a].addr;
    // STUN, DTLS (change cipher spec, handshake, application data), RTP and RTCP lookalikes.
    for first in [0u8, 1, 20, 22, 23, 128, 144] {
        let mut junk = vec![first; 200];
        junk[1] = 0xfe;
        junk[2] = 0xfd;
        let now = w.now;
        w.sfu.handle_receive(now, from, common::sfu_addr(), &junk);
    }
    w.pump();
    assert_eq!(w.sfu.session_count(), 2);
    let before = w.clients[b].frames.len();
    w.stream_video(a, mids[0], &[], 1000, std::time::Duration::from_secs(1));
    assert!(w.clients[b].frames.len() > before + 15, "media still flows");
}
