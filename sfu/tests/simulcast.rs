//! Simulcast: layer choice, switching through tracks/update, and fallback when a layer stops.

mod common;

use std::time::Duration;

use callroom_sfu::calls::{Location, SimulcastPreference, TrackObject, UpdateTracksRequest};
use common::{frame_info, World};
use str0m::media::MediaKind;

const SECOND: Duration = Duration::from_secs(1);
const LAYERS: &[&str] = &["h", "m", "l"];

/// A publisher sending three layers and a subscriber of it, both connected.
fn simulcast_call(
    preference: Option<SimulcastPreference>,
) -> (World, usize, usize, str0m::media::Mid) {
    simulcast_call_in(World::new(), preference)
}

fn simulcast_call_in(
    mut w: World,
    preference: Option<SimulcastPreference>,
) -> (World, usize, usize, str0m::media::Mid) {
    let a = w.add_client();
    let b = w.add_client();
    let (_, mids) = w.push(a, &[("cam", MediaKind::Video, LAYERS)]);
    w.pull(b, a, "cam", preference);
    w.run_until(5 * SECOND, "both connected", |w| {
        w.connected(a) && w.connected(b)
    });
    (w, a, b, mids[0])
}

fn layers_received(w: &World, c: usize, from: usize) -> Vec<char> {
    w.clients[c].frames[from..]
        .iter()
        .map(|f| frame_info(&f.data).1)
        .collect()
}

#[test]
fn without_a_preference_the_subscriber_gets_the_highest_bitrate_layer() {
    let (mut w, a, b, mid) = simulcast_call(None);
    w.stream_video(a, mid, LAYERS, 3000, 2 * SECOND);
    let got = layers_received(&w, b, 0);
    assert!(got.len() > 20, "{} frames", got.len());
    // The first frames may come before the bitrates are measured; the last second is all "h".
    assert!(got[got.len() - 25..].iter().all(|&l| l == 'h'), "{got:?}");
}

#[test]
fn a_preferred_rid_is_honoured_from_the_start() {
    let pref = SimulcastPreference {
        preferred_rid: Some("m".into()),
        ..Default::default()
    };
    let (mut w, a, b, mid) = simulcast_call(Some(pref));
    w.stream_video(a, mid, LAYERS, 3000, 2 * SECOND);
    let got = layers_received(&w, b, 0);
    assert!(got.len() > 20 && got.iter().all(|&l| l == 'm'), "{got:?}");
}

#[test]
fn tracks_update_switches_the_layer_at_a_keyframe() {
    let pref = SimulcastPreference {
        preferred_rid: Some("h".into()),
        ..Default::default()
    };
    let (mut w, a, b, mid) = simulcast_call(Some(pref));
    w.stream_video(a, mid, LAYERS, 3000, 2 * SECOND);
    assert!(layers_received(&w, b, 0).iter().all(|&l| l == 'h'));
    let before = w.clients[b].frames.len();
    let requests_before = w.clients[a].keyframe_requests.len();

    let mid_b = w
        .sfu
        .session_state(w.now, &w.clients[b].session_id.clone())
        .expect("state")
        .tracks[0]
        .mid
        .clone();
    let sid = w.clients[b].session_id.clone();
    let publisher = w.clients[a].session_id.clone();
    let now = w.now;
    let response = w
        .sfu
        .tracks_update(
            now,
            &sid,
            UpdateTracksRequest {
                tracks: vec![TrackObject {
                    location: Some(Location::Remote),
                    mid: mid_b,
                    session_id: Some(publisher),
                    track_name: "cam".into(),
                    simulcast: Some(SimulcastPreference {
                        preferred_rid: Some("l".into()),
                        ..Default::default()
                    }),
                    ..Default::default()
                }],
            },
        )
        .expect("update");
    assert_eq!(response.tracks[0].error_code, None);
    w.stream_video(a, mid, LAYERS, 3000, 2 * SECOND);

    assert!(
        w.clients[a].keyframe_requests.len() > requests_before,
        "keyframe asked for"
    );
    let after = &w.clients[b].frames[before..];
    let first_l = after
        .iter()
        .position(|f| frame_info(&f.data).1 == 'l')
        .expect("layer l arrives");
    assert!(after[first_l].keyframe, "the switch happens at a keyframe");
    assert!(
        after[first_l..]
            .iter()
            .all(|f| frame_info(&f.data).1 == 'l'),
        "no going back"
    );
    assert!(
        after[..first_l]
            .iter()
            .all(|f| frame_info(&f.data).1 == 'h'),
        "h until then"
    );
    // Frame numbers never go back; at the switch the same picture may come once from each
    // layer (the old layer's copy was already sent when the new layer's keyframe arrived).
    let numbers: Vec<u64> = w.clients[b]
        .frames
        .iter()
        .map(|f| frame_info(&f.data).0)
        .collect();
    assert!(numbers.windows(2).all(|p| p[1] >= p[0]), "{numbers:?}");
    assert!(
        numbers.windows(2).filter(|p| p[1] == p[0]).count() <= 1,
        "{numbers:?}"
    );
}

#[test]
fn when_the_current_layer_stops_the_subscriber_falls_back_to_another() {
    let (mut w, a, b, mid) = simulcast_call(None);
    w.stream_video(a, mid, LAYERS, 3000, 2 * SECOND);
    let before = w.clients[b].frames.len();
    // The publisher drops its top layer (as a browser does under CPU or bandwidth pressure).
    w.stream_video(a, mid, &["m", "l"], 3000, 3 * SECOND);
    let got = layers_received(&w, b, before);
    assert!(got.contains(&'m'), "fell back to m: {got:?}");
    assert!(got[got.len() - 30..].iter().all(|&l| l == 'm'), "{got:?}");
    // The gap is bounded: about one second of layer timeout plus a keyframe round trip.
    let gap_frames = 3 * 30 - got.len();
    assert!(gap_frames < 60, "{gap_frames} frames lost in the fallback");
}

#[test]
fn a_subscriber_link_too_small_for_the_top_layer_steps_down_and_back_up() {
    let world = World::with_config(|mut c| {
        c.bandwidth_estimation = true;
        c
    });
    let (mut w, a, b, mid) = simulcast_call_in(world, None);
    // h is about 720 kbps, m 240 kbps, l 80 kbps; the link carries 450 kbps.
    w.clients[b].downlink_bps = Some(450_000);
    w.stream_video(a, mid, LAYERS, 3000, 10 * SECOND);
    let got = layers_received(&w, b, 0);
    let tail = &got[got.len().saturating_sub(30)..];
    assert!(
        tail.len() == 30 && tail.iter().all(|&l| l == 'm'),
        "{got:?}"
    );

    // The bottleneck goes away: the estimate grows and the top layer comes back.
    w.clients[b].downlink_bps = None;
    let before = w.clients[b].frames.len();
    w.stream_video(a, mid, LAYERS, 3000, 20 * SECOND);
    let got = layers_received(&w, b, before);
    let tail = &got[got.len().saturating_sub(30)..];
    assert!(
        tail.len() == 30 && tail.iter().all(|&l| l == 'h'),
        "{got:?}"
    );
}

#[test]
fn without_bandwidth_estimation_the_layer_ignores_the_link() {
    let (mut w, a, b, mid) = simulcast_call(None);
    w.clients[b].downlink_bps = Some(450_000);
    w.stream_video(a, mid, LAYERS, 3000, 5 * SECOND);
    let got = layers_received(&w, b, 0);
    assert!(got.iter().all(|&l| l == 'h'), "{got:?}");
    assert!(w.clients[b].link_drops > 0, "the link really was too small");
}
