//! The systemd notify protocol (sd_notify): `READY=1` once settings are loaded and the
//! pipeline (and HTTP) is up, `WATCHDOG=1` at half of `WATCHDOG_USEC` — sent from the
//! actor system's own loop and only while the TimelineActor answers, so a wedged loop
//! stops feeding it and systemd restarts us — `STATUS=` with a one-line state, and
//! `STOPPING=1` on SIGTERM. Every call is a no-op without `NOTIFY_SOCKET`.

use crate::daemon::Probe;
use sd_notify::NotifyState;
use slog::{warn, Logger};

pub fn ready(status: &str, log: &Logger) {
    if let Err(error) = sd_notify::notify(&[NotifyState::Ready, NotifyState::Status(status)]) {
        warn!(log, "cannot notify systemd"; "error" => %error);
    }
}

pub fn stopping(log: &Logger) {
    if let Err(error) = sd_notify::notify(&[NotifyState::Stopping, NotifyState::Status("stopping")]) {
        warn!(log, "cannot notify systemd"; "error" => %error);
    }
}

/// Feed the watchdog while the actor system answers; runs until aborted.
pub fn spawn_watchdog(probe: Probe, log: Logger) -> Option<actix_rt::task::JoinHandle<()>> {
    let period = sd_notify::watchdog_enabled()? / 2;
    Some(actix_rt::spawn(async move {
        let mut interval = actix_rt::time::interval(period);
        loop {
            interval.tick().await;
            if !probe.alive(period).await {
                warn!(log, "actor system did not answer; not feeding the watchdog");
                continue;
            }
            let status = probe.status_line();
            let _ = sd_notify::notify(&[NotifyState::Watchdog, NotifyState::Status(&status)]);
        }
    }))
}
