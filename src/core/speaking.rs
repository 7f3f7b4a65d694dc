//! Who is speaking. Audio levels go in (one per participant, a few times a second, with the
//! time); out come a `speaking` flag per participant and the room's active speaker.
//!
//! The flag has hysteresis so that it does not flicker between words: it turns on when a
//! level reaches [`START_LEVEL`] and off only after [`HOLD_MS`] without a level at or above
//! [`STOP_LEVEL`]. A muted participant never speaks. The active speaker is the loudest of
//! those speaking; it changes to someone louder only after [`SWITCH_MS`] in the seat, and
//! stays put while nobody speaks (a "speaker" layout keeps the last one large).

/// A level (RMS, 0–1, linear) at which speaking starts: about −34 dBFS.
pub const START_LEVEL: f32 = 0.02;
/// A level below which speech counts as paused: −40 dBFS.
pub const STOP_LEVEL: f32 = 0.01;
/// How long speech may pause before `speaking` turns off.
pub const HOLD_MS: f64 = 800.0;
/// How long the active speaker keeps the seat before someone louder takes it.
pub const SWITCH_MS: f64 = 1_500.0;
/// How much louder (smoothed) a challenger must be to take the seat.
const SWITCH_FACTOR: f32 = 1.5;
/// The smallest change of a shown level worth telling apps about.
const LEVEL_STEP: f32 = 0.02;

/// One participant's voice.
#[derive(Debug, Clone, PartialEq)]
struct Voice {
    id: String,
    /// The level apps see: the last measured, updated when it moves by [`LEVEL_STEP`].
    shown: f32,
    speaking: bool,
    /// When a level last reached [`STOP_LEVEL`].
    last_loud: f64,
    /// The level smoothed over about a second, to compare speakers.
    smoothed: f32,
}

/// One measurement: a participant's level, and whether they are muted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Level<'a> {
    /// Peer id (ours for the local participant).
    pub id: &'a str,
    /// RMS of the last fraction of a second, 0–1.
    pub level: f32,
    /// Muted participants never speak and show level 0.
    pub muted: bool,
}

/// What changed in one [`Speakers::update`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// A shown level or a `speaking` flag changed.
    pub changed: bool,
    /// The active speaker changed to this (`None`: they left and nobody took over).
    pub active: Option<Option<String>>,
}

/// Everyone's voices, and the active speaker.
#[derive(Debug, Clone, Default)]
pub struct Speakers {
    voices: Vec<Voice>,
    active: Option<String>,
    active_since: f64,
}

impl Speakers {
    /// Takes one round of measurements at `now` (ms). Participants missing from `levels`
    /// are forgotten, so this holds at most one entry per participant measured.
    pub fn update(&mut self, levels: &[Level<'_>], now: f64) -> Changes {
        let mut changes = Changes::default();
        let before = self.voices.len();
        self.voices.retain(|v| levels.iter().any(|l| l.id == v.id));
        changes.changed |= self.voices.len() != before;
        for l in levels {
            let level = if l.muted || !l.level.is_finite() {
                0.0
            } else {
                l.level.clamp(0.0, 1.0)
            };
            let voice = match self.voices.iter().position(|v| v.id == l.id) {
                Some(i) => &mut self.voices[i],
                None => {
                    self.voices.push(Voice {
                        id: l.id.to_owned(),
                        shown: 0.0,
                        speaking: false,
                        last_loud: f64::NEG_INFINITY,
                        smoothed: 0.0,
                    });
                    self.voices.last_mut().expect("just pushed")
                }
            };
            changes.changed |= voice.hear(level, l.muted, now);
        }
        if let Some(active) = self.choose(now) {
            changes.active = Some(active);
        }
        changes
    }

    /// The seat's new holder, when it changes.
    fn choose(&mut self, now: f64) -> Option<Option<String>> {
        let current = self
            .active
            .as_ref()
            .and_then(|id| self.voices.iter().find(|v| &v.id == id));
        if self.active.is_some() && current.is_none() {
            // They left: the loudest speaker now, or nobody.
            let next = self.loudest().map(|v| v.id.clone());
            return Some(self.seat(next, now));
        }
        let loudest = self.loudest()?;
        let take = match current {
            None => true,
            Some(c) if c.id == loudest.id => false,
            Some(c) if !c.speaking => true,
            Some(c) => {
                now - self.active_since >= SWITCH_MS
                    && loudest.smoothed > c.smoothed * SWITCH_FACTOR
            }
        };
        let next = Some(loudest.id.clone());
        take.then(|| self.seat(next, now))
    }

    fn seat(&mut self, id: Option<String>, now: f64) -> Option<String> {
        self.active = id.clone();
        self.active_since = now;
        id
    }

    /// The loudest of those speaking.
    fn loudest(&self) -> Option<&Voice> {
        self.voices
            .iter()
            .filter(|v| v.speaking)
            .max_by(|a, b| a.smoothed.total_cmp(&b.smoothed))
    }

    /// `id`'s shown level and `speaking` flag (0 and false when unknown).
    pub fn voice(&self, id: &str) -> (f32, bool) {
        self.voices
            .iter()
            .find(|v| v.id == id)
            .map_or((0.0, false), |v| (v.shown, v.speaking))
    }

    /// The active speaker, if anyone has spoken.
    pub fn active(&self) -> Option<&str> {
        self.active.as_deref()
    }
}

impl Voice {
    /// Takes one level; true when what apps see changed.
    fn hear(&mut self, level: f32, muted: bool, now: f64) -> bool {
        self.smoothed += (level - self.smoothed) * 0.3;
        if level >= STOP_LEVEL {
            self.last_loud = now;
        }
        let speaking = if muted {
            false
        } else if self.speaking {
            now - self.last_loud < HOLD_MS
        } else {
            level >= START_LEVEL
        };
        // Below the pause level it shows as silence: background noise must not move the
        // snapshot every round.
        let shown = if level < STOP_LEVEL {
            0.0
        } else {
            (level * 100.0).round() / 100.0
        };
        let mut changed = speaking != self.speaking;
        self.speaking = speaking;
        if (shown - self.shown).abs() >= LEVEL_STEP {
            self.shown = shown;
            changed = true;
        }
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(levels: &[(&str, f32)]) -> Vec<Level<'static>> {
        levels
            .iter()
            .map(|&(id, level)| Level {
                id: Box::leak(id.to_owned().into_boxed_str()),
                level,
                muted: false,
            })
            .collect()
    }

    /// Feeds `levels` every 200 ms from `from` to `to`; returns the `speaking` flags of `id`.
    fn run(s: &mut Speakers, levels: &[(&str, f32)], from: f64, to: f64, id: &str) -> Vec<bool> {
        let mut flags = Vec::new();
        let mut t = from;
        while t < to {
            s.update(&at(levels), t);
            flags.push(s.voice(id).1);
            t += 200.0;
        }
        flags
    }

    #[test]
    fn speech_with_short_pauses_stays_speaking_and_turns_off_only_after_the_hold() {
        let mut s = Speakers::default();
        assert_eq!(run(&mut s, &[("a", 0.001)], 0.0, 1_000.0, "a"), [false; 5]);
        // A word, then a 400 ms pause between words (two quiet samples), then another word.
        assert_eq!(
            run(&mut s, &[("a", 0.1)], 1_000.0, 1_400.0, "a"),
            [true, true]
        );
        assert_eq!(
            run(&mut s, &[("a", 0.004)], 1_400.0, 1_800.0, "a"),
            [true, true]
        );
        assert_eq!(run(&mut s, &[("a", 0.08)], 1_800.0, 2_000.0, "a"), [true]);
        // Silence: still speaking until 800 ms after the last loud sample (1 800 ms).
        let off = run(&mut s, &[("a", 0.0)], 2_000.0, 3_000.0, "a");
        assert_eq!(
            off,
            [true, true, true, false, false],
            "off at 2 600 ms, not before"
        );
    }

    #[test]
    fn a_level_between_the_thresholds_keeps_speech_going_but_does_not_start_it() {
        let mut s = Speakers::default();
        assert_eq!(run(&mut s, &[("a", 0.015)], 0.0, 2_000.0, "a"), [false; 10]);
        run(&mut s, &[("a", 0.05)], 2_000.0, 2_200.0, "a");
        assert_eq!(
            run(&mut s, &[("a", 0.015)], 2_200.0, 4_200.0, "a"),
            [true; 10]
        );
    }

    #[test]
    fn short_beeps_every_half_second_read_as_continuous_speech() {
        // A beep shows in one 200 ms sample out of every three or so.
        let mut s = Speakers::default();
        let mut flags = Vec::new();
        for i in 0..30 {
            let level = if i % 3 == 0 { 0.3 } else { 0.0 };
            s.update(&at(&[("a", level)]), f64::from(i) * 200.0);
            flags.push(s.voice("a").1);
        }
        assert!(flags.iter().all(|&f| f), "{flags:?}");
    }

    #[test]
    fn a_muted_participant_never_speaks_and_shows_no_level() {
        let mut s = Speakers::default();
        s.update(&at(&[("a", 0.5)]), 0.0);
        assert_eq!(s.voice("a"), (0.5, true));
        let muted = [Level {
            id: "a",
            level: 0.5,
            muted: true,
        }];
        let changes = s.update(&muted, 200.0);
        assert!(changes.changed);
        assert_eq!(s.voice("a"), (0.0, false), "off at once, no hold");
    }

    #[test]
    fn level_changes_smaller_than_a_step_are_not_reported() {
        let mut s = Speakers::default();
        assert!(s.update(&at(&[("a", 0.30)]), 0.0).changed);
        assert!(!s.update(&at(&[("a", 0.31)]), 200.0).changed);
        assert!(s.update(&at(&[("a", 0.33)]), 400.0).changed);
        assert_eq!(s.voice("a").0, 0.33);
        assert!(s.update(&at(&[("a", 0.0)]), 500.0).changed, "silence shows");
        // Background noise either side of the pause level shows as silence, and moves nothing.
        let mut quiet = Speakers::default();
        for (i, noise) in [0.004, 0.012, 0.006, 0.011, 0.009].into_iter().enumerate() {
            let changes = quiet.update(&at(&[("a", noise)]), 200.0 * i as f64);
            assert!(!changes.changed, "{noise}");
        }
        assert_eq!(quiet.voice("a"), (0.0, false));
        // Garbage in (a NaN from a broken analyser) reads as silence, not as a panic.
        s.update(&at(&[("a", f32::NAN)]), 600.0);
        assert_eq!(s.voice("a").0, 0.0);
    }

    #[test]
    fn the_active_speaker_is_the_first_to_speak_and_stays_while_nobody_speaks() {
        let mut s = Speakers::default();
        let c = s.update(&at(&[("a", 0.0), ("b", 0.0)]), 0.0);
        assert_eq!((c.active, s.active()), (None, None));
        let c = s.update(&at(&[("a", 0.0), ("b", 0.2)]), 200.0);
        assert_eq!(c.active, Some(Some("b".to_owned())));
        run(&mut s, &[("a", 0.0), ("b", 0.0)], 400.0, 5_000.0, "b");
        assert_eq!(s.active(), Some("b"), "sticky through silence");
        // Someone else speaks while b is silent: they take the seat at once.
        let c = s.update(&at(&[("a", 0.05), ("b", 0.0)]), 5_000.0);
        assert_eq!(c.active, Some(Some("a".to_owned())));
    }

    #[test]
    fn a_louder_speaker_takes_the_seat_only_after_the_holder_had_it_for_a_while() {
        let mut s = Speakers::default();
        s.update(&at(&[("a", 0.05), ("b", 0.0)]), 0.0);
        assert_eq!(s.active(), Some("a"));
        // b talks over a, much louder; a keeps the seat for SWITCH_MS.
        let mut switched_at = None;
        let mut t = 200.0;
        while t < 4_000.0 {
            if s.update(&at(&[("a", 0.05), ("b", 0.4)]), t)
                .active
                .is_some()
            {
                switched_at = Some(t);
                break;
            }
            t += 200.0;
        }
        assert_eq!(switched_at, Some(1_600.0));
        assert_eq!(s.active(), Some("b"));
        // A little louder is not enough to take it back.
        let c = run(&mut s, &[("a", 0.5), ("b", 0.4)], 1_800.0, 6_000.0, "a");
        assert!(c.iter().all(|&f| f));
        assert_eq!(s.active(), Some("b"));
    }

    #[test]
    fn the_active_speaker_leaving_hands_the_seat_on_or_clears_it() {
        let mut s = Speakers::default();
        s.update(&at(&[("a", 0.2), ("b", 0.1)]), 0.0);
        assert_eq!(s.active(), Some("a"));
        let c = s.update(&at(&[("b", 0.1)]), 200.0);
        assert_eq!(c.active, Some(Some("b".to_owned())));
        let c = s.update(&at(&[]), 400.0);
        assert_eq!(c.active, Some(None));
        assert!(c.changed, "b's entry went");
        assert_eq!(s.voice("b"), (0.0, false));
    }
}
