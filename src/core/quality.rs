//! Network quality from `getStats` samples, and the sender limits that follow from it
//! (bandwidth adaptation).

/// Network quality of one link, as an app shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Quality {
    /// Media is not flowing.
    Lost,
    /// Heavy loss or delay.
    Poor,
    /// Noticeable loss, delay or jitter.
    Fair,
    /// All fine.
    Good,
}

impl Quality {
    /// The wire name (`"good"`, `"fair"`, `"poor"`, `"lost"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Quality::Good => "good",
            Quality::Fair => "fair",
            Quality::Poor => "poor",
            Quality::Lost => "lost",
        }
    }
}

/// Cumulative counters and current gauges read from one `getStats` report.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StatsSample {
    /// When the report was taken, in ms.
    pub at_ms: f64,
    /// True while ICE is connected.
    pub connected: bool,
    /// `inbound-rtp`: packets received so far (all kinds).
    pub packets_received: f64,
    /// `inbound-rtp`: packets lost so far.
    pub packets_lost: f64,
    /// `inbound-rtp`: bytes received so far.
    pub bytes_received: f64,
    /// `outbound-rtp`: bytes sent so far.
    pub bytes_sent: f64,
    /// `remote-inbound-rtp`: the far end's recent loss of what we send, 0..1.
    pub remote_fraction_lost: Option<f64>,
    /// Round-trip time in seconds (`candidate-pair` or `remote-inbound-rtp`).
    pub rtt_s: Option<f64>,
    /// `inbound-rtp` jitter, in seconds.
    pub jitter_s: Option<f64>,
    /// `candidate-pair.availableOutgoingBitrate`, bits/s.
    pub available_outgoing_bps: Option<f64>,
}

/// What the app sees for one link.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QualityReport {
    /// The verdict.
    pub quality: Quality,
    /// Packet loss over the last interval, percent (the worse of the two directions).
    pub loss_percent: f64,
    /// Round-trip time in ms, when known.
    pub rtt_ms: Option<f64>,
    /// Jitter in ms, when known.
    pub jitter_ms: Option<f64>,
    /// Received bitrate over the last interval, kbit/s.
    pub receive_kbps: f64,
    /// Sent bitrate over the last interval, kbit/s.
    pub send_kbps: f64,
    /// Estimated available send bitrate, kbit/s.
    pub available_send_kbps: Option<f64>,
}

/// Turns successive samples into reports.
#[derive(Debug, Default, Clone)]
pub struct QualityMeter {
    previous: Option<StatsSample>,
}

impl QualityMeter {
    /// Scores `sample` against the previous one.
    pub fn update(&mut self, sample: StatsSample) -> QualityReport {
        let previous = self.previous.replace(sample);
        let (received, lost, rx_bytes, tx_bytes, seconds) = match previous {
            Some(p) if sample.at_ms > p.at_ms => (
                (sample.packets_received - p.packets_received).max(0.0),
                (sample.packets_lost - p.packets_lost).max(0.0),
                (sample.bytes_received - p.bytes_received).max(0.0),
                (sample.bytes_sent - p.bytes_sent).max(0.0),
                (sample.at_ms - p.at_ms) / 1000.0,
            ),
            _ => (0.0, 0.0, 0.0, 0.0, 0.0),
        };
        let inbound_loss = if received + lost > 0.0 {
            lost / (received + lost)
        } else {
            0.0
        };
        let loss = inbound_loss.max(sample.remote_fraction_lost.unwrap_or(0.0));
        let rtt_ms = sample.rtt_s.map(|s| s * 1000.0);
        let jitter_ms = sample.jitter_s.map(|s| s * 1000.0);
        let kbps = |bytes: f64| {
            if seconds > 0.0 {
                bytes * 8.0 / seconds / 1000.0
            } else {
                0.0
            }
        };
        let media_flowing = previous.is_none() || received > 0.0 || tx_bytes > 0.0;
        let quality = if !sample.connected || !media_flowing {
            Quality::Lost
        } else {
            score(loss, rtt_ms.unwrap_or(0.0), jitter_ms.unwrap_or(0.0))
        };
        QualityReport {
            quality,
            loss_percent: loss * 100.0,
            rtt_ms,
            jitter_ms,
            receive_kbps: kbps(rx_bytes),
            send_kbps: kbps(tx_bytes),
            available_send_kbps: sample.available_outgoing_bps.map(|b| b / 1000.0),
        }
    }
}

/// Thresholds in line with common MOS-style heuristics for interactive video.
fn score(loss: f64, rtt_ms: f64, jitter_ms: f64) -> Quality {
    if loss >= 0.10 || rtt_ms >= 500.0 || jitter_ms >= 100.0 {
        Quality::Poor
    } else if loss >= 0.03 || rtt_ms >= 250.0 || jitter_ms >= 40.0 {
        Quality::Fair
    } else {
        Quality::Good
    }
}

/// Limits for the video sender (`RTCRtpSender.setParameters`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SendLimits {
    /// `encodings[].maxBitrate`, bits/s; `None` lifts the limit.
    pub max_bitrate_bps: Option<u32>,
    /// `encodings[].scaleResolutionDownBy`.
    pub scale_resolution_down_by: f64,
}

const LEVELS: [SendLimits; 3] = [
    SendLimits {
        max_bitrate_bps: None,
        scale_resolution_down_by: 1.0,
    },
    SendLimits {
        max_bitrate_bps: Some(500_000),
        scale_resolution_down_by: 2.0,
    },
    SendLimits {
        max_bitrate_bps: Some(150_000),
        scale_resolution_down_by: 4.0,
    },
];

/// Steps video down at once when a link is poor and back up after it stays good.
#[derive(Debug, Default, Clone)]
pub struct Adapter {
    level: usize,
    good_streak: u32,
}

/// Good reports in a row before stepping back up (3 x 2 s).
const RECOVER_AFTER: u32 = 3;

impl Adapter {
    /// Feeds one report; returns new limits when they change.
    pub fn update(&mut self, report: &QualityReport) -> Option<SendLimits> {
        let before = self.level;
        match report.quality {
            Quality::Poor => {
                self.good_streak = 0;
                self.level = (self.level + 1).min(LEVELS.len() - 1);
            }
            Quality::Good => {
                self.good_streak += 1;
                if self.good_streak >= RECOVER_AFTER && self.level > 0 {
                    self.level -= 1;
                    self.good_streak = 0;
                }
            }
            Quality::Fair | Quality::Lost => self.good_streak = 0,
        }
        (self.level != before).then(|| LEVELS[self.level])
    }

    /// The limits in force.
    pub fn limits(&self) -> SendLimits {
        LEVELS[self.level]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at_s: f64, received: f64, lost: f64, rtt_s: f64) -> StatsSample {
        StatsSample {
            at_ms: at_s * 1000.0,
            connected: true,
            packets_received: received,
            packets_lost: lost,
            bytes_received: received * 1000.0,
            bytes_sent: at_s * 100_000.0,
            rtt_s: Some(rtt_s),
            ..StatsSample::default()
        }
    }

    #[test]
    fn a_clean_link_is_good_with_rates_computed_over_the_interval() {
        let mut meter = QualityMeter::default();
        meter.update(sample(0.0, 0.0, 0.0, 0.02));
        let report = meter.update(sample(2.0, 200.0, 0.0, 0.02));
        assert_eq!(report.quality, Quality::Good);
        assert_eq!(report.loss_percent, 0.0);
        assert_eq!(report.rtt_ms, Some(20.0));
        assert_eq!(report.receive_kbps, 800.0, "200 packets x 1000 B over 2 s");
        assert_eq!(report.send_kbps, 800.0);
    }

    #[test]
    fn loss_is_measured_per_interval_not_since_the_start() {
        let mut meter = QualityMeter::default();
        meter.update(sample(0.0, 0.0, 0.0, 0.02));
        assert_eq!(
            meter.update(sample(2.0, 95.0, 5.0, 0.02)).quality,
            Quality::Fair
        );
        assert_eq!(
            meter.update(sample(4.0, 180.0, 20.0, 0.02)).quality,
            Quality::Poor
        );
        // No new loss in the next interval: good again despite the cumulative 10%.
        assert_eq!(
            meter.update(sample(6.0, 280.0, 20.0, 0.02)).quality,
            Quality::Good
        );
    }

    #[test]
    fn delay_and_remote_loss_count_too() {
        let mut meter = QualityMeter::default();
        meter.update(sample(0.0, 0.0, 0.0, 0.02));
        assert_eq!(
            meter.update(sample(2.0, 100.0, 0.0, 0.3)).quality,
            Quality::Fair
        );
        assert_eq!(
            meter.update(sample(4.0, 200.0, 0.0, 0.6)).quality,
            Quality::Poor
        );
        let mut remote = sample(6.0, 300.0, 0.0, 0.02);
        remote.remote_fraction_lost = Some(0.2);
        assert_eq!(meter.update(remote).quality, Quality::Poor);
    }

    #[test]
    fn no_connection_or_no_media_is_lost() {
        let mut meter = QualityMeter::default();
        meter.update(sample(0.0, 0.0, 0.0, 0.02));
        let mut down = sample(2.0, 100.0, 0.0, 0.02);
        down.connected = false;
        assert_eq!(meter.update(down).quality, Quality::Lost);
        let mut frozen = sample(4.0, 100.0, 0.0, 0.02);
        frozen.bytes_sent = down.bytes_sent;
        assert_eq!(meter.update(frozen).quality, Quality::Lost);
    }

    #[test]
    fn adaptation_steps_down_when_poor_and_back_up_after_sustained_good() {
        let mut adapter = Adapter::default();
        let report = |quality| QualityReport {
            quality,
            loss_percent: 0.0,
            rtt_ms: None,
            jitter_ms: None,
            receive_kbps: 0.0,
            send_kbps: 0.0,
            available_send_kbps: None,
        };
        assert_eq!(adapter.update(&report(Quality::Good)), None);
        let down = adapter.update(&report(Quality::Poor)).expect("steps down");
        assert_eq!(down.max_bitrate_bps, Some(500_000));
        assert_eq!(
            adapter
                .update(&report(Quality::Poor))
                .unwrap()
                .scale_resolution_down_by,
            4.0
        );
        assert_eq!(
            adapter.update(&report(Quality::Poor)),
            None,
            "already at the floor"
        );
        assert_eq!(adapter.update(&report(Quality::Good)), None);
        assert_eq!(adapter.update(&report(Quality::Good)), None);
        assert_eq!(
            adapter
                .update(&report(Quality::Good))
                .unwrap()
                .max_bitrate_bps,
            Some(500_000)
        );
        for _ in 0..2 {
            adapter.update(&report(Quality::Good));
        }
        assert_eq!(
            adapter
                .update(&report(Quality::Good))
                .unwrap()
                .max_bitrate_bps,
            None
        );
        assert_eq!(adapter.limits().scale_resolution_down_by, 1.0);
    }

    #[test]
    fn a_fair_report_interrupts_the_good_streak() {
        let mut adapter = Adapter::default();
        let mut report = QualityMeter::default().update(sample(0.0, 0.0, 0.0, 0.0));
        report.quality = Quality::Poor;
        adapter.update(&report);
        for q in [
            Quality::Good,
            Quality::Good,
            Quality::Fair,
            Quality::Good,
            Quality::Good,
        ] {
            report.quality = q;
            assert_eq!(adapter.update(&report), None, "{q:?}");
        }
        report.quality = Quality::Good;
        assert!(adapter.update(&report).is_some());
    }
}
