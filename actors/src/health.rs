//! Readiness facts shared by the actors and read by `/readyz`: whether a token is held,
//! whether the subscription is in place, whether — through [`Liveness`] — a socket is
//! open and fresh, and which outputs (sinks, the state directory) are failing and why.
//! Each actor or output sets only its own fact.

use crate::connection::Liveness;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

#[derive(Debug, Default)]
pub struct Health {
    token_ok: AtomicBool,
    subscribed: AtomicBool,
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

    pub fn set_subscribed(&self, subscribed: bool) {
        self.subscribed.store(subscribed, Ordering::Release);
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

    /// Ready = subscribed, a socket open, a frame seen within `stale_timeout`, and every
    /// output writing. `Err` says why not, in words an operator can act on.
    pub fn readiness(&self, liveness: &Liveness, stale_timeout: Duration) -> Result<(), String> {
        if !self.token_ok.load(Ordering::Acquire) {
            let problem = lock(&self.token_problem).clone();
            return Err(match problem {
                Some(problem) => format!("no access token: {problem}"),
                None => "no access token yet".into(),
            });
        }
        if !self.subscribed.load(Ordering::Acquire) {
            return Err("not subscribed".into());
        }
        if liveness.open_generation().is_none() {
            return Err("streaming socket not connected".into());
        }
        let silent = liveness.since_last_frame();
        if silent >= stale_timeout {
            return Err(format!("no frame for {}s", silent.as_secs()));
        }
        if let Some(degraded) = self.degraded() {
            return Err(format!("degraded (still streaming): {degraded}"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_needs_every_fact() {
        let health = Health::default();
        let liveness = Liveness::default();
        let timeout = Duration::from_secs(30);
        assert_eq!(health.readiness(&liveness, timeout), Err("no access token yet".into()));
        health.token_failed(Some("client rejected".into()));
        assert_eq!(health.readiness(&liveness, timeout), Err("no access token: client rejected".into()));
        health.token_obtained();
        assert_eq!(health.readiness(&liveness, timeout), Err("not subscribed".into()));
        health.set_subscribed(true);
        assert_eq!(health.readiness(&liveness, timeout), Err("streaming socket not connected".into()));
        liveness.opened(1);
        assert_eq!(health.readiness(&liveness, timeout), Ok(()));
        assert!(health.readiness(&liveness, Duration::ZERO).unwrap_err().starts_with("no frame for"));
    }

    #[test]
    fn a_failing_output_is_named_until_it_recovers() {
        let health = Health::default();
        let liveness = Liveness::default();
        health.token_obtained();
        health.set_subscribed(true);
        liveness.opened(1);
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
}
