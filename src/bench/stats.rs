//! The harness's arithmetic, kept pure so that tests pin it down: percentiles, rates,
//! bytes per conversation, flatness of a memory series, and reading `VmRSS`.

use std::time::Duration;

/// The `p`-th percentile (0–100) by the nearest-rank method: the smallest sample with at
/// least `p` % of the samples at or below it. `None` for no samples.
pub fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let p = p.clamp(0.0, 100.0);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// p50, p99 and max of a set of durations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Summary {
    pub count: usize,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl Summary {
    /// `None` for no samples.
    pub fn of(mut samples: Vec<Duration>) -> Option<Summary> {
        samples.sort_unstable();
        Some(Summary {
            count: samples.len(),
            p50: percentile(&samples, 50.0)?,
            p99: percentile(&samples, 99.0)?,
            max: *samples.last()?,
        })
    }
}

/// `count` per second over `elapsed`; 0 for no time at all.
pub fn per_second(count: u64, elapsed: Duration) -> f64 {
    if elapsed.is_zero() {
        return 0.0;
    }
    count as f64 / elapsed.as_secs_f64()
}

/// `part` as a share of `whole` (0 when `whole` is 0).
pub fn ratio(part: f64, whole: f64) -> f64 {
    if whole == 0.0 {
        0.0
    } else {
        part / whole
    }
}

/// Resident bytes each open conversation adds: the growth from the empty daemon to the
/// loaded one, over how many it holds. Negative growth (noise) reads as 0.
pub fn bytes_per_conversation(empty_rss: u64, loaded_rss: u64, conversations: u64) -> f64 {
    if conversations == 0 {
        return 0.0;
    }
    loaded_rss.saturating_sub(empty_rss) as f64 / conversations as f64
}

/// How a memory series moved relative to its first sample.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Flatness {
    pub start: u64,
    pub end: u64,
    pub min: u64,
    pub max: u64,
    /// The median sample: the level the series is judged against (a checkpoint's brief
    /// peak in the first sample would otherwise set it).
    pub median: u64,
    /// Largest deviation of any sample from `median`, as a fraction of it (0.05 = 5 %).
    pub worst_deviation: f64,
    /// The last tenth of the samples against the first tenth (means), as a fraction of the
    /// first: growth over the run, whatever the noise.
    pub drift: f64,
}

impl Flatness {
    /// `None` for an empty series.
    pub fn of(samples: &[u64]) -> Option<Flatness> {
        let start = *samples.first()?;
        let end = *samples.last()?;
        let min = *samples.iter().min()?;
        let max = *samples.iter().max()?;
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        let median = sorted[sorted.len() / 2];
        let deviation = |value: u64| ratio(value.abs_diff(median) as f64, median as f64);
        let tenth = samples.len().div_ceil(10);
        let mean = |part: &[u64]| part.iter().sum::<u64>() as f64 / part.len() as f64;
        let (first, last) = (mean(&samples[..tenth]), mean(&samples[samples.len() - tenth..]));
        Some(Flatness {
            start,
            end,
            min,
            max,
            median,
            worst_deviation: deviation(min).max(deviation(max)),
            drift: ratio(last - first, first),
        })
    }

    /// Every sample within `tolerance` (a fraction) of the median.
    pub fn is_flat_within(&self, tolerance: f64) -> bool {
        self.worst_deviation <= tolerance
    }
}

/// `VmRSS` in bytes from the text of `/proc/<pid>/status` (the kernel writes it in kB).
pub fn vm_rss_bytes(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let mut fields = line["VmRSS:".len()..].split_whitespace();
    let value: u64 = fields.next()?.parse().ok()?;
    match fields.next() {
        Some("kB") | None => Some(value * 1024),
        Some(_) => None,
    }
}

/// The value of one series (`name` or `name{label="value",…}` exactly as written) in
/// Prometheus text.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
}

/// A rate for people: `512.3k` per second and the like.
pub fn human_rate(per_second: f64) -> String {
    if per_second >= 1e6 {
        format!("{:.2}M", per_second / 1e6)
    } else if per_second >= 1e3 {
        format!("{:.1}k", per_second / 1e3)
    } else {
        format!("{per_second:.0}")
    }
}

/// A duration in milliseconds with three decimals (microsecond resolution).
pub fn millis(duration: Duration) -> String {
    format!("{:.3} ms", duration.as_secs_f64() * 1e3)
}

/// Bytes in MiB with one decimal.
pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(values: &[u64]) -> Vec<Duration> {
        values.iter().map(|&v| Duration::from_millis(v)).collect()
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let samples = ms(&(1..=100).collect::<Vec<_>>());
        assert_eq!(percentile(&samples, 50.0), Some(Duration::from_millis(50)));
        assert_eq!(percentile(&samples, 99.0), Some(Duration::from_millis(99)));
        assert_eq!(percentile(&samples, 100.0), Some(Duration::from_millis(100)));
        assert_eq!(percentile(&samples, 0.0), Some(Duration::from_millis(1)));
        // 99 % of 10 samples is the 10th (rank 9.9 rounds up): p99 of few samples is the max.
        let few = ms(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        assert_eq!(percentile(&few, 99.0), Some(Duration::from_millis(10)));
        assert_eq!(percentile(&few, 50.0), Some(Duration::from_millis(5)));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn a_summary_sorts_its_samples_first() {
        let summary = Summary::of(ms(&[9, 1, 5, 3, 7])).unwrap();
        assert_eq!(summary.count, 5);
        assert_eq!(summary.p50, Duration::from_millis(5));
        assert_eq!(summary.p99, Duration::from_millis(9));
        assert_eq!(summary.max, Duration::from_millis(9));
        assert_eq!(Summary::of(Vec::new()), None);
    }

    #[test]
    fn rates_and_ratios() {
        assert_eq!(per_second(1_000, Duration::from_millis(500)), 2_000.0);
        assert_eq!(per_second(5, Duration::ZERO), 0.0);
        assert_eq!(ratio(550.0, 1_000.0), 0.55);
        assert_eq!(ratio(1.0, 0.0), 0.0);
    }

    #[test]
    fn bytes_per_conversation_is_growth_over_count() {
        assert_eq!(bytes_per_conversation(10 << 20, (10 << 20) + 1024 * 10_000, 10_000), 1024.0);
        assert_eq!(bytes_per_conversation(20, 10, 5), 0.0, "shrinking is noise, not negative cost");
        assert_eq!(bytes_per_conversation(0, 100, 0), 0.0);
    }

    #[test]
    fn flatness_is_measured_against_the_median_and_drift_between_the_ends() {
        let flat = Flatness::of(&[104, 100, 97, 101, 100]).unwrap();
        assert_eq!((flat.start, flat.end, flat.min, flat.max, flat.median), (104, 100, 97, 104, 100));
        assert!((flat.worst_deviation - 0.04).abs() < 1e-12, "{}", flat.worst_deviation);
        assert!(flat.is_flat_within(0.05));
        assert!((flat.drift - (100.0 - 104.0) / 104.0).abs() < 1e-12, "{}", flat.drift);
        let growing = Flatness::of(&[100, 103, 106, 109]).unwrap();
        assert!(!growing.is_flat_within(0.05));
        assert!((growing.drift - 0.09).abs() < 1e-12, "{}", growing.drift);
        assert_eq!(Flatness::of(&[]), None);
    }

    #[test]
    fn vm_rss_is_read_in_bytes() {
        let status = "Name:\ttimelined\nVmPeak:\t  100 kB\nVmRSS:\t   20480 kB\nThreads:\t8\n";
        assert_eq!(vm_rss_bytes(status), Some(20 * 1024 * 1024));
        assert_eq!(vm_rss_bytes("Name:\tx\n"), None);
        assert_eq!(vm_rss_bytes("VmRSS:\t12 MB\n"), None);
    }

    #[test]
    fn metrics_are_read_by_exact_series() {
        let text = "# HELP timelined_open_conversations Timelines currently open\n\
                    timelined_open_conversations 1234\n\
                    timelined_open_conversations_extra 9\n\
                    timelined_timelines_closed_total{complete=\"true\"} 7\n\
                    timelined_events_received_total 5e6\n";
        assert_eq!(metric(text, "timelined_open_conversations"), Some(1234.0));
        assert_eq!(metric(text, "timelined_timelines_closed_total{complete=\"true\"}"), Some(7.0));
        assert_eq!(metric(text, "timelined_events_received_total"), Some(5e6));
        assert_eq!(metric(text, "timelined_missing"), None);
    }

    #[test]
    fn human_formats() {
        assert_eq!(human_rate(512_345.0), "512.3k");
        assert_eq!(human_rate(1_250_000.0), "1.25M");
        assert_eq!(human_rate(999.0), "999");
        assert_eq!(millis(Duration::from_micros(1_234)), "1.234 ms");
        assert_eq!(mib(3 << 20), "3.0 MiB");
    }
}
