//! A token bucket: `burst` messages at once, refilled at `rate` per second.

/// Remaining budget and when it was last refilled.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenBucket {
    tokens: f64,
    updated_ms: i64,
}

impl TokenBucket {
    /// A bucket holding its whole burst.
    pub fn full(burst: f64, now_ms: i64) -> Self {
        Self {
            tokens: burst,
            updated_ms: now_ms,
        }
    }

    /// The tokens held at `now_ms`, refilled since the last update (at most `burst`).
    fn tokens_at(&self, now_ms: i64, rate: f64, burst: f64) -> f64 {
        let elapsed = (now_ms - self.updated_ms).max(0) as f64 / 1000.0;
        (self.tokens + elapsed * rate).min(burst)
    }

    /// Brings the bucket up to `now_ms`.
    fn refill(&mut self, now_ms: i64, rate: f64, burst: f64) {
        self.tokens = self.tokens_at(now_ms, rate, burst);
        self.updated_ms = now_ms.max(self.updated_ms);
    }

    /// True when the bucket has refilled to its whole burst by `now_ms` (nothing to remember).
    pub fn is_full(&self, now_ms: i64, rate: f64, burst: f64) -> bool {
        self.tokens_at(now_ms, rate, burst) >= burst
    }

    /// Puts back a token taken for something that did not happen.
    pub fn refund(&mut self, now_ms: i64, rate: f64, burst: f64) {
        self.refill(now_ms, rate, burst);
        self.tokens = (self.tokens + 1.0).min(burst);
    }

    /// Takes one token, or says in how many whole seconds one will be available.
    pub fn try_take(&mut self, now_ms: i64, rate: f64, burst: f64) -> Result<(), u64> {
        self.refill(now_ms, rate, burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else if rate > 0.0 {
            Err(((1.0 - self.tokens) / rate).ceil().max(1.0) as u64)
        } else {
            Err(u64::MAX)
        }
    }
}

/// `peer-reset`s one peer may send one other, sustained, per second: each makes the
/// recipient rebuild its connection, which browsers cap.
pub const RESET_RATE: f64 = 1.0 / 3.0;
/// `peer-reset`s one peer may send one other at once.
pub const RESET_BURST: f64 = 3.0;
/// Recipients whose reset budget is kept per sender (the oldest is forgotten past it).
pub const MAX_RESET_TARGETS: usize = 64;

/// Takes one `peer-reset` from a sender's budget towards `to`, its budgets per recipient in
/// `resets`; or says in how many seconds one will be available. Past
/// [`MAX_RESET_TARGETS`] recipients, only a budget that has refilled may be forgotten: resets
/// to made-up ids must not free a real target's.
pub fn try_reset(
    resets: &mut Vec<(String, TokenBucket)>,
    to: &str,
    now_ms: i64,
) -> Result<(), u64> {
    let at = match resets.iter().position(|(p, _)| p == to) {
        Some(at) => at,
        None => {
            if resets.len() >= MAX_RESET_TARGETS {
                resets.retain(|(_, b)| !b.is_full(now_ms, RESET_RATE, RESET_BURST));
                if resets.len() >= MAX_RESET_TARGETS {
                    return Err(3);
                }
            }
            resets.push((to.to_owned(), TokenBucket::full(RESET_BURST, now_ms)));
            resets.len() - 1
        }
    };
    resets[at].1.try_take(now_ms, RESET_RATE, RESET_BURST)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_allowed_then_refused_with_a_retry_time() {
        let mut bucket = TokenBucket::full(3.0, 0);
        for _ in 0..3 {
            assert_eq!(bucket.try_take(0, 1.0, 3.0), Ok(()));
        }
        assert_eq!(bucket.try_take(0, 1.0, 3.0), Err(1));
    }

    #[test]
    fn tokens_refill_at_the_rate_and_never_beyond_the_burst() {
        let mut bucket = TokenBucket::full(2.0, 0);
        assert!(bucket.try_take(0, 10.0, 2.0).is_ok());
        assert!(bucket.try_take(0, 10.0, 2.0).is_ok());
        assert!(bucket.try_take(0, 10.0, 2.0).is_err());
        assert!(
            bucket.try_take(100, 10.0, 2.0).is_ok(),
            "100 ms at 10/s refills one"
        );
        assert!(bucket.try_take(100, 10.0, 2.0).is_err());
        // An hour idle refills only up to the burst.
        for _ in 0..2 {
            assert!(bucket.try_take(3_600_000, 10.0, 2.0).is_ok());
        }
        assert!(bucket.try_take(3_600_000, 10.0, 2.0).is_err());
    }

    #[test]
    fn a_clock_going_backwards_does_not_mint_tokens() {
        let mut bucket = TokenBucket::full(1.0, 1_000);
        assert!(bucket.try_take(1_000, 1.0, 1.0).is_ok());
        assert!(bucket.try_take(0, 1.0, 1.0).is_err());
    }
}
