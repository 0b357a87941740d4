//! Logging setup (slog): `text` for a terminal or journald, `json` for log shippers. The
//! async drain blocks instead of dropping when its queue is full — timeline lines are the
//! product — and its guard must live until `main` returns so the queue is flushed.

use crate::settings::{LogFormat, LogLevel};
use slog::{o, Drain, Level, Logger};

/// Keeps the async logging thread alive; dropping it flushes every queued line.
pub struct LogGuard(#[allow(dead_code)] slog_async::AsyncGuard);

fn level(level: LogLevel) -> Level {
    match level {
        LogLevel::Debug => Level::Debug,
        LogLevel::Info => Level::Info,
        LogLevel::Warning => Level::Warning,
        LogLevel::Error => Level::Error,
    }
}

/// The root logger, writing to stderr (journald captures it under systemd).
pub fn logger(format: LogFormat, min_level: LogLevel) -> (Logger, LogGuard) {
    let drain: Box<dyn Drain<Ok = (), Err = slog::Never> + Send> = match format {
        LogFormat::Text => {
            // One write per line: stderr is unbuffered, and the decorator writes field by field.
            let decorator = slog_term::PlainDecorator::new(std::io::LineWriter::new(std::io::stderr()));
            Box::new(slog_term::FullFormat::new(decorator).use_utc_timestamp().build().ignore_res())
        }
        LogFormat::Json => Box::new(
            slog_json::Json::new(std::io::LineWriter::new(std::io::stderr()))
                .set_newlines(true)
                .add_default_keys()
                .build()
                .ignore_res(),
        ),
    };
    let (drain, guard) = slog_async::Async::new(drain.filter_level(level(min_level)).ignore_res())
        .chan_size(16 * 1024)
        .overflow_strategy(slog_async::OverflowStrategy::Block)
        .thread_name("timelined-log".into())
        .build_with_guard();
    (Logger::root(drain.ignore_res(), o!()), LogGuard(guard))
}
