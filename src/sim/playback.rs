//! Plays the generator's transitions into the hub at a fixed rate of wall time.
//!
//! Nothing plays until somebody is listening (see [`Hub`]'s playback trigger), so a client
//! that connects after the simulator started misses nothing. After that the loop keeps
//! time on its own: transition `n` is due at `start + n / rate`, and a late wake-up plays
//! everything that has come due at once, so the long-run rate holds even when the timer
//! is coarser than the interval between transitions. Listeners that come and go do not
//! pause it: frames published while nobody listens are lost, as with the real service.
//! Only a test pauses it (`SimHandle::pause`).

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::generator::Generator;
use super::hub::Hub;

/// Most transitions played between two yields to the runtime.
const MAX_BATCH: u64 = 512;

/// `rate` is transitions per second; 0 plays as fast as the machine allows. A pause
/// ([`Hub::set_paused`]) holds playback; the schedule resumes where it stopped.
pub(crate) async fn run(hub: Arc<Hub>, mut generator: Generator, rate: u32) {
    let mut listening = hub.playing();
    if listening.wait_for(|on| *on).await.is_err() {
        return;
    }
    let mut paused = hub.paused();
    let mut started = Instant::now();
    let due =
        |started: Instant, played: u64| started + Duration::from_secs_f64(played as f64 / f64::from(rate));
    let mut played: u64 = 0;
    loop {
        if *paused.borrow_and_update() {
            let held = Instant::now();
            if paused.wait_for(|on| !*on).await.is_err() {
                return;
            }
            started += held.elapsed();
        }
        if rate > 0 {
            tokio::time::sleep_until(due(started, played)).await;
        }
        // Let the sockets' writers run between batches even when playback is behind.
        actix_rt::task::yield_now().await;
        let now = Instant::now();
        let mut batch = 0;
        loop {
            let Some(step) = generator.next() else {
                hub.mark_exhausted();
                return;
            };
            hub.publish(&step);
            played += 1;
            batch += 1;
            if generator.is_exhausted() {
                hub.mark_exhausted();
                return;
            }
            if batch >= MAX_BATCH || (rate > 0 && due(started, played) > now) {
                break;
            }
        }
    }
}
