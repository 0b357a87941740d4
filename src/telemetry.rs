//! Logging setup (slog): `text` for a terminal or journald, `json` for log shippers. The
//! async drain blocks instead of dropping when its queue is full — timeline lines are the
//! product — and its guard must live until `main` returns so the queue is flushed.

use crate::settings::{LogFormat, LogLevel};
use slog::{o, Drain, Level, Logger};
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// Keeps the async logging thread alive; dropping it writes out every queued line.
pub struct LogGuard {
    queue: Option<slog_async::AsyncGuard>,
    output: BatchedOutput,
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        // The queue first (it empties into the output), then what the output holds.
        drop(self.queue.take());
        self.output.stop();
    }
}

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
    logger_to(Box::new(std::io::stderr()), format, min_level)
}

/// The root logger, writing to `output` in batches of whole lines ([`BatchedOutput`]).
pub fn logger_to(
    output: Box<dyn Write + Send>,
    format: LogFormat,
    min_level: LogLevel,
) -> (Logger, LogGuard) {
    let batched = BatchedOutput::start(output);
    let writer: Box<dyn Write + Send> = Box::new(batched.clone());
    let drain: Box<dyn Drain<Ok = (), Err = slog::Never> + Send> = match format {
        LogFormat::Text => {
            let decorator = slog_term::PlainDecorator::new(writer);
            Box::new(slog_term::FullFormat::new(decorator).use_utc_timestamp().build().ignore_res())
        }
        LogFormat::Json => {
            Box::new(slog_json::Json::new(writer).set_newlines(true).add_default_keys().build().ignore_res())
        }
    };
    let (drain, queue) = slog_async::Async::new(drain.filter_level(level(min_level)).ignore_res())
        .chan_size(16 * 1024)
        .overflow_strategy(slog_async::OverflowStrategy::Block)
        .thread_name("timelined-log".into())
        .build_with_guard();
    (Logger::root(drain.ignore_res(), o!()), LogGuard { queue: Some(queue), output: batched })
}

/// Log output written in batches of whole lines: a line is out within [`LINGER`] of being
/// formatted, and a burst of lines costs one `write`, not one each. (Per line, the log
/// thread spent ~90 % of its time in `write` at 140k lines/s — nearly half a core.)
#[derive(Clone)]
pub struct BatchedOutput(Arc<Batch>);

struct Batch {
    pending: Mutex<Vec<u8>>,
    /// Taken while still holding `pending`, so batches reach the output in order.
    output: Mutex<Box<dyn Write + Send>>,
    wake: Condvar,
    stopping: AtomicBool,
    flusher: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// Every output started, for [`write_out_pending`].
static OUTPUTS: Mutex<Vec<std::sync::Weak<Batch>>> = Mutex::new(Vec::new());

/// Write out what every log output holds, now (the process is about to exit on a panic,
/// and no guard will be dropped).
pub fn write_out_pending() {
    let outputs: Vec<Arc<Batch>> = lock(&OUTPUTS).iter().filter_map(std::sync::Weak::upgrade).collect();
    for batch in outputs {
        let _ = batch.write_out(lock(&batch.pending), true);
    }
}

/// How long a line may wait for company before it is written.
pub const LINGER: Duration = Duration::from_millis(20);
/// Pending output beyond this is written at once by the thread that formats it.
const HIGH_WATER: usize = 256 * 1024;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl BatchedOutput {
    pub fn start(output: Box<dyn Write + Send>) -> Self {
        let batch = Arc::new(Batch {
            pending: Mutex::new(Vec::new()),
            output: Mutex::new(output),
            wake: Condvar::new(),
            stopping: AtomicBool::new(false),
            flusher: Mutex::new(None),
        });
        let flusher = batch.clone();
        let handle = std::thread::Builder::new()
            .name("timelined-logw".into())
            .spawn(move || flusher.flush_while_running());
        // Without the thread (none could be started), every line is written at once.
        match handle {
            Ok(handle) => *lock(&batch.flusher) = Some(handle),
            Err(_) => batch.stopping.store(true, Ordering::SeqCst),
        }
        let mut outputs = lock(&OUTPUTS);
        outputs.retain(|output| output.strong_count() > 0);
        outputs.push(Arc::downgrade(&batch));
        BatchedOutput(batch)
    }

    /// Write out everything and end the flushing thread.
    pub fn stop(&self) {
        self.0.stopping.store(true, Ordering::SeqCst);
        self.0.wake.notify_all();
        if let Some(flusher) = lock(&self.0.flusher).take() {
            let _ = flusher.join();
        }
        let _ = self.0.write_out(lock(&self.0.pending), true);
    }
}

impl Batch {
    fn flush_while_running(&self) {
        loop {
            let mut pending = lock(&self.pending);
            while pending.is_empty() && !self.stopping.load(Ordering::SeqCst) {
                pending = self.wake.wait(pending).unwrap_or_else(|poisoned| poisoned.into_inner());
            }
            if self.stopping.load(Ordering::SeqCst) {
                return;
            }
            drop(pending);
            std::thread::sleep(LINGER);
            let _ = self.write_out(lock(&self.pending), false);
        }
    }

    /// Write the pending whole lines (everything, when `all`), keeping a line still being
    /// formatted for the next batch.
    fn write_out(&self, mut pending: MutexGuard<'_, Vec<u8>>, all: bool) -> io::Result<()> {
        let end = if all {
            pending.len()
        } else {
            pending.iter().rposition(|b| *b == b'\n').map_or(0, |at| at + 1)
        };
        if end == 0 {
            return Ok(());
        }
        let rest = pending.split_off(end);
        let batch = std::mem::replace(&mut *pending, rest);
        let mut output = lock(&self.output);
        drop(pending);
        output.write_all(&batch)?;
        output.flush()
    }
}

impl Write for BatchedOutput {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let mut pending = lock(&self.0.pending);
        let was_empty = pending.is_empty();
        pending.extend_from_slice(bytes);
        if pending.len() >= HIGH_WATER || self.0.stopping.load(Ordering::SeqCst) {
            self.0.write_out(pending, false)?;
        } else if was_empty {
            self.0.wake.notify_one();
        }
        Ok(bytes.len())
    }

    /// Lines are written by the flushing thread within [`LINGER`]; see [`BatchedOutput::stop`].
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A shared in-memory output that counts its writes.
    #[derive(Clone, Default)]
    struct Recorder(Arc<Mutex<(Vec<u8>, usize)>>);

    impl Write for Recorder {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            let mut recorded = lock(&self.0);
            recorded.0.extend_from_slice(bytes);
            recorded.1 += 1;
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_come_out_whole_in_order_in_few_writes_and_all_of_them_at_stop() {
        let recorder = Recorder::default();
        let mut output = BatchedOutput::start(Box::new(recorder.clone()));
        for line in 0..1_000 {
            // Written in pieces, as a formatter writes its fields.
            write!(output, "line {line}").unwrap();
            output.write_all(b" end\n").unwrap();
        }
        output.write_all(b"unfinished").unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !lock(&recorder.0).0.ends_with(b"line 999 end\n") && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let (text, writes) = lock(&recorder.0).clone();
        let text = String::from_utf8(text).unwrap();
        assert!(text.ends_with("line 999 end\n"), "only whole lines go out before the stop");
        assert!(writes < 100, "1,000 lines in {writes} writes");
        output.stop();
        let text = String::from_utf8(lock(&recorder.0).0.clone()).unwrap();
        let expected: String =
            (0..1_000).map(|line| format!("line {line} end\n")).collect::<String>() + "unfinished";
        assert_eq!(text, expected);
    }
}
