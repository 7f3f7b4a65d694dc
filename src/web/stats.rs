//! Reading `RTCPeerConnection.getStats()` into the counters `core::quality` scores.

use js_sys::Map;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::RtcPeerConnection;

use crate::core::quality::StatsSample;
use crate::web::js::{get, get_f64, get_str, now_ms};

/// One stats report, summarised.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Reading {
    /// What quality scoring needs.
    pub(crate) sample: StatsSample,
    /// Video frames decoded so far (all inbound video).
    pub(crate) frames_decoded: f64,
}

/// Reads and summarises the stats of `pc`. A failed read gives `None`.
pub(crate) async fn read(pc: &RtcPeerConnection, connected: bool) -> Option<Reading> {
    let report = JsFuture::from(pc.get_stats()).await.ok()?;
    let report: Map = report.unchecked_into();
    let mut reading = Reading {
        sample: StatsSample {
            at_ms: now_ms(),
            connected,
            ..StatsSample::default()
        },
        frames_decoded: 0.0,
    };
    let s = &mut reading.sample;
    let mut frames = 0.0;
    report.for_each(&mut |stat: JsValue, _key: JsValue| {
        let num = |k: &str| get_f64(&stat, k).unwrap_or(0.0);
        match get_str(&stat, "type").as_deref() {
            Some("inbound-rtp") => {
                s.packets_received += num("packetsReceived");
                s.packets_lost += num("packetsLost").max(0.0);
                s.bytes_received += num("bytesReceived");
                if let Some(j) = get_f64(&stat, "jitter") {
                    s.jitter_s = Some(s.jitter_s.map_or(j, |m: f64| m.max(j)));
                }
                frames += num("framesDecoded");
            }
            Some("outbound-rtp") => s.bytes_sent += num("bytesSent"),
            Some("remote-inbound-rtp") => {
                if let Some(f) = get_f64(&stat, "fractionLost") {
                    s.remote_fraction_lost =
                        Some(s.remote_fraction_lost.map_or(f, |m: f64| m.max(f)));
                }
                if s.rtt_s.is_none() {
                    s.rtt_s = get_f64(&stat, "roundTripTime");
                }
            }
            Some("candidate-pair")
                if get(&stat, "nominated").as_bool() == Some(true)
                    && get_str(&stat, "state").as_deref() == Some("succeeded") =>
            {
                if let Some(rtt) = get_f64(&stat, "currentRoundTripTime") {
                    s.rtt_s = Some(rtt);
                }
                s.available_outgoing_bps = get_f64(&stat, "availableOutgoingBitrate");
            }
            _ => {}
        }
    });
    reading.frames_decoded = frames;
    Some(reading)
}

/// Per receiving `mid` (one connection carrying many participants): video frames decoded so
/// far and the height of the last one.
pub(crate) async fn frames_by_mid(pc: &RtcPeerConnection) -> Vec<(String, f64, f64)> {
    let Ok(report) = JsFuture::from(pc.get_stats()).await else {
        return Vec::new();
    };
    let report: Map = report.unchecked_into();
    let mut frames = Vec::new();
    report.for_each(&mut |stat: JsValue, _key: JsValue| {
        if get_str(&stat, "type").as_deref() == Some("inbound-rtp") {
            if let (Some(mid), Some(n)) = (get_str(&stat, "mid"), get_f64(&stat, "framesDecoded")) {
                frames.push((mid, n, get_f64(&stat, "frameHeight").unwrap_or(0.0)));
            }
        }
    });
    frames
}
