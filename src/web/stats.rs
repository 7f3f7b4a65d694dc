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

/// One receiving `mid`'s counters (a connection to an SFU carries many participants).
#[derive(Debug, Clone, Default)]
pub(crate) struct Inbound {
    pub(crate) mid: String,
    pub(crate) packets_received: f64,
    pub(crate) packets_lost: f64,
    pub(crate) bytes_received: f64,
    pub(crate) jitter_s: Option<f64>,
    /// Video frames decoded so far (0 for audio).
    pub(crate) frames_decoded: f64,
    /// Height of the last decoded frame (0 for audio, or before the first).
    pub(crate) frame_height: f64,
}

/// Reads and summarises the stats of `pc`. A failed read gives `None`.
pub(crate) async fn read(pc: &RtcPeerConnection, connected: bool) -> Option<Reading> {
    read_by_mid(pc, connected, &mut Vec::new()).await
}

/// [`read`], plus each receiving mid's counters into `by_mid`.
pub(crate) async fn read_by_mid(
    pc: &RtcPeerConnection,
    connected: bool,
    by_mid: &mut Vec<Inbound>,
) -> Option<Reading> {
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
                let inbound = Inbound {
                    mid: get_str(&stat, "mid").unwrap_or_default(),
                    packets_received: num("packetsReceived"),
                    packets_lost: num("packetsLost").max(0.0),
                    bytes_received: num("bytesReceived"),
                    jitter_s: get_f64(&stat, "jitter"),
                    frames_decoded: num("framesDecoded"),
                    frame_height: num("frameHeight"),
                };
                add_inbound(s, &inbound);
                frames += inbound.frames_decoded;
                by_mid.push(inbound);
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

/// Adds one receiving mid's counters to `sample`.
pub(crate) fn add_inbound(sample: &mut StatsSample, inbound: &Inbound) {
    sample.packets_received += inbound.packets_received;
    sample.packets_lost += inbound.packets_lost;
    sample.bytes_received += inbound.bytes_received;
    if let Some(j) = inbound.jitter_s {
        sample.jitter_s = Some(sample.jitter_s.map_or(j, |m: f64| m.max(j)));
    }
}
