//! Exponential back-off with full jitter, shared by consumers and the outbox relay so that a
//! failing dependency is not hammered in lock-step by every replica.

use std::time::Duration;

use rand::Rng;

#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_millis(100),
            max: Duration::from_secs(30),
        }
    }
}

impl Backoff {
    /// The delay before attempt `attempt + 1`, after `attempt` failures (1-based): a random
    /// duration in `[cap/2, cap]` where `cap = min(max, base * 2^(attempt-1))`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(20);
        let cap = self.base.saturating_mul(1 << exponent).min(self.max);
        let half = cap / 2;
        let jitter_ms = rand::rng().random_range(0..=half.as_millis().max(1) as u64);
        half + Duration::from_millis(jitter_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_stay_under_the_cap() {
        let backoff = Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_secs(2),
        };
        for _ in 0..100 {
            let first = backoff.delay(1);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(101));
            let late = backoff.delay(30);
            assert!(late >= Duration::from_secs(1) && late <= Duration::from_millis(2001));
        }
    }
}
