//! Topics past one channel's 1,000: the daemon spreads them over as many channels as they
//! need, each its own socket, all feeding one timeline; a fault on one channel's socket is
//! healed on that channel alone.

mod common;

use common::*;
use std::collections::BTreeSet;
use std::time::Duration;
use timelined::sim::{Fault, SimConfig};
use timelined_actors::metrics::{ChannelLabels, ReconnectCause};
use timelined_actors::subscription::Shard;
use timelined_actors::wire::Dialect;

const QUEUES: usize = 2_500;

fn queues() -> Vec<String> {
    (0..QUEUES).map(|i| format!("6f1c{i:04}-0000-4000-8000-00000000beef")).collect()
}

/// 2,500 queues in one instance: three channels (1,000 + 1,000 + 500 topics), every truth
/// conversation equal to the daemon's timeline. Then channel 1's socket is dropped: it
/// reconnects and heals what it missed, and no conversation channel 1 never carried is
/// marked with a gap or backfilled.
#[actix_rt::test]
async fn twenty_five_hundred_queues_stream_on_three_channels_and_a_fault_heals_one() {
    let queues = queues();
    let config = SimConfig {
        seed: 25,
        conversations: 400,
        rate: 600,
        concurrency: 120,
        queues: queues.clone(),
        ..SimConfig::default()
    };
    let fixture = Fixture::start(config, Dialect::Notifications, |settings| {
        settings.subscription.queues = queues.clone();
    })
    .await;
    let channels = fixture.daemon.channels.len();
    assert_eq!(channels, 3, "2,500 topics need three channels");
    fixture.streaming().await;
    let subscribed = fixture.sim.requests().iter().filter(|r| r.contains("/subscriptions")).count();
    assert!(subscribed >= 3, "each channel subscribed: {subscribed} subscription calls");

    // Channel 1 holds queues 1,000 to 1,999, in the order configured.
    let channel_one: BTreeSet<&String> = queues[1_000..2_000].iter().collect();
    let topic = format!("v2.routing.queues.{}.conversations", queues[1_500]);
    wait_until("a quarter of the conversations to close", Duration::from_secs(60), || {
        read_jsonl(&fixture.sink).len() >= 100
    })
    .await;
    fixture.sim.fault(Fault::DropChannelSocket { topic }).unwrap();
    let gaps = |channel| fixture.daemon.metrics.socket_gaps.get_or_create(&ChannelLabels { channel }).get();
    wait_until("channel 1 to reconnect and report its gap", Duration::from_secs(20), || gaps(1) >= 1).await;

    let (closed, truth, hidden) = fixture.finish().await;
    let healed = assert_truth_or_healed("three channels", &closed, &truth, &hidden);
    assert_eq!(fixture.daemon.readiness(), Ok(()), "every channel streaming at the end");
    assert_eq!((gaps(0), gaps(2)), (0, 0), "the other channels had no outage");
    assert!(fixture.reconnects(ReconnectCause::Dropped) >= 1);
    let on_channel_one = |record: &timelined_actors::record::TimelineRecord| {
        record.participants.iter().any(|p| p.queue_id.as_ref().is_some_and(|q| channel_one.contains(q)))
    };
    let stray: Vec<&str> = closed
        .iter()
        .filter(|r| (r.gaps > 0 || r.healed) && !on_channel_one(r))
        .map(|r| r.conversation_id.as_str())
        .collect();
    assert!(stray.is_empty(), "gaps on conversations channel 1 never carried: {stray:?}");
    assert!(
        hidden.iter().all(|id| closed.iter().any(|r| &r.conversation_id == id && on_channel_one(r))),
        "the simulator hid frames only of channel 1's conversations"
    );
    // What was backfilled over REST: channel 1's conversations, and no other.
    let backfilled: BTreeSet<String> = fixture
        .sim
        .requests()
        .iter()
        .filter_map(|r| r.split_once("/api/v2/conversations/").map(|(_, id)| id.to_owned()))
        .collect();
    assert!(!backfilled.is_empty(), "channel 1's open conversations were backfilled");
    let elsewhere: Vec<&String> = backfilled
        .iter()
        .filter(|id| !closed.iter().any(|r| &&r.conversation_id == id && on_channel_one(r)))
        .collect();
    assert!(elsewhere.is_empty(), "backfilled conversations channel 1 never carried: {elsewhere:?}");
    println!(
        "three channels: {} conversations; the fault on channel 1 hid frames of {}; {} backfilled, \
         {healed} healed",
        closed.len(),
        hidden.len(),
        backfilled.len()
    );
    fixture.stop().await;
}

/// Two instances on the same topics with `shard = "0/2"` and `"1/2"`: each subscribes to
/// its share only, the shares do not overlap, and together the two sinks hold every truth
/// conversation exactly once, equal to the truth.
#[actix_rt::test]
async fn two_shards_together_hold_every_conversation_once() {
    install_crypto();
    let queues: Vec<String> = queues().into_iter().take(40).collect();
    let config =
        SimConfig { seed: 27, conversations: 300, rate: 800, queues: queues.clone(), ..SimConfig::default() };
    let sim = simulator(config).await;
    let dir = tempfile::tempdir().unwrap();
    let mut daemons = Vec::new();
    let mut sinks = Vec::new();
    for shard in ["0/2", "1/2"] {
        let sink = temp_path(&dir, &format!("shard-{}.jsonl", &shard[..1]));
        let mut settings = settings_for(&sim, Dialect::Notifications, &sink);
        settings.subscription.queues = queues.clone();
        settings.subscription.shard = Some(shard.into());
        settings.validate().unwrap();
        let share = settings.channels().unwrap().remove(0).queues;
        assert!(!share.is_empty() && share.len() < queues.len(), "{shard} takes a share: {}", share.len());
        daemons.push(timelined::daemon::Daemon::start(&settings, quiet_logger()).unwrap());
        sinks.push(sink);
    }
    wait_until("every conversation in one of the sinks", Duration::from_secs(90), || {
        sim.finished() && sinks.iter().map(|s| read_jsonl(s).len()).sum::<usize>() >= sim.truth().len()
    })
    .await;
    let per_shard: Vec<Vec<timelined_actors::record::TimelineRecord>> =
        sinks.iter().map(|s| read_jsonl(s)).collect();
    assert!(per_shard.iter().all(|records| !records.is_empty()), "both instances wrote timelines");
    let together: Vec<_> = per_shard.concat();
    let ids: BTreeSet<&str> = together.iter().map(|r| r.conversation_id.as_str()).collect();
    assert_eq!(ids.len(), together.len(), "no conversation in both shards");
    assert_same_timelines("two shards", &by_id(together.clone()), &by_id(sim.truth()));
    println!("two shards: {} + {} conversations", per_shard[0].len(), per_shard[1].len());
    let by_shard =
        |id: &str| per_shard.iter().position(|records| records.iter().any(|r| r.conversation_id == id));
    let owners_agree = together.iter().all(|record| {
        let queue = record.participants.iter().find_map(|p| p.queue_id.as_deref());
        queue.is_none_or(|queue| by_shard(&record.conversation_id) == Some(Shard::owner(2, queue) as usize))
    });
    assert!(owners_agree, "each conversation was written by the instance its queue's hash names");
    for daemon in daemons {
        daemon.shutdown().await;
    }
    sim.stop().await;
}
