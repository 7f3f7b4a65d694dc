//! Which simulcast layer each subscriber gets: pure bookkeeping of the layers a publisher sends
//! (when each was last seen, how fast it flows) and the choice rule, with time passed in.

use std::time::{Duration, Instant};

use str0m::media::Rid;

use crate::calls::{LayerOrdering, SimulcastPreference};

/// A layer stops counting as available after this long without packets.
pub const LAYER_TIMEOUT: Duration = Duration::from_millis(1000);

/// Most layers a track keeps statistics for; further rids are ignored.
pub const MAX_LAYERS: usize = 8;

/// Window over which a layer's bitrate is measured.
const RATE_WINDOW: Duration = Duration::from_millis(500);

/// One incoming layer of a published track. `rid: None` is a track without simulcast.
#[derive(Debug, Clone)]
pub struct Layer {
    /// The RTP stream id, or `None` for a plain track.
    pub rid: Option<Rid>,
    /// When the first frame of this layer arrived.
    pub first_seen: Instant,
    /// When the last frame of this layer arrived.
    pub last_seen: Instant,
    /// Measured bitrate, bits per second (0 until one window has passed).
    pub bitrate: u64,
    window_start: Instant,
    window_bytes: u64,
}

/// All layers of one published track.
#[derive(Debug, Clone, Default)]
pub struct Layers {
    layers: Vec<Layer>,
}

impl Layers {
    /// Record `bytes` of layer `rid` arriving at `now`. Returns false when the layer was ignored
    /// because the track already has [`MAX_LAYERS`].
    pub fn record(&mut self, rid: Option<Rid>, bytes: usize, now: Instant) -> bool {
        let layer = match self.layers.iter().position(|l| l.rid == rid) {
            Some(i) => &mut self.layers[i],
            None => {
                if self.layers.len() >= MAX_LAYERS {
                    return false;
                }
                self.layers.push(Layer {
                    rid,
                    first_seen: now,
                    last_seen: now,
                    bitrate: 0,
                    window_start: now,
                    window_bytes: 0,
                });
                self.layers.last_mut().expect("just pushed")
            }
        };
        layer.last_seen = now;
        layer.window_bytes += bytes as u64;
        let elapsed = now.saturating_duration_since(layer.window_start);
        if elapsed >= RATE_WINDOW {
            layer.bitrate = layer.window_bytes * 8 * 1000 / (elapsed.as_millis() as u64).max(1);
            layer.window_start = now;
            layer.window_bytes = 0;
        }
        true
    }

    /// The layers seen so far.
    pub fn all(&self) -> &[Layer] {
        &self.layers
    }

    /// True when `rid` had packets within [`LAYER_TIMEOUT`] of `now`.
    pub fn is_active(&self, rid: &Option<Rid>, now: Instant) -> bool {
        self.layers
            .iter()
            .any(|l| &l.rid == rid && now.saturating_duration_since(l.last_seen) < LAYER_TIMEOUT)
    }

    fn active(&self, now: Instant) -> impl Iterator<Item = &Layer> {
        self.layers
            .iter()
            .filter(move |l| now.saturating_duration_since(l.last_seen) < LAYER_TIMEOUT)
    }

    /// Bitrate of the smallest flowing layer bigger than `current` (the layer to step up to),
    /// or of `current` itself when it is the biggest; 0 when nothing is known.
    pub fn next_up_bitrate(&self, current: Option<&Option<Rid>>, now: Instant) -> u64 {
        let cur = current.map_or(0, |c| self.bitrate_of(c));
        self.active(now)
            .map(|l| l.bitrate)
            .filter(|&b| b > cur)
            .min()
            .unwrap_or(cur)
    }

    fn bitrate_of(&self, rid: &Option<Rid>) -> u64 {
        self.layers
            .iter()
            .find(|l| &l.rid == rid)
            .map_or(0, |l| l.bitrate)
    }

    /// The layer a subscriber should receive.
    ///
    /// * The preferred rid (default: the layer with the highest measured bitrate) when it flows,
    ///   or when it has not been seen yet during the track's first second.
    /// * When it does not: `ridNotAvailable: none` keeps the current layer; `asciibetical` takes
    ///   the next flowing rid after the preferred one in a-z order (wrapping); when the field is
    ///   absent, the flowing layer with the highest bitrate.
    /// * When `budget` (the subscriber's bandwidth estimate for this track, bits/s) is known and
    ///   `priorityOrdering` is not `none`, a layer whose bitrate exceeds it is replaced by the
    ///   best flowing layer that fits (or the smallest one); stepping back up to a layer needs
    ///   15% headroom, so an estimate hovering at a layer's bitrate does not flap.
    ///
    /// Returns `None` when no layer is known yet.
    pub fn choose(
        &self,
        pref: Option<&SimulcastPreference>,
        current: Option<&Option<Rid>>,
        budget: Option<u64>,
        now: Instant,
    ) -> Option<Option<Rid>> {
        if self.layers.is_empty() {
            return None;
        }
        let preferred: Option<Rid> = match pref.and_then(|p| p.preferred_rid.as_deref()) {
            Some(rid) => Some(Rid::from(rid)),
            None => self.best_by_bitrate(now)?,
        };
        // Layers of a new track start within moments of each other: wait for a preferred one
        // not seen yet, rather than starting elsewhere and switching a moment later.
        let starting = self
            .layers
            .iter()
            .all(|l| now.saturating_duration_since(l.first_seen) < LAYER_TIMEOUT);
        let unseen = !self.layers.iter().any(|l| l.rid == preferred);
        let mut choice = if self.is_active(&preferred, now) || (starting && unseen) {
            preferred
        } else {
            match pref.and_then(|p| p.rid_not_available) {
                Some(LayerOrdering::None) => current.copied().unwrap_or(preferred),
                Some(LayerOrdering::Asciibetical) => {
                    self.next_asciibetical(&preferred, now).unwrap_or(preferred)
                }
                None => self.best_by_bitrate(now).unwrap_or(preferred),
            }
        };
        let bandwidth_bound = pref.and_then(|p| p.priority_ordering) != Some(LayerOrdering::None);
        if let (Some(budget), true) = (budget, bandwidth_bound) {
            choice = self.fit_budget(choice, current, budget, now);
        }
        Some(choice)
    }

    fn best_by_bitrate(&self, now: Instant) -> Option<Option<Rid>> {
        let mut best: Option<&Layer> = None;
        for l in self.active(now) {
            // Ties (e.g. before a first rate window) go to the asciibetically first rid.
            let better = match best {
                None => true,
                Some(b) => {
                    l.bitrate > b.bitrate
                        || (l.bitrate == b.bitrate && rid_str(&l.rid) < rid_str(&b.rid))
                }
            };
            if better {
                best = Some(l);
            }
        }
        best.or_else(|| self.layers.iter().max_by_key(|l| l.bitrate))
            .map(|l| l.rid)
    }

    fn next_asciibetical(&self, after: &Option<Rid>, now: Instant) -> Option<Option<Rid>> {
        let mut flowing: Vec<Option<Rid>> = self.active(now).map(|l| l.rid).collect();
        flowing.sort_by(|a, b| rid_str(a).cmp(rid_str(b)));
        flowing
            .iter()
            .find(|r| rid_str(r) > rid_str(after))
            .or_else(|| flowing.first())
            .copied()
    }

    fn fit_budget(
        &self,
        choice: Option<Rid>,
        current: Option<&Option<Rid>>,
        budget: u64,
        now: Instant,
    ) -> Option<Rid> {
        let current_rate = current.map(|c| self.bitrate_of(c));
        let needed = |rid: &Option<Rid>| {
            let rate = self.bitrate_of(rid);
            // Moving up to a bigger layer needs headroom; staying or stepping down does not.
            match current_rate {
                Some(cur) if Some(rid) != current && rate > cur => rate + rate * 15 / 100,
                _ => rate,
            }
        };
        if needed(&choice) <= budget {
            return choice;
        }
        let cap = self.bitrate_of(&choice);
        let mut below: Vec<&Layer> = self
            .active(now)
            .filter(|l| l.bitrate <= cap && l.rid != choice)
            .collect();
        below.sort_by_key(|l| std::cmp::Reverse(l.bitrate));
        below
            .iter()
            .find(|l| needed(&l.rid) <= budget)
            .or_else(|| below.last())
            .map_or(choice, |l| l.rid)
    }
}

fn rid_str(rid: &Option<Rid>) -> &str {
    rid.as_deref().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rid(s: &str) -> Option<Rid> {
        Some(Rid::from(s))
    }

    /// Feed three layers for one second at the given rates (bits/s).
    fn three_layers(start: Instant) -> (Layers, Instant) {
        let mut layers = Layers::default();
        let mut now = start;
        for _ in 0..30 {
            now += Duration::from_millis(33);
            layers.record(rid("l"), 100_000 / 8 / 30, now);
            layers.record(rid("m"), 300_000 / 8 / 30, now);
            layers.record(rid("h"), 900_000 / 8 / 30, now);
        }
        (layers, now)
    }

    fn pref(preferred: Option<&str>, not_available: Option<LayerOrdering>) -> SimulcastPreference {
        SimulcastPreference {
            preferred_rid: preferred.map(str::to_string),
            priority_ordering: None,
            rid_not_available: not_available,
        }
    }

    #[test]
    fn the_default_layer_is_the_one_with_the_highest_bitrate() {
        let (layers, now) = three_layers(Instant::now());
        assert_eq!(layers.choose(None, None, None, now), Some(rid("h")));
    }

    #[test]
    fn a_preferred_rid_that_flows_is_chosen() {
        let (layers, now) = three_layers(Instant::now());
        let p = pref(Some("l"), None);
        assert_eq!(layers.choose(Some(&p), None, None, now), Some(rid("l")));
    }

    #[test]
    fn a_stopped_preferred_layer_falls_back_by_the_requested_rule() {
        let (mut layers, mut now) = three_layers(Instant::now());
        // "h" stops; "l" and "m" go on for 1.2 s.
        for _ in 0..36 {
            now += Duration::from_millis(33);
            layers.record(rid("l"), 400, now);
            layers.record(rid("m"), 1200, now);
        }
        let best = pref(Some("h"), None);
        assert_eq!(layers.choose(Some(&best), None, None, now), Some(rid("m")));
        let keep = pref(Some("h"), Some(LayerOrdering::None));
        assert_eq!(
            layers.choose(Some(&keep), Some(&rid("h")), None, now),
            Some(rid("h"))
        );
        // a-z after "h" is "l".
        let ascii = pref(Some("h"), Some(LayerOrdering::Asciibetical));
        assert_eq!(layers.choose(Some(&ascii), None, None, now), Some(rid("l")));
        // The preferred layer comes back: it is chosen again.
        now += Duration::from_millis(33);
        layers.record(rid("h"), 3000, now);
        assert_eq!(layers.choose(Some(&best), None, None, now), Some(rid("h")));
    }

    #[test]
    fn a_small_budget_steps_down_and_a_large_one_steps_back_up_with_headroom() {
        let (layers, now) = three_layers(Instant::now());
        let h = layers.bitrate_of(&rid("h"));
        let m = layers.bitrate_of(&rid("m"));
        assert!(h > m && m > 0, "rates measured: h={h} m={m}");
        assert_eq!(layers.choose(None, None, Some(m + 1), now), Some(rid("m")));
        assert_eq!(layers.choose(None, None, Some(1), now), Some(rid("l")));
        // Exactly h's rate keeps h when already on it, but is not enough to climb to it.
        assert_eq!(
            layers.choose(None, Some(&rid("h")), Some(h), now),
            Some(rid("h"))
        );
        assert_eq!(
            layers.choose(None, Some(&rid("m")), Some(h), now),
            Some(rid("m"))
        );
        let none = SimulcastPreference {
            priority_ordering: Some(LayerOrdering::None),
            ..Default::default()
        };
        assert_eq!(
            layers.choose(Some(&none), None, Some(1), now),
            Some(rid("h"))
        );
    }

    #[test]
    fn layers_beyond_the_cap_are_ignored() {
        let mut layers = Layers::default();
        let now = Instant::now();
        for i in 0..MAX_LAYERS {
            assert!(layers.record(rid(&format!("r{i}")), 10, now));
        }
        assert!(!layers.record(rid("extra"), 10, now));
        assert_eq!(layers.all().len(), MAX_LAYERS);
    }
}
