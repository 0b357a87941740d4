//! The daemon's metrics: one owned `prometheus-client` registry per daemon (no global),
//! names and labels as the README lists them. Label values are closed enums; every
//! `events_dropped_total{stage,reason}` series exists at 0 from start-up so a `rate()`
//! alert can fire on the very first drop.

use crate::wire::MalformedReason;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::fmt::Write;
use std::sync::atomic::AtomicU64;

/// A closed set of label values, rendered in snake_case.
macro_rules! label_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl EncodeLabelValue for $name {
            fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
                encoder.write_str(self.as_str())
            }
        }
    };
}

label_enum!(
    /// A hop of the pipeline, named by the mailbox it delivers into.
    Stage { Timeline => "timeline", Log => "log", Sink => "sink", Feed => "feed" }
);

label_enum!(
    /// `output_failed`: a closed timeline a sink could not write, hold or spill.
    DropReason { MailboxFull => "mailbox_full", ReceiverGone => "receiver_gone", OutputFailed => "output_failed" }
);

label_enum!(
    /// What the daemon writes to disk: a JSONL sink, or the state directory (checkpoints).
    OutputKind { Sink => "sink", State => "state" }
);

label_enum!(
    /// Why a socket was replaced: `closed` (the server sent a Close), `dropped` (the
    /// connection ended without one), `error` (a read error, e.g. a frame over the limit),
    /// `stale` (nothing within the stale timeout), `channel_gone` (upgrade refused or the
    /// channel revoked), `connect_failed` (could not connect), `rotation` (a planned,
    /// make-before-break replacement).
    ReconnectCause {
        Closed => "closed",
        Dropped => "dropped",
        Error => "error",
        Stale => "stale",
        ChannelGone => "channel_gone",
        ConnectFailed => "connect_failed",
        Rotation => "rotation",
    }
);

label_enum!(
    TokenOutcome {
        Ok => "ok",
        RateLimited => "rate_limited",
        Rejected => "rejected",
        ServerError => "server_error",
        NetworkError => "network_error",
    }
);

label_enum!(
    BackfillOutcome { Ok => "ok", NotFound => "not_found", RateLimited => "rate_limited", Error => "error" }
);

impl EncodeLabelValue for MalformedReason {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DropLabels {
    pub stage: Stage,
    pub reason: DropReason,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MalformedLabels {
    pub reason: MalformedReason,
}

label_enum!(
    /// A bound on memory that outside input can reach: `participants` (past
    /// `pipeline.max_participants`, refused), `open_conversations` (past
    /// `pipeline.max_open_conversations`, the least recently active closed incomplete),
    /// `feed_clients` (past `http.max_feed_clients`, a `/feed` client refused with 503).
    Limit { Participants => "participants", OpenConversations => "open_conversations", FeedClients => "feed_clients" }
);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LimitLabels {
    pub limit: Limit,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CauseLabels {
    pub cause: ReconnectCause,
}

/// One notification channel (its socket), by index from 0.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChannelLabels {
    pub channel: usize,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TokenLabels {
    pub outcome: TokenOutcome,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BackfillLabels {
    pub outcome: BackfillOutcome,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutputLabels {
    pub output: OutputKind,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClosedLabels {
    pub complete: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    pub version: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActorLabels {
    pub actor: Stage,
}

/// Every metric of one daemon. Cheap to read from any thread.
pub struct Metrics {
    registry: Registry,
    pub frames_received: Counter,
    pub events_received: Counter,
    pub events_dropped: Family<DropLabels, Counter>,
    pub malformed_frames: Family<MalformedLabels, Counter>,
    pub reconnects: Family<CauseLabels, Counter>,
    pub connection_up: Family<ChannelLabels, Gauge>,
    /// Outages healed (a lost, stalled or restarted socket), by channel.
    pub socket_gaps: Family<ChannelLabels, Counter>,
    pub heartbeat_rtt_seconds: Gauge<f64, AtomicU64>,
    /// Sockets that left a ping unanswered for a whole ping interval, then answered.
    pub stream_stalls: Counter,
    pub token_refreshes: Family<TokenLabels, Counter>,
    pub open_conversations: Gauge,
    pub timelines_closed: Family<ClosedLabels, Counter>,
    pub late_events: Counter,
    pub duplicate_events: Counter,
    pub backfills: Family<BackfillLabels, Counter>,
    pub gaps: Counter,
    pub mailbox_depth: Family<ActorLabels, Gauge>,
    /// Seconds since the Unix epoch of the last frame received (0 before the first).
    pub last_frame_timestamp_seconds: Gauge<f64, AtomicU64>,
    /// Events each actor took from its mailbox (offered = delivered + dropped).
    pub delivered: Family<ActorLabels, Counter>,
    /// Failed writes to disk (each attempt), by output.
    pub output_errors: Family<OutputLabels, Counter>,
    /// Closed timelines held (in memory or spilled) for a failing sink.
    pub output_held: Family<OutputLabels, Gauge>,
    /// Each time a bound on memory refused or evicted something, by bound.
    pub limits_enforced: Family<LimitLabels, Counter>,
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("timelined");
        let metrics = Metrics {
            frames_received: Counter::default(),
            events_received: Counter::default(),
            events_dropped: Family::default(),
            malformed_frames: Family::default(),
            reconnects: Family::default(),
            connection_up: Family::default(),
            socket_gaps: Family::default(),
            heartbeat_rtt_seconds: Gauge::default(),
            stream_stalls: Counter::default(),
            token_refreshes: Family::default(),
            open_conversations: Gauge::default(),
            timelines_closed: Family::default(),
            late_events: Counter::default(),
            duplicate_events: Counter::default(),
            backfills: Family::default(),
            gaps: Counter::default(),
            mailbox_depth: Family::default(),
            last_frame_timestamp_seconds: Gauge::default(),
            delivered: Family::default(),
            output_errors: Family::default(),
            limits_enforced: Family::default(),
            output_held: Family::default(),
            registry: Registry::default(),
        };
        for &stage in Stage::ALL {
            for &reason in DropReason::ALL {
                drop(metrics.events_dropped.get_or_create(&DropLabels { stage, reason }));
            }
            drop(metrics.mailbox_depth.get_or_create(&ActorLabels { actor: stage }));
            drop(metrics.delivered.get_or_create(&ActorLabels { actor: stage }));
        }
        for &output in OutputKind::ALL {
            drop(metrics.output_errors.get_or_create(&OutputLabels { output }));
        }
        drop(metrics.output_held.get_or_create(&OutputLabels { output: OutputKind::Sink }));
        for reason in MalformedReason::ALL {
            drop(metrics.malformed_frames.get_or_create(&MalformedLabels { reason }));
        }
        for &limit in Limit::ALL {
            drop(metrics.limits_enforced.get_or_create(&LimitLabels { limit }));
        }
        for &cause in ReconnectCause::ALL {
            drop(metrics.reconnects.get_or_create(&CauseLabels { cause }));
        }
        for &outcome in TokenOutcome::ALL {
            drop(metrics.token_refreshes.get_or_create(&TokenLabels { outcome }));
        }
        for &outcome in BackfillOutcome::ALL {
            drop(metrics.backfills.get_or_create(&BackfillLabels { outcome }));
        }
        for complete in ["true", "false"] {
            drop(metrics.timelines_closed.get_or_create(&ClosedLabels { complete }));
        }
        let r = &mut registry;
        r.register("frames_received", "WebSocket frames received", metrics.frames_received.clone());
        r.register("events_received", "Join/leave events decoded", metrics.events_received.clone());
        r.register(
            "events_dropped",
            "Events dropped at a full or gone mailbox",
            metrics.events_dropped.clone(),
        );
        r.register(
            "malformed_frames",
            "Frames or fields rejected as bad input",
            metrics.malformed_frames.clone(),
        );
        r.register("reconnects", "WebSocket reconnects by cause", metrics.reconnects.clone());
        r.register(
            "connection_up",
            "1 while the channel's streaming socket is open",
            metrics.connection_up.clone(),
        );
        r.register(
            "socket_gaps",
            "Outages of a channel's stream (lost, stalled, or the daemon restarted) whose conversations \
             are backfilled",
            metrics.socket_gaps.clone(),
        );
        r.register(
            "heartbeat_rtt_seconds",
            "Round-trip time of the last ping",
            metrics.heartbeat_rtt_seconds.clone(),
        );
        r.register(
            "interned_strings_refused",
            "Purposes, media, user and queue ids from outside not kept: longer than \
             pipeline.max_interned_bytes, or new while pipeline.max_interned_strings are kept",
            crate::compact::Symbol::refused(),
        );
        r.register(
            "stream_stalls",
            "Streaming sockets that stalled (a ping unanswered for a whole interval) and then resumed; \
             what they carried meanwhile may be lost, so open timelines are backfilled",
            metrics.stream_stalls.clone(),
        );
        r.register("token_refreshes", "OAuth token requests by outcome", metrics.token_refreshes.clone());
        r.register("open_conversations", "Timelines currently open", metrics.open_conversations.clone());
        r.register("timelines_closed", "Timelines closed", metrics.timelines_closed.clone());
        r.register("late_events", "Events published after a later one", metrics.late_events.clone());
        r.register("duplicate_events", "Events already seen (fingerprint)", metrics.duplicate_events.clone());
        r.register("backfills", "REST backfills by outcome", metrics.backfills.clone());
        r.register("gaps", "Conversations marked with a gap", metrics.gaps.clone());
        r.register("mailbox_depth", "Messages queued per actor mailbox", metrics.mailbox_depth.clone());
        r.register(
            "last_frame_timestamp_seconds",
            "Unix time of the last frame received",
            metrics.last_frame_timestamp_seconds.clone(),
        );
        r.register("delivered", "Events taken from each actor's mailbox", metrics.delivered.clone());
        r.register(
            "limits_enforced",
            "Times a bound on memory refused or evicted something (participants past \
             pipeline.max_participants, …); what it cost is marked on the timeline",
            metrics.limits_enforced.clone(),
        );
        r.register(
            "output_errors",
            "Failed writes to a sink or the state directory (each attempt)",
            metrics.output_errors.clone(),
        );
        r.register(
            "output_held",
            "Closed timelines held for a failing sink, written once it recovers",
            metrics.output_held.clone(),
        );
        let build_info: Family<BuildLabels, Gauge> = Family::default();
        build_info.get_or_create(&BuildLabels { version: env!("CARGO_PKG_VERSION") }).set(1);
        r.register("build_info", "Version of the running binary (value 1)", build_info);
        let start_time: Gauge<f64, AtomicU64> = Gauge::default();
        start_time.set(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
        );
        r.register("process_start_time_seconds", "Unix time the process started", start_time);
        Metrics { registry, ..metrics }
    }

    /// Prometheus/OpenMetrics text of every metric.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }

    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    pub fn dropped(&self, stage: Stage, reason: DropReason) -> u64 {
        self.events_dropped.get_or_create(&DropLabels { stage, reason }).get()
    }

    pub fn dropped_total(&self) -> u64 {
        Stage::ALL
            .iter()
            .flat_map(|&stage| DropReason::ALL.iter().map(move |&reason| self.dropped(stage, reason)))
            .sum()
    }

    pub fn malformed(&self, reason: MalformedReason) -> u64 {
        self.malformed_frames.get_or_create(&MalformedLabels { reason }).get()
    }

    pub fn reconnects_total(&self) -> u64 {
        ReconnectCause::ALL
            .iter()
            .map(|&cause| self.reconnects.get_or_create(&CauseLabels { cause }).get())
            .sum()
    }

    pub fn closed(&self, complete: bool) -> u64 {
        let complete = if complete { "true" } else { "false" };
        self.timelines_closed.get_or_create(&ClosedLabels { complete }).get()
    }

    pub fn output_error(&self, output: OutputKind) {
        self.output_errors.get_or_create(&OutputLabels { output }).inc();
    }

    pub fn output_errors(&self, output: OutputKind) -> u64 {
        self.output_errors.get_or_create(&OutputLabels { output }).get()
    }

    pub fn depth_gauge(&self, actor: Stage) -> Gauge {
        self.mailbox_depth.get_or_create(&ActorLabels { actor }).clone()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_drop_series_exists_at_zero_from_the_start() {
        let text = Metrics::new().encode().unwrap();
        for &stage in Stage::ALL {
            for &reason in DropReason::ALL {
                let series = format!(
                    "timelined_events_dropped_total{{stage=\"{}\",reason=\"{}\"}} 0",
                    stage.as_str(),
                    reason.as_str()
                );
                assert!(text.contains(&series), "missing {series} in\n{text}");
            }
        }
        assert!(text.contains("timelined_malformed_frames_total{reason=\"invalid_json\"} 0"));
        assert!(text.contains("timelined_output_errors_total{output=\"sink\"} 0"), "{text}");
        assert!(text.contains("timelined_output_errors_total{output=\"state\"} 0"), "{text}");
        assert!(text.contains("timelined_output_held{output=\"sink\"} 0"), "{text}");
    }
}
