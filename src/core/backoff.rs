//! Retry delays for failed signaling requests: exponential with full jitter, capped.

/// Exponential backoff with jitter.
///
/// Delay `n` (from 0) is drawn uniformly from `[base * 2^n / 2, base * 2^n]`, capped at `max`,
/// so clients that failed together do not retry together.
#[derive(Debug, Clone, PartialEq)]
pub struct Backoff {
    base_ms: f64,
    max_ms: f64,
    attempt: u32,
}

impl Backoff {
    /// Delays start near `base_ms` and never exceed `max_ms`.
    pub fn new(base_ms: f64, max_ms: f64) -> Self {
        Self {
            base_ms: base_ms.max(1.0),
            max_ms: max_ms.max(base_ms.max(1.0)),
            attempt: 0,
        }
    }

    /// The delay before the next retry; `random` is uniform in `[0, 1)`.
    pub fn next_delay_ms(&mut self, random: f64) -> u32 {
        let ceiling = (self.base_ms * 2f64.powi(self.attempt.min(30) as i32)).min(self.max_ms);
        self.attempt = self.attempt.saturating_add(1);
        let jittered = ceiling * (0.5 + 0.5 * random.clamp(0.0, 1.0));
        jittered.round() as u32
    }

    /// How many failures in a row so far.
    pub fn failures(&self) -> u32 {
        self.attempt
    }

    /// After a success, start again from `base_ms`.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_from_the_base_and_stop_at_the_cap() {
        let mut backoff = Backoff::new(250.0, 5_000.0);
        let ceilings: Vec<u32> = (0..8).map(|_| backoff.next_delay_ms(1.0)).collect();
        assert_eq!(ceilings, [250, 500, 1000, 2000, 4000, 5000, 5000, 5000]);
    }

    #[test]
    fn jitter_stays_between_half_and_the_whole_ceiling() {
        let mut low = Backoff::new(250.0, 5_000.0);
        let mut high = Backoff::new(250.0, 5_000.0);
        for _ in 0..10 {
            let (l, h) = (low.next_delay_ms(0.0), high.next_delay_ms(0.999));
            assert!(l * 2 >= h - 1 && l <= h, "{l} {h}");
        }
        assert_eq!(Backoff::new(250.0, 5_000.0).next_delay_ms(0.0), 125);
    }

    #[test]
    fn reset_starts_over_and_failures_count() {
        let mut backoff = Backoff::new(100.0, 1_000.0);
        backoff.next_delay_ms(1.0);
        backoff.next_delay_ms(1.0);
        assert_eq!(backoff.failures(), 2);
        backoff.reset();
        assert_eq!(backoff.failures(), 0);
        assert_eq!(backoff.next_delay_ms(1.0), 100);
    }

    #[test]
    fn out_of_range_randomness_and_long_outages_stay_bounded() {
        let mut backoff = Backoff::new(250.0, 5_000.0);
        for _ in 0..1000 {
            let delay = backoff.next_delay_ms(7.0);
            assert!(delay <= 5_000);
        }
        assert!(Backoff::new(250.0, 5_000.0).next_delay_ms(-3.0) >= 125);
    }
}
