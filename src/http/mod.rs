//! The daemon's HTTP side, bound to loopback by default
//! (`http.listen`):
//!
//! | route | answers |
//! |---|---|
//! | `GET /metrics` | the metrics registry: OpenMetrics when the scraper asks for it (Prometheus does), else the Prometheus text format 0.0.4 |
//! | `GET /healthz` | 200 `ok` while the process serves |
//! | `GET /readyz` | 200 `ready`, or 503 with the reason (subscribed, socket open, frames fresh) |
//! | `GET /timelines[?state=open\|closed][&offset=N][&limit=N]` | JSON array: open timelines (earliest start first), then the recently closed ones the feed remembers (most recently closed first); a page of at most `limit` (default 1,000, at most 10,000) from `offset`, the whole count in `X-Total-Count` |
//! | `GET /timelines/{id}` | one open or recently closed timeline, or 404 `{"error":…}` |
//! | `GET /feed` | Server-Sent Events of timeline updates, resumable with `Last-Event-ID` (see [`feed`]); at most `http.max_feed_clients` at once, then 503 (a client gone frees its place at the next event or keepalive written to it) |
//!
//! The server runs one worker and leaves signals to the daemon, which owns SIGTERM.

pub mod feed;

use actix_web::dev::ServerHandle;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use feed::Feed;
use serde::Deserialize;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use timelined_actors::metrics::Metrics;
use timelined_actors::record::TimelineRecord;
use timelined_actors::timeline::OpenTimelinesView;

/// What the handlers read. Everything is shared with the running pipeline, read-only.
pub struct HttpState {
    pub metrics: Arc<Metrics>,
    /// The open timelines (the TimelineActor's book).
    pub timelines: OpenTimelinesView,
    /// `Ok` when ready to serve its purpose; else why not, in words for an operator.
    pub readiness: Arc<dyn Fn() -> Result<(), String> + Send + Sync>,
    pub feed: Arc<Feed>,
    /// `/feed` streams open now, and how many may be.
    pub feed_clients: Arc<std::sync::atomic::AtomicUsize>,
    pub max_feed_clients: usize,
}

/// The page `/timelines` answers when no `limit` is given, and the largest it answers.
const DEFAULT_PAGE: usize = 1000;
const MAX_PAGE: usize = 10_000;

/// Seconds a graceful stop waits for open connections. `/feed` streams never end on their
/// own, so the default 30 s would eat all of systemd's `TimeoutStopSec`.
const SHUTDOWN_TIMEOUT_SECS: u64 = 2;

pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Bind `listen` and start serving on the current actix runtime. Returns the bound address
/// (the real port when `listen` asks for port 0) and a handle to stop the server.
pub fn start(listen: SocketAddr, state: HttpState) -> std::io::Result<(SocketAddr, ServerHandle)> {
    let state = web::Data::new(state);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(web::QueryConfig::default().error_handler(|error, _| {
                let response = json_error(StatusCode::BAD_REQUEST, &error.to_string());
                actix_web::error::InternalError::from_response(error, response).into()
            }))
            .route("/metrics", web::get().to(metrics))
            .route("/healthz", web::get().to(healthz))
            .route("/readyz", web::get().to(readyz))
            .route("/timelines", web::get().to(timelines))
            .route("/timelines/{id}", web::get().to(timeline))
            .route("/feed", web::get().to(feed_stream))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(SHUTDOWN_TIMEOUT_SECS)
    .bind(listen)?;
    let bound = server
        .addrs()
        .first()
        .copied()
        .ok_or_else(|| std::io::Error::other(format!("http.listen: {listen} bound to no address")))?;
    let server = server.run();
    let handle = server.handle();
    actix_rt::spawn(server);
    Ok((bound, handle))
}

fn json_error(status: StatusCode, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(serde_json::json!({ "error": message }))
}

fn plain(status: StatusCode, body: String) -> HttpResponse {
    HttpResponse::build(status).content_type("text/plain; charset=utf-8").body(body)
}

/// Whether the scraper accepts OpenMetrics. Prometheus lists it first in `Accept`;
/// `curl` and `promtool` do not, and get the classic text format.
fn wants_openmetrics(request: &HttpRequest) -> bool {
    request
        .headers()
        .get_all(header::ACCEPT)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|media| {
            let mut parameters = media.split(';').map(str::trim);
            let accepted = parameters.next() == Some("application/openmetrics-text");
            let refused = parameters.any(|p| p.replace(' ', "") == "q=0");
            accepted && !refused
        })
}

async fn metrics(state: web::Data<HttpState>, request: HttpRequest) -> HttpResponse {
    let text = match state.metrics.encode() {
        Ok(text) => text,
        Err(_) => return plain(StatusCode::INTERNAL_SERVER_ERROR, "metrics could not be encoded\n".into()),
    };
    if wants_openmetrics(&request) {
        HttpResponse::Ok().content_type(OPENMETRICS).body(text)
    } else {
        HttpResponse::Ok().content_type(PROMETHEUS_TEXT).body(openmetrics_to_prometheus(&text))
    }
}

/// The same samples in the Prometheus text format 0.0.4, which `promtool check metrics`
/// and `curl` users expect: that format names a counter's family after its samples
/// (`x_total`, not `x`) and has no `# UNIT` and no `# EOF`. Help text is copied as is
/// (prometheus-client writes it unescaped).
pub fn openmetrics_to_prometheus(text: &str) -> String {
    // Families whose samples carry a suffix the family name lacks, and the type to write.
    let mut renamed: std::collections::HashMap<&str, (&str, &str)> = Default::default();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else { continue };
        match rest.split_once(' ') {
            Some((name, "counter")) => renamed.insert(name, ("_total", "counter")),
            Some((name, "info")) => renamed.insert(name, ("_info", "gauge")),
            Some((name, "unknown")) => renamed.insert(name, ("", "untyped")),
            _ => None,
        };
    }
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let descriptor = line
            .strip_prefix("# HELP ")
            .map(|rest| ("HELP", rest))
            .or_else(|| line.strip_prefix("# TYPE ").map(|rest| ("TYPE", rest)));
        match descriptor {
            Some((kind, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                let (suffix, text) = match renamed.get(name) {
                    Some(&(suffix, written_type)) if kind == "TYPE" => (suffix, written_type),
                    Some(&(suffix, _)) => (suffix, tail),
                    None => ("", tail),
                };
                out.push_str(&format!("# {kind} {name}{suffix} {text}\n"));
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

async fn healthz() -> HttpResponse {
    plain(StatusCode::OK, "ok\n".into())
}

async fn readyz(state: web::Data<HttpState>) -> HttpResponse {
    match (state.readiness)() {
        Ok(()) => plain(StatusCode::OK, "ready\n".into()),
        Err(why) => plain(StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")),
    }
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Which {
    #[default]
    All,
    Open,
    Closed,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TimelinesQuery {
    #[serde(default)]
    state: Which,
    #[serde(default)]
    offset: usize,
    limit: Option<usize>,
}

/// The open conversations in page order (earliest start first; not yet started last; ties
/// by id, so the order is stable).
fn open_order(state: &HttpState) -> Vec<(Option<chrono::DateTime<chrono::Utc>>, Arc<str>)> {
    let mut open = state.timelines.starts();
    open.sort_by(|a, b| (a.0.is_none(), a.0, &a.1).cmp(&(b.0.is_none(), b.0, &b.1)));
    open
}

async fn timelines(state: web::Data<HttpState>, query: web::Query<TimelinesQuery>) -> HttpResponse {
    let which = query.state;
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if limit == 0 || limit > MAX_PAGE {
        return json_error(
            StatusCode::BAD_REQUEST,
            &format!("limit must be from 1 to {MAX_PAGE}, not {limit}"),
        );
    }
    let open = if which == Which::Closed { Vec::new() } else { open_order(&state) };
    let closed = if which == Which::Open { Vec::new() } else { state.feed.recently_closed_all() };
    // A conversation is open or closed, not both; should a restart make it both, the
    // open one is the one still changing.
    let open_ids: HashSet<&str> = open.iter().map(|(_, id)| &**id).collect();
    let closed: Vec<&TimelineRecord> =
        closed.iter().map(Arc::as_ref).filter(|r| !open_ids.contains(r.conversation_id.as_str())).collect();
    let total = open.len() + closed.len();
    let mut page: Vec<TimelineRecord> = Vec::new();
    // Open ones are built one at a time; one closed meanwhile is skipped.
    for (_, id) in open.iter().skip(query.offset).take(limit) {
        if let Some(record) = state.timelines.record(id) {
            page.push(record);
        }
    }
    let closed_from = query.offset.saturating_sub(open.len());
    let room = limit.saturating_sub(open.len().saturating_sub(query.offset).min(limit));
    let closed_page = closed.into_iter().skip(closed_from).take(room);
    let all: Vec<&TimelineRecord> = page.iter().chain(closed_page).collect();
    HttpResponse::Ok().insert_header(("X-Total-Count", total.to_string())).json(all)
}

async fn timeline(state: web::Data<HttpState>, id: web::Path<String>) -> HttpResponse {
    let id = id.into_inner();
    if let Some(record) = state.timelines.record(&id) {
        return HttpResponse::Ok().json(record);
    }
    match state.feed.recently_closed(&id) {
        Some(closed) => HttpResponse::Ok().json(closed.as_ref()),
        None => json_error(
            StatusCode::NOT_FOUND,
            &format!("no open or recently closed timeline for conversation {id}"),
        ),
    }
}

async fn feed_stream(state: web::Data<HttpState>, request: HttpRequest) -> HttpResponse {
    let after = match request.headers().get("Last-Event-ID").map(HeaderValue::to_str) {
        None => None,
        Some(Ok(text)) if text.trim().is_empty() => None,
        Some(Ok(text)) => match text.trim().parse::<u64>() {
            Ok(id) => Some(id),
            Err(_) => {
                return json_error(
                    StatusCode::BAD_REQUEST,
                    &format!("Last-Event-ID {text:?} is not an event id"),
                )
            }
        },
        Some(Err(_)) => return json_error(StatusCode::BAD_REQUEST, "Last-Event-ID is not an event id"),
    };
    let Some(client) = FeedClient::admit(&state.feed_clients, state.max_feed_clients) else {
        let limit =
            timelined_actors::metrics::LimitLabels { limit: timelined_actors::metrics::Limit::FeedClients };
        state.metrics.limits_enforced.get_or_create(&limit).inc();
        return HttpResponse::ServiceUnavailable()
            .insert_header((header::RETRY_AFTER, "5"))
            .json(serde_json::json!({ "error": format!("already {} /feed clients (http.max_feed_clients)", state.max_feed_clients) }));
    };
    // The stream owns the client's place; a client gone drops the stream, freeing it.
    let stream = futures_util::StreamExt::map(state.feed.follow(after), move |item| {
        let _place = &client;
        item
    });
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        // Reverse proxies (nginx) would otherwise hold events back to fill a buffer.
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(stream)
}

/// A place among the `/feed` clients, given back when dropped.
struct FeedClient(Arc<std::sync::atomic::AtomicUsize>);

impl FeedClient {
    fn admit(clients: &Arc<std::sync::atomic::AtomicUsize>, max: usize) -> Option<FeedClient> {
        use std::sync::atomic::Ordering;
        clients
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |open| (open < max).then_some(open + 1))
            .ok()
            .map(|_| FeedClient(clients.clone()))
    }
}

impl Drop for FeedClient {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openmetrics_counters_become_prometheus_text() {
        let open = "# HELP t_dropped Events \"dropped\".\n# TYPE t_dropped counter\n\
                    t_dropped_total{stage=\"log\"} 0\n\
                    # HELP t_rtt_seconds RTT.\n# TYPE t_rtt_seconds gauge\n# UNIT t_rtt_seconds seconds\n\
                    t_rtt_seconds 0.5\n# EOF\n";
        assert_eq!(
            openmetrics_to_prometheus(open),
            "# HELP t_dropped_total Events \"dropped\".\n# TYPE t_dropped_total counter\n\
             t_dropped_total{stage=\"log\"} 0\n\
             # HELP t_rtt_seconds RTT.\n# TYPE t_rtt_seconds gauge\nt_rtt_seconds 0.5\n"
        );
    }

    #[test]
    fn the_real_registry_converts_without_openmetrics_leftovers() {
        let text = openmetrics_to_prometheus(&Metrics::new().encode().unwrap());
        assert!(!text.contains("# EOF") && !text.contains("# UNIT"), "{text}");
        assert!(text.contains("# TYPE timelined_events_dropped_total counter\n"), "{text}");
        assert!(
            text.contains("timelined_events_dropped_total{stage=\"timeline\",reason=\"mailbox_full\"} 0\n")
        );
    }
}
