//! Readiness facts shared by the actors and read by `/readyz`: whether a token is held,
//! whether — through each channel's [`Liveness`] — the channel is subscribed and its
//! socket open and fresh, and which outputs (sinks, the state directory) are failing and
//! why. Each actor or output sets only its own fact.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

#[derive(Debug, Default)]
pub struct Health {
    token_ok: AtomicBool,
    /// Why the token cannot be had, when the reason is the configuration.
    token_problem: Mutex<Option<String>>,
    /// Failing outputs, by name (`sink /var/lib/…`, `state directory /var/lib/…`): why.
    degraded: Mutex<BTreeMap<String, String>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Health {
    pub fn token_obtained(&self) {
        self.token_ok.store(true, Ordering::Release);
        *lock(&self.token_problem) = None;
    }

    pub fn token_failed(&self, problem: Option<String>) {
        self.token_ok.store(false, Ordering::Release);
        *lock(&self.token_problem) = problem;
    }

    /// `output` is failing (`Some(why)`) or works again (`None`). The stream goes on
    /// either way; readiness says so.
    pub fn output(&self, output: &str, problem: Option<String>) {
        let mut degraded = lock(&self.degraded);
        match problem {
            Some(problem) => degraded.insert(output.to_owned(), problem),
            None => degraded.remove(output),
        };
    }

    /// What is failing now, `output: why` joined with `; `, if anything.
    pub fn degraded(&self) -> Option<String> {
        let degraded = lock(&self.degraded);
        (!degraded.is_empty()).then(|| {
            degraded.iter().map(|(output, why)| format!("{output}: {why}")).collect::<Vec<_>>().join("; ")
        })
    }

    /// Ready = every channel subscribed, its socket open and a frame seen on it within
    /// `stale_timeout`, and every output writing. `Err` says why not, in words an operator
    /// can act on (naming the channel when there are several).
    pub fn readiness<L: std::ops::Deref<Target = Liveness>>(
        &self,
        channels: &[L],
        stale_timeout: Duration,
    ) -> Result<(), String> {
        if !self.token_ok.load(Ordering::Acquire) {
            let problem = lock(&self.token_problem).clone();
            return Err(match problem {
                Some(problem) => format!("no access token: {problem}"),
                None => "no access token yet".into(),
            });
        }
        for (index, liveness) in channels.iter().enumerate() {
            let named = |why: String| match channels.len() {
                1 => why,
                _ => format!("channel {index}: {why}"),
            };
            if !liveness.subscribed() {
                return Err(named("not subscribed".into()));
            }
            if liveness.open_generation().is_none() {
                return Err(named("streaming socket not connected".into()));
            }
            let silent = liveness.since_last_frame();
            if silent >= stale_timeout {
                return Err(named(format!("no frame for {}s", silent.as_secs())));
            }
        }
        if let Some(degraded) = self.degraded() {
            return Err(format!("degraded (still streaming): {degraded}"));
        }
        Ok(())
    }
}

/// Facts about one channel that the HeartbeatActor and `/readyz` read without a message
/// per frame: whether it is subscribed, which socket generation is open (0 = none) and
/// when the last frame arrived.
#[derive(Debug)]
pub struct Liveness {
    epoch: Instant,
    subscribed: AtomicBool,
    open_generation: AtomicU64,
    last_frame_ms: AtomicU64,
}

impl Default for Liveness {
    fn default() -> Self {
        Liveness {
            epoch: Instant::now(),
            subscribed: AtomicBool::new(false),
            open_generation: AtomicU64::new(0),
            last_frame_ms: AtomicU64::new(0),
        }
    }
}

impl Liveness {
    pub fn set_subscribed(&self, subscribed: bool) {
        self.subscribed.store(subscribed, Ordering::Release);
    }

    pub fn subscribed(&self) -> bool {
        self.subscribed.load(Ordering::Acquire)
    }

    pub fn opened(&self, generation: u64) {
        self.frame_seen();
        self.open_generation.store(generation, Ordering::Release);
    }

    pub fn closed(&self, generation: u64) {
        let _ = self.open_generation.compare_exchange(generation, 0, Ordering::AcqRel, Ordering::Acquire);
    }

    pub fn frame_seen(&self) {
        self.last_frame_ms.store(self.epoch.elapsed().as_millis() as u64, Ordering::Release);
    }

    /// The open socket's generation, if one is open.
    pub fn open_generation(&self) -> Option<u64> {
        match self.open_generation.load(Ordering::Acquire) {
            0 => None,
            generation => Some(generation),
        }
    }

    pub fn since_last_frame(&self) -> Duration {
        let last = Duration::from_millis(self.last_frame_ms.load(Ordering::Acquire));
        self.epoch.elapsed().saturating_sub(last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_needs_every_fact() {
        let health = Health::default();
        let liveness = [&Liveness::default()];
        let timeout = Duration::from_secs(30);
        assert_eq!(health.readiness(&liveness, timeout), Err("no access token yet".into()));
        health.token_failed(Some("client rejected".into()));
        assert_eq!(health.readiness(&liveness, timeout), Err("no access token: client rejected".into()));
        health.token_obtained();
        assert_eq!(health.readiness(&liveness, timeout), Err("not subscribed".into()));
        liveness[0].set_subscribed(true);
        assert_eq!(health.readiness(&liveness, timeout), Err("streaming socket not connected".into()));
        liveness[0].opened(1);
        assert_eq!(health.readiness(&liveness, timeout), Ok(()));
        assert!(health.readiness(&liveness, Duration::ZERO).unwrap_err().starts_with("no frame for"));
    }

    #[test]
    fn readiness_needs_every_channel_and_names_the_one_that_is_not() {
        let health = Health::default();
        health.token_obtained();
        let channels: Vec<Liveness> = (0..3).map(|_| Liveness::default()).collect();
        for channel in &channels {
            channel.set_subscribed(true);
            channel.opened(1);
        }
        let refs: Vec<&Liveness> = channels.iter().collect();
        assert_eq!(health.readiness(&refs, Duration::from_secs(30)), Ok(()));
        channels[1].closed(1);
        assert_eq!(
            health.readiness(&refs, Duration::from_secs(30)),
            Err("channel 1: streaming socket not connected".into())
        );
        channels[2].set_subscribed(false);
        channels[1].opened(2);
        assert_eq!(health.readiness(&refs, Duration::from_secs(30)), Err("channel 2: not subscribed".into()));
    }

    #[test]
    fn a_failing_output_is_named_until_it_recovers() {
        let health = Health::default();
        let liveness = [&Liveness::default()];
        health.token_obtained();
        liveness[0].set_subscribed(true);
        liveness[0].opened(1);
        health.output("sink /x.jsonl", Some("No space left on device".into()));
        health.output("state directory /s", Some("Read-only file system".into()));
        assert_eq!(
            health.readiness(&liveness, Duration::from_secs(30)),
            Err("degraded (still streaming): sink /x.jsonl: No space left on device; \
                 state directory /s: Read-only file system"
                .into())
        );
        health.output("sink /x.jsonl", None);
        health.output("state directory /s", None);
        assert_eq!(health.readiness(&liveness, Duration::from_secs(30)), Ok(()));
    }

    #[test]
    fn liveness_tracks_the_open_generation_only() {
        let liveness = Liveness::default();
        assert_eq!(liveness.open_generation(), None);
        liveness.opened(3);
        liveness.closed(2); // a stale close from an older socket changes nothing
        assert_eq!(liveness.open_generation(), Some(3));
        liveness.closed(3);
        assert_eq!(liveness.open_generation(), None);
    }
}
