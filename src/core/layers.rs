//! Which simulcast layer to pull of each remote camera in an SFU room: the smallest that
//! fills the tile it is shown in, one lower on a poor link, the lowest on a lost one, and
//! none at all (paused) while nobody shows it. Pure, so the policy is tested natively.

use super::quality::Quality;

/// The layers a publisher sends, best first, with the fraction of the capture's height each
/// carries (`scaleResolutionDownBy` 1, 2, 4).
pub const LAYERS: [(&str, u32); 3] = [("f", 1), ("h", 2), ("q", 4)];

/// A capture at least this tall goes out in layers; smaller ones in one.
pub const SIMULCAST_MIN_HEIGHT: u32 = 360;

/// How many layers a capture `height` lines tall is sent in: what Chrome's encoder really
/// sends (three from 540 lines, two from 360, else one), so none is announced that never
/// comes.
pub fn layer_count(height: u32) -> usize {
    match height {
        540.. => 3,
        SIMULCAST_MIN_HEIGHT.. => 2,
        _ => 1,
    }
}

/// What the app asks for one remote camera (`room.setVideoQuality`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Hint {
    /// Follow the tile size and the link (the default).
    #[default]
    Auto,
    /// The full layer.
    High,
    /// The half layer.
    Medium,
    /// The quarter layer.
    Low,
    /// Not shown: paused, no video is received.
    Off,
}

impl Hint {
    /// The hint with this name (`auto`, `high`, `medium`, `low`, `off`).
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "auto" => Hint::Auto,
            "high" => Hint::High,
            "medium" => Hint::Medium,
            "low" => Hint::Low,
            "off" => Hint::Off,
            _ => return None,
        })
    }

    /// The name [`Hint::parse`] reads.
    pub fn as_str(self) -> &'static str {
        match self {
            Hint::Auto => "auto",
            Hint::High => "high",
            Hint::Medium => "medium",
            Hint::Low => "low",
            Hint::Off => "off",
        }
    }

    /// The layer a rid of [`LAYERS`] is, as a hint word (`high`, `medium`, `low`).
    pub fn of_rid(rid: &str) -> Self {
        match rid {
            "h" => Hint::Medium,
            "q" => Hint::Low,
            _ => Hint::High,
        }
    }
}

/// What the choice for one remote camera depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct View {
    /// The app's hint.
    pub hint: Hint,
    /// Height in device pixels of the tile showing it; `None` when the app has not said
    /// (the full layer then), `Some(0)` when it is not shown.
    pub tile_height: Option<u32>,
    /// The link's last quality, if measured.
    pub quality: Option<Quality>,
}

/// Whether the camera should not be received at all: the app said `off`, or, in `auto`, it
/// reported the tile as not shown (height 0). An explicit layer is received even unshown.
pub fn paused(view: View) -> bool {
    match view.hint {
        Hint::Off => true,
        Hint::Auto => view.tile_height == Some(0),
        _ => false,
    }
}

/// How long a camera must stay unshown before it is paused: a tile scrolled past, or hidden
/// for a moment, keeps its pull (at the smallest layer meanwhile).
pub const PAUSE_AFTER_MS: f64 = 3_000.0;

/// Most pauses on one connection to the SFU. Each pause closes a pull, and the m-section it
/// leaves stays in every later description (the SFU's offers add new ones and never reuse
/// them); past this, an unshown camera is kept at the smallest layer instead.
pub const MAX_PAUSES: u32 = 32;

/// Whether one remote camera is paused, measurement after measurement (time passed in).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Pause {
    /// Since when the view has called for a pause without a break, in ms.
    since: Option<f64>,
    paused: bool,
}

impl Pause {
    /// `wanted`: the view calls for a pause now ([`paused`]); `pauses`: how many pauses the
    /// connection has had. Returns whether the camera is paused now.
    pub fn update(&mut self, now_ms: f64, wanted: bool, pauses: u32) -> bool {
        if !wanted {
            *self = Self::default();
            return false;
        }
        let since = *self.since.get_or_insert(now_ms);
        if !self.paused && pauses < MAX_PAUSES && now_ms - since >= PAUSE_AFTER_MS {
            self.paused = true;
        }
        self.paused
    }
}

/// How the app shows one participant: what it reported (`setTileSize`) and asked for
/// (`setVideoQuality`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Shown {
    /// Height in device pixels of their tile; `None` until reported.
    pub tile_height: Option<u32>,
    /// The app's hint.
    pub hint: Hint,
}

/// Most participants whose view is kept; setting one more forgets the one set longest ago.
pub const MAX_VIEWS: usize = 64;

/// How the app shows each participant, kept by the room so a participant not published yet,
/// or a new connection after a rejoin, gets it. Capped at [`MAX_VIEWS`].
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Views {
    /// Least recently set first.
    entries: Vec<(String, Shown)>,
}

impl Views {
    /// Changes `peer`'s view with `f`; returns it.
    pub fn set(&mut self, peer: &str, f: impl FnOnce(&mut Shown)) -> Shown {
        let mut shown = self.remove(peer).unwrap_or_default();
        f(&mut shown);
        if self.entries.len() >= MAX_VIEWS {
            self.entries.remove(0);
        }
        self.entries.push((peer.to_owned(), shown));
        shown
    }

    /// `peer`'s view, and forgets it.
    pub fn remove(&mut self, peer: &str) -> Option<Shown> {
        let at = self.entries.iter().position(|(p, _)| p == peer)?;
        Some(self.entries.remove(at).1)
    }

    /// Keeps only the views of participants for whom `keep` holds.
    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.entries.retain(|(p, _)| keep(p));
    }

    /// Every view kept, least recently set first.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Shown)> + '_ {
        self.entries.iter().map(|(p, shown)| (p.as_str(), *shown))
    }
}

/// The rid to pull for a publisher whose capture is `capture_height` tall and sent in the
/// first `available` of [`LAYERS`].
pub fn choose(capture_height: u32, available: usize, view: View) -> &'static str {
    let last = available.clamp(1, LAYERS.len()) - 1;
    LAYERS[pick(capture_height, view).min(last)].0
}

fn pick(capture_height: u32, view: View) -> usize {
    match view.hint {
        Hint::High => return 0,
        Hint::Medium => return 1,
        Hint::Low | Hint::Off => return 2,
        Hint::Auto => {}
    }
    let fits = match view.tile_height {
        None => 0,
        Some(tile) => LAYERS
            .iter()
            .rposition(|(_, down)| capture_height / down >= tile)
            .unwrap_or(0),
    };
    match view.quality {
        Some(Quality::Lost) => LAYERS.len() - 1,
        Some(Quality::Poor) => (fits + 1).min(LAYERS.len() - 1),
        _ => fits,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(tile: Option<u32>, quality: Option<Quality>) -> View {
        View {
            hint: Hint::Auto,
            tile_height: tile,
            quality,
        }
    }

    #[test]
    fn views_keep_both_settings_of_a_participant_and_forget_the_oldest_past_the_cap() {
        let mut views = Views::default();
        views.set("a", |v| v.tile_height = Some(180));
        let a = views.set("a", |v| v.hint = Hint::Low);
        assert_eq!(
            a,
            Shown {
                tile_height: Some(180),
                hint: Hint::Low
            }
        );
        for i in 0..MAX_VIEWS - 1 {
            views.set(&format!("p{i}"), |v| v.tile_height = Some(0));
        }
        assert_eq!(views.iter().count(), MAX_VIEWS);
        // Setting `a` again makes it the newest: `p0` goes first.
        views.set("a", |v| v.tile_height = Some(360));
        views.set("new", |v| v.hint = Hint::Off);
        assert_eq!(views.iter().count(), MAX_VIEWS);
        assert!(views.iter().all(|(p, _)| p != "p0"));
        assert_eq!(views.remove("a").and_then(|v| v.tile_height), Some(360));
        assert_eq!(views.remove("a"), None);
        views.retain(|p| p == "new");
        assert_eq!(
            views.iter().collect::<Vec<_>>(),
            [(
                "new",
                Shown {
                    tile_height: None,
                    hint: Hint::Off
                }
            )]
        );
    }

    #[test]
    fn an_explicit_hint_wins_over_tile_and_link() {
        let with = |hint| View {
            hint,
            tile_height: Some(1080),
            quality: Some(Quality::Lost),
        };
        assert_eq!(choose(720, 3, with(Hint::High)), "f");
        assert_eq!(choose(720, 3, with(Hint::Medium)), "h");
        assert_eq!(choose(720, 3, with(Hint::Low)), "q");
        assert_eq!(choose(720, 3, with(Hint::Off)), "q");
        assert_eq!(
            choose(720, 3, with(Hint::Auto)),
            "q",
            "auto follows the lost link"
        );
        assert_eq!(Hint::parse("medium"), Some(Hint::Medium));
        assert_eq!(Hint::parse("ultra"), None);
        for hint in [Hint::Auto, Hint::High, Hint::Medium, Hint::Low, Hint::Off] {
            assert_eq!(Hint::parse(hint.as_str()), Some(hint));
        }
        assert_eq!(Hint::of_rid("h"), Hint::Medium);
    }

    #[test]
    fn a_camera_nobody_shows_is_paused_unless_a_layer_was_asked_for() {
        let with = |hint, tile| View {
            hint,
            tile_height: tile,
            quality: None,
        };
        assert!(
            paused(with(Hint::Off, Some(720))),
            "off pauses a shown tile"
        );
        assert!(
            paused(with(Hint::Auto, Some(0))),
            "auto pauses a hidden tile"
        );
        assert!(!paused(with(Hint::Auto, None)), "not reported: shown");
        assert!(!paused(with(Hint::Auto, Some(90))));
        assert!(
            !paused(with(Hint::Low, Some(0))),
            "an explicit layer is kept even when hidden"
        );
    }

    #[test]
    fn a_pause_waits_for_the_tile_to_stay_unshown_and_ends_at_once() {
        let mut pause = Pause::default();
        assert!(!pause.update(0.0, true, 0), "hidden a moment: still pulled");
        assert!(!pause.update(2_000.0, true, 0));
        assert!(
            !pause.update(2_500.0, false, 0),
            "shown again: the wait starts over"
        );
        assert!(!pause.update(4_000.0, true, 0));
        assert!(!pause.update(6_999.0, true, 0));
        assert!(pause.update(7_000.0, true, 0), "unshown for 3 s: paused");
        assert!(pause.update(60_000.0, true, 0), "and stays paused");
        assert!(!pause.update(60_001.0, false, 0), "shown: resumed at once");
    }

    #[test]
    fn past_the_pause_budget_an_unshown_camera_stays_pulled() {
        let mut pause = Pause::default();
        assert!(!pause.update(0.0, true, MAX_PAUSES));
        assert!(
            !pause.update(10_000.0, true, MAX_PAUSES),
            "no pause left on this connection"
        );
        assert!(pause.update(20_000.0, true, MAX_PAUSES - 1));
        assert!(
            pause.update(30_000.0, true, MAX_PAUSES),
            "a pause under way is not undone by the budget"
        );
    }

    #[test]
    fn the_smallest_layer_that_fills_the_tile_is_chosen() {
        // A 720p capture: f 720, h 360, q 180.
        assert_eq!(choose(720, 3, view(Some(720), None)), "f");
        assert_eq!(
            choose(720, 3, view(Some(400), None)),
            "f",
            "h (360) would not fill 400"
        );
        assert_eq!(choose(720, 3, view(Some(360), None)), "h");
        assert_eq!(choose(720, 3, view(Some(200), None)), "h");
        assert_eq!(choose(720, 3, view(Some(180), None)), "q");
        assert_eq!(choose(720, 3, view(Some(90), None)), "q");
        assert_eq!(
            choose(720, 3, view(Some(0), None)),
            "q",
            "a hidden tile costs least"
        );
        assert_eq!(
            choose(720, 3, view(None, None)),
            "f",
            "unknown tiles get the best"
        );
    }

    #[test]
    fn only_layers_the_publisher_sends_are_asked_for() {
        assert_eq!(layer_count(720), 3);
        assert_eq!(layer_count(480), 2);
        assert_eq!(layer_count(240), 1);
        // A 480-line capture comes in f (480) and h (240): a 90 px tile gets h, not a q that
        // never comes (the SFU would fall back to the best layer).
        assert_eq!(choose(480, 2, view(Some(90), None)), "h");
        assert_eq!(choose(480, 1, view(Some(90), None)), "f");
    }

    #[test]
    fn a_poor_link_steps_one_down_and_a_lost_one_to_the_lowest() {
        assert_eq!(choose(720, 3, view(Some(720), Some(Quality::Poor))), "h");
        assert_eq!(
            choose(720, 3, view(Some(180), Some(Quality::Poor))),
            "q",
            "already lowest"
        );
        assert_eq!(choose(720, 3, view(Some(720), Some(Quality::Lost))), "q");
        assert_eq!(choose(720, 3, view(Some(720), Some(Quality::Fair))), "f");
        assert_eq!(choose(720, 3, view(Some(720), Some(Quality::Good))), "f");
    }
}
