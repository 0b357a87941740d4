//! Small helpers shared by the actors that call Genesys REST endpoints.

use crate::internal_events::printable;
use awc::http::header::{HeaderMap, RETRY_AFTER};
use std::time::Duration;

/// The longest `Retry-After` honoured: a server asking for more (by mistake or malice)
/// would otherwise pause a call for years, or overflow the time it is added to.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// `Retry-After` in delta-seconds (what Genesys sends), at most `cap` (the configured
/// `genesys.max_retry_after`) and never more than [`MAX_RETRY_AFTER`]; absent or
/// unparsable → `None`.
pub fn retry_after(headers: &HeaderMap, cap: Duration) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok())
        .map(|seconds| Duration::from_secs(seconds).min(cap).min(MAX_RETRY_AFTER))
}

/// An id from the network, if it is safe to stand as one segment of a REST path: 1 to 128
/// of `A–Z a–z 0–9 - _` (every id Genesys hands out: UUIDs, `streaming-…` channel ids).
/// Anything else — `/`, `..`, `?`, `#`, `%`, a scheme — could walk the API host with our
/// bearer token, so it is refused rather than escaped into something a server decodes.
pub fn path_segment(id: &str) -> Option<&str> {
    let safe = (1..=128).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    safe.then_some(id)
}

/// Whether `url` may carry our credentials: `https`/`wss` anywhere; plain `http`/`ws`
/// only to a loopback host (the simulator, a local proxy), never across a network where
/// basic auth, tokens and conversations would travel in cleartext. `Err` says why not.
pub fn transport_allowed(url: &str) -> Result<(), String> {
    let uri: awc::http::Uri = url.parse().map_err(|_| format!("{:?} is not a URL", printable(url)))?;
    match uri.scheme_str() {
        Some("https" | "wss") => Ok(()),
        Some("http" | "ws") if uri.host().is_some_and(is_loopback) => Ok(()),
        Some("http" | "ws") => {
            Err(format!("{:?} is cleartext to a host that is not loopback; use https/wss", printable(url)))
        }
        _ => Err(format!("{:?} is not an http(s) or ws(s) URL", printable(url))),
    }
}

fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare.parse::<std::net::IpAddr>().is_ok_and(|address| address.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;
    use awc::http::header::HeaderValue;

    #[test]
    fn retry_after_seconds() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers, MAX_RETRY_AFTER), None);
        headers.insert(RETRY_AFTER, HeaderValue::from_static("3"));
        assert_eq!(retry_after(&headers, MAX_RETRY_AFTER), Some(Duration::from_secs(3)));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers, MAX_RETRY_AFTER), None);
    }

    #[test]
    fn a_huge_retry_after_is_clamped_to_a_day() {
        let mut headers = HeaderMap::new();
        for huge in ["10000000000", "18446744073709551615"] {
            headers.insert(RETRY_AFTER, HeaderValue::from_static(huge));
            assert_eq!(retry_after(&headers, MAX_RETRY_AFTER), Some(MAX_RETRY_AFTER), "{huge}");
        }
        // What the callers do with it (jitter, a pause from now) stays in range.
        let wait = MAX_RETRY_AFTER;
        let jittered = wait + wait.mul_f64(0.2);
        assert!(std::time::Instant::now().checked_add(jittered).is_some());
    }

    #[test]
    fn only_plain_ids_go_into_a_path() {
        for id in ["5b1c0d8e-3f2a-4c6b-9d7e-1a2b3c4d5e6f", "streaming-0-a1b2c3", "conv_1"] {
            assert_eq!(path_segment(id), Some(id));
        }
        for id in [
            "",
            "..",
            "../../../api/v2/users/me",
            "/api/v2/users/me",
            "a?expand=participants",
            "a#b",
            "a%2Fb",
            "http://169.254.169.254/latest",
            "a\nb",
            "é",
            &"a".repeat(129),
        ] {
            assert_eq!(path_segment(id), None, "{id:?}");
        }
    }

    #[test]
    fn cleartext_only_to_loopback() {
        for allowed in [
            "https://api.mypurecloud.com",
            "wss://streaming.mypurecloud.com/channels/x",
            "http://127.0.0.1:8080",
            "ws://127.0.0.9:1/channels/x",
            "http://[::1]:80/",
            "ws://localhost:1",
        ] {
            assert_eq!(transport_allowed(allowed), Ok(()), "{allowed}");
        }
        for refused in [
            "http://api.mypurecloud.com",
            "ws://10.0.0.1/channels/x",
            "ws://127.0.0.1.evil.example/",
            "http://localhost.evil.example",
            "ws://[::2]/",
            "ftp://127.0.0.1/",
            "127.0.0.1:80",
            "not a url",
            "",
        ] {
            assert!(transport_allowed(refused).is_err(), "{refused} was allowed");
        }
    }
}
