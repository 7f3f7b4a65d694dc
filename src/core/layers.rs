//! Which simulcast layer to pull of each remote camera in an SFU room: the smallest that
//! fills the tile it is shown in, one lower on a poor link, the lowest on a lost one. Pure, so
//! the policy is tested natively.

use super::quality::Quality;

/// The layers a publisher sends, best first, with the fraction of the capture's height each
/// carries (`scaleResolutionDownBy` 1, 2, 4).
pub const LAYERS: [(&str, u32); 3] = [("f", 1), ("h", 2), ("q", 4)];

/// A capture at least this tall goes out in three layers; smaller ones in one.
pub const SIMULCAST_MIN_HEIGHT: u32 = 360;

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
    /// Not shown: the cheapest layer. (The Calls API cannot pause a pulled track.)
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

/// The rid to pull for a publisher whose capture is `capture_height` tall.
pub fn choose(capture_height: u32, view: View) -> &'static str {
    match view.hint {
        Hint::High => return LAYERS[0].0,
        Hint::Medium => return LAYERS[1].0,
        Hint::Low | Hint::Off => return LAYERS[2].0,
        Hint::Auto => {}
    }
    let fits = match view.tile_height {
        None => 0,
        Some(tile) => LAYERS
            .iter()
            .rposition(|(_, down)| capture_height / down >= tile)
            .unwrap_or(0),
    };
    let index = match view.quality {
        Some(Quality::Lost) => LAYERS.len() - 1,
        Some(Quality::Poor) => (fits + 1).min(LAYERS.len() - 1),
        _ => fits,
    };
    LAYERS[index].0
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
    fn an_explicit_hint_wins_over_tile_and_link() {
        let with = |hint| View {
            hint,
            tile_height: Some(1080),
            quality: Some(Quality::Lost),
        };
        assert_eq!(choose(720, with(Hint::High)), "f");
        assert_eq!(choose(720, with(Hint::Medium)), "h");
        assert_eq!(choose(720, with(Hint::Low)), "q");
        assert_eq!(choose(720, with(Hint::Off)), "q");
        assert_eq!(
            choose(720, with(Hint::Auto)),
            "q",
            "auto follows the lost link"
        );
        assert_eq!(Hint::parse("medium"), Some(Hint::Medium));
        assert_eq!(Hint::parse("ultra"), None);
    }

    #[test]
    fn the_smallest_layer_that_fills_the_tile_is_chosen() {
        // A 720p capture: f 720, h 360, q 180.
        assert_eq!(choose(720, view(Some(720), None)), "f");
        assert_eq!(
            choose(720, view(Some(400), None)),
            "f",
            "h (360) would not fill 400"
        );
        assert_eq!(choose(720, view(Some(360), None)), "h");
        assert_eq!(choose(720, view(Some(200), None)), "h");
        assert_eq!(choose(720, view(Some(180), None)), "q");
        assert_eq!(choose(720, view(Some(90), None)), "q");
        assert_eq!(
            choose(720, view(Some(0), None)),
            "q",
            "a hidden tile costs least"
        );
        assert_eq!(
            choose(720, view(None, None)),
            "f",
            "unknown tiles get the best"
        );
    }

    #[test]
    fn a_poor_link_steps_one_down_and_a_lost_one_to_the_lowest() {
        assert_eq!(choose(720, view(Some(720), Some(Quality::Poor))), "h");
        assert_eq!(
            choose(720, view(Some(180), Some(Quality::Poor))),
            "q",
            "already lowest"
        );
        assert_eq!(choose(720, view(Some(720), Some(Quality::Lost))), "q");
        assert_eq!(choose(720, view(Some(720), Some(Quality::Fair))), "f");
        assert_eq!(choose(720, view(Some(720), Some(Quality::Good))), "f");
    }
}
