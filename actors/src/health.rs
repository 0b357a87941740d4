//! Readiness facts shared by the actors and read by `/readyz`: whether a token is held,
//! whether the subscription is in place, and — through [`Liveness`] — whether a socket is
//! open and fresh. Each actor sets only its own fact.

use crate::connection::Liveness;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

#[derive(Debug, Default)]
pub struct Health {
    token_ok: AtomicBool,
    subscribed: AtomicBool,
    /// Why the token cannot be had, when the reason is the configuration.
    token_problem: Mutex<Option<String>>,
}

impl Health {
    pub fn token_obtained(&self) {
        self.token_ok.store(true, Ordering::Release);
        *self.token_problem.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    pub fn token_failed(&self, problem: Option<String>) {
        self.token_ok.store(false, Ordering::Release);
        *self.token_problem.lock().unwrap_or_else(|p| p.into_inner()) = problem;
    }

    pub fn set_subscribed(&self, subscribed: bool) {
        self.subscribed.store(subscribed, Ordering::Release);
    }

    /// Ready = subscribed, a socket open, and a frame seen within `stale_timeout`.
    /// `Err` says why not, in words an operator can act on.
    pub fn readiness(&self, liveness: &Liveness, stale_timeout: Duration) -> Result<(), String> {
        if !self.token_ok.load(Ordering::Acquire) {
            let problem = self.token_problem.lock().unwrap_or_else(|p| p.into_inner()).clone();
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
}
