//! Exponential backoff with jitter, capped, never giving up; reset on success.

use rand::Rng;
use std::time::Duration;

/// How an actor waits between retries: from `initial`, doubling, capped at `max`. One
/// setting (`reconnect.initial_backoff`, `reconnect.max_backoff`) shared by every actor
/// that retries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackoffPolicy {
    pub initial: Duration,
    pub max: Duration,
}

impl BackoffPolicy {
    /// A fresh backoff, at its first step.
    pub fn start(&self) -> Backoff {
        Backoff::new(self.initial, self.max)
    }
}

#[derive(Clone, Debug)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff { initial, max: max.max(initial), attempt: 0 }
    }

    /// The next delay: the exponential step `initial · 2^attempt` (capped at `max`), of
    /// which the upper half is jittered so that many clients do not retry in lockstep.
    pub fn next_delay(&mut self, rng: &mut impl Rng) -> Duration {
        let step = self.initial.saturating_mul(1u32 << self.attempt.min(20)).min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        let half = step / 2;
        half + half.mul_f64(rng.random::<f64>())
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    pub fn attempts(&self) -> u32 {
        self.attempt
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn grows_jittered_within_bounds_caps_and_resets() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        let delays: Vec<Duration> = (0..12).map(|_| backoff.next_delay(&mut rng)).collect();
        for (attempt, delay) in delays.iter().enumerate() {
            let step = Duration::from_millis(100 * (1 << attempt.min(20))).min(Duration::from_secs(5));
            assert!(
                *delay >= step / 2 && *delay <= step,
                "attempt {attempt}: {delay:?} outside [{:?}, {step:?}]",
                step / 2
            );
        }
        assert!(delays[11] >= Duration::from_millis(2500), "capped at max, not below half of it");
        backoff.reset();
        assert!(backoff.next_delay(&mut rng) <= Duration::from_millis(100));
    }
}
