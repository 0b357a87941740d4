//! The analytics conversation-details query, `POST /api/v2/analytics/conversations/details/query`:
//! the one REST search a client has for conversations it never saw on a socket (a daemon
//! runs it after an outage).
//!
//! Pure: decoding the request (interval, order, paging, segment filters), deciding which
//! played conversations it selects, and rendering one page in the analytics shape
//! (`conversationStart`/`conversationEnd`, participants with sessions and segments). The
//! hub hands over the conversations played so far (`hub.rs`); the handler answers with
//! the page or with the 400 a [`QueryError`] describes (`server.rs`).
//!
//! The interval is in event time: a conversation's `conversationStart` is its first event
//! (the customer's join), whatever wall time it was played at. A `queueId` predicate
//! matches once the conversation has entered that queue (its acd participant, or an agent
//! routed from it, has appeared), a `userId` predicate once an agent participant of that
//! user has appeared — a missed alert counts, as Genesys keeps an `alert` segment for it.
//! The same rule decides when queue and user topics start seeing a conversation.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use timelined_actors::record::format_millis;

use super::generator::{Conversation, Participant};

/// Genesys' page size when the request names none…
const DEFAULT_PAGE_SIZE: u64 = 25;
/// …and the largest it accepts.
const MAX_PAGE_SIZE: u64 = 100;
/// Every scripted conversation is a customer reaching the contact centre.
const ORIGINATING_DIRECTION: &str = "inbound";

/// The request body as sent. Unknown fields are refused: a filter the simulator ignored
/// would silently widen the answer.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Request {
    interval: String,
    #[serde(default)]
    order: Order,
    /// Decoded only so that any other order is refused.
    #[serde(rename = "orderBy", default)]
    _order_by: OrderBy,
    #[serde(default)]
    paging: Paging,
    #[serde(default)]
    segment_filters: Vec<SegmentFilter>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Order {
    #[default]
    Asc,
    Desc,
}

/// The only order the simulator keeps; naming another is refused rather than ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
enum OrderBy {
    #[default]
    ConversationStart,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Paging {
    #[serde(default = "default_page_size")]
    page_size: u64,
    #[serde(default = "first_page")]
    page_number: u64,
}

impl Default for Paging {
    fn default() -> Self {
        Paging { page_size: DEFAULT_PAGE_SIZE, page_number: 1 }
    }
}

fn default_page_size() -> u64 {
    DEFAULT_PAGE_SIZE
}

fn first_page() -> u64 {
    1
}

/// Segment filters all have to match; within one, `type` combines its predicates and
/// clauses.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SegmentFilter {
    #[serde(rename = "type")]
    combine: Combine,
    #[serde(default)]
    predicates: Vec<Predicate>,
    #[serde(default)]
    clauses: Vec<Clause>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Clause {
    #[serde(rename = "type")]
    combine: Combine,
    predicates: Vec<Predicate>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Combine {
    And,
    Or,
}

impl Combine {
    fn over(self, mut results: impl Iterator<Item = bool>) -> bool {
        match self {
            Combine::And => results.all(|matched| matched),
            Combine::Or => results.any(|matched| matched),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Predicate {
    #[serde(rename = "type", default)]
    _kind: PredicateKind,
    dimension: Dimension,
    #[serde(rename = "operator", default)]
    _operator: Operator,
    value: String,
}

#[derive(Clone, Copy, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
enum PredicateKind {
    #[default]
    Dimension,
}

#[derive(Clone, Copy, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
enum Operator {
    #[default]
    Matches,
}

/// The dimensions the simulator can answer for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
enum Dimension {
    QueueId,
    UserId,
}

impl Predicate {
    fn matches(&self, conversation: &Conversation, now: DateTime<Utc>) -> bool {
        let mut appeared = conversation.participants.iter().filter(|p| p.is_visible_at(now));
        match self.dimension {
            Dimension::QueueId => appeared.any(|p| p.queue_id.as_deref() == Some(self.value.as_str())),
            Dimension::UserId => appeared.any(|p| p.user.as_ref().is_some_and(|u| u.id == self.value)),
        }
    }
}

impl SegmentFilter {
    fn matches(&self, conversation: &Conversation, now: DateTime<Utc>) -> bool {
        let predicates = self.predicates.iter().map(|p| p.matches(conversation, now));
        let clauses = self
            .clauses
            .iter()
            .map(|c| c.combine.over(c.predicates.iter().map(|p| p.matches(conversation, now))));
        self.combine.over(predicates.chain(clauses))
    }

    fn is_empty(&self) -> bool {
        (self.predicates.is_empty() && self.clauses.is_empty())
            || self.clauses.iter().any(|c| c.predicates.is_empty())
    }
}

/// Why a query was refused (answered 400 with this message).
#[derive(Debug, thiserror::Error)]
pub(crate) enum QueryError {
    #[error("the body is not a conversation-details query: {0}")]
    Shape(serde_json::Error),
    #[error("interval {interval:?} is not \"<from>/<to>\" in RFC 3339 times: {problem}")]
    Interval { interval: String, problem: String },
    #[error("paging.pageSize must be from 1 to {MAX_PAGE_SIZE}, not {0}")]
    PageSize(u64),
    #[error("paging.pageNumber counts from 1, not 0")]
    PageNumber,
    #[error("every segment filter and clause needs at least one predicate")]
    EmptyFilter,
}

/// A checked query.
#[derive(Debug)]
pub(crate) struct DetailsQuery {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    order: Order,
    page_size: usize,
    page_number: usize,
    filters: Vec<SegmentFilter>,
}

/// Decodes and checks a request body.
pub(crate) fn parse_query(body: &[u8]) -> Result<DetailsQuery, QueryError> {
    let request: Request = serde_json::from_slice(body).map_err(QueryError::Shape)?;
    let (from, to) = parse_interval(&request.interval)?;
    let Paging { page_size, page_number } = request.paging;
    if !(1..=MAX_PAGE_SIZE).contains(&page_size) {
        return Err(QueryError::PageSize(page_size));
    }
    if page_number == 0 {
        return Err(QueryError::PageNumber);
    }
    if request.segment_filters.iter().any(SegmentFilter::is_empty) {
        return Err(QueryError::EmptyFilter);
    }
    Ok(DetailsQuery {
        from,
        to,
        order: request.order,
        page_size: page_size as usize,
        page_number: usize::try_from(page_number).unwrap_or(usize::MAX),
        filters: request.segment_filters,
    })
}

/// `"<from>/<to>"`, both RFC 3339, `to` after `from`. (Genesys also takes ISO 8601
/// durations for either end; the simulator does not.)
fn parse_interval(interval: &str) -> Result<(DateTime<Utc>, DateTime<Utc>), QueryError> {
    let refuse = |problem: String| QueryError::Interval { interval: interval.to_owned(), problem };
    let (from, to) =
        interval.split_once('/').ok_or_else(|| refuse("there is no '/' between its ends".to_owned()))?;
    let time = |text: &str| {
        DateTime::parse_from_rfc3339(text.trim())
            .map(|at| at.with_timezone(&Utc))
            .map_err(|e| refuse(format!("{text:?} is not a time: {e}")))
    };
    let (from, to) = (time(from)?, time(to)?);
    if to <= from {
        return Err(refuse("its end is not after its start".to_owned()));
    }
    Ok((from, to))
}

impl DetailsQuery {
    /// Whether the query selects a conversation as it stands after `played` transitions.
    fn selects(&self, conversation: &Conversation, played: usize) -> bool {
        let (Some(start), Some(now)) = (conversation.time_after(1), conversation.time_after(played)) else {
            return false;
        };
        (self.from..self.to).contains(&start) && self.filters.iter().all(|f| f.matches(conversation, now))
    }
}

/// The response body: one page of what `query` selects among the conversations played so
/// far, each given with how many of its transitions have been played.
pub(crate) fn answer<'c>(
    query: &DetailsQuery,
    played: impl IntoIterator<Item = (&'c Conversation, usize)>,
) -> String {
    let mut selected: Vec<(&Conversation, usize)> =
        played.into_iter().filter(|(conversation, played)| query.selects(conversation, *played)).collect();
    selected.sort_by(|(a, _), (b, _)| (a.time_after(1), &a.id).cmp(&(b.time_after(1), &b.id)));
    if query.order == Order::Desc {
        selected.reverse();
    }
    let skip = (query.page_number - 1).saturating_mul(query.page_size);
    let conversations = selected
        .iter()
        .skip(skip)
        .take(query.page_size)
        .map(|(conversation, played)| summary(conversation, *played))
        .collect();
    let page = Page { conversations, total_hits: selected.len() };
    // Plain structs of strings and numbers: serialization cannot fail.
    serde_json::to_string(&page).expect("details pages serialize")
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Page<'c> {
    /// Genesys leaves the list out of an empty page.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    conversations: Vec<Summary<'c>>,
    total_hits: usize,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Summary<'c> {
    conversation_id: &'c str,
    conversation_start: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    conversation_end: Option<String>,
    originating_direction: &'static str,
    participants: Vec<AnalyticsParticipant<'c>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AnalyticsParticipant<'c> {
    participant_id: &'c str,
    participant_name: &'c str,
    purpose: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<&'c str>,
    sessions: [AnalyticsSession<'c>; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AnalyticsSession<'c> {
    session_id: &'c str,
    media_type: &'static str,
    direction: &'static str,
    segments: Vec<Segment<'c>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Segment<'c> {
    segment_start: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    segment_end: Option<String>,
    segment_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    queue_id: Option<&'c str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    disconnect_type: Option<&'static str>,
}

/// One conversation as the details query lists it, after `played` transitions:
/// `conversationEnd` only once everyone has left.
fn summary(conversation: &Conversation, played: usize) -> Summary<'_> {
    let played = played.clamp(1, conversation.transitions.len());
    let start = conversation.transitions[0].at;
    let now = conversation.transitions[played - 1].at;
    let ended = played == conversation.transitions.len();
    Summary {
        conversation_id: &conversation.id,
        conversation_start: format_millis(&start),
        conversation_end: ended.then(|| format_millis(&now)),
        originating_direction: ORIGINATING_DIRECTION,
        participants: conversation
            .participants
            .iter()
            .filter(|p| p.is_visible_at(now))
            .map(|p| AnalyticsParticipant {
                participant_id: &p.id,
                participant_name: &p.name,
                purpose: p.purpose.as_str(),
                user_id: p.user.as_ref().map(|u| u.id.as_str()),
                sessions: [AnalyticsSession {
                    session_id: &p.session_id,
                    media_type: conversation.media.name(),
                    direction: p.purpose.direction(),
                    segments: segments(p, now),
                }],
            })
            .collect(),
    }
}

/// A participant's segments at `now`: `alert` while an agent rings (ended by the answer,
/// or by the timeout of a missed alert), then `interact` while connected.
fn segments(participant: &Participant, now: DateTime<Utc>) -> Vec<Segment<'_>> {
    let queue_id = participant.queue_id.as_deref();
    let connected = participant.connected_by(now);
    let ended = participant.ended_by(now);
    let disconnect_type = analytics_disconnect_type(participant.disconnect_type);
    let mut segments = Vec::with_capacity(2);
    if participant.connected_at != Some(participant.appeared_at) {
        segments.push(Segment {
            segment_start: format_millis(&participant.appeared_at),
            segment_end: connected.or(ended).as_ref().map(format_millis),
            segment_type: "alert",
            queue_id,
            disconnect_type: ended.filter(|_| connected.is_none()).map(|_| disconnect_type),
        });
    }
    if let Some(connected) = connected {
        segments.push(Segment {
            segment_start: format_millis(&connected),
            segment_end: ended.as_ref().map(format_millis),
            segment_type: "interact",
            queue_id,
            disconnect_type: ended.map(|_| disconnect_type),
        });
    }
    segments
}

/// Analytics spells disconnect types in camelCase (`conferenceTransfer`) where snapshots
/// use dotted lower case (`transfer.conference`); the one-word ones are the same.
fn analytics_disconnect_type(dotted: &'static str) -> &'static str {
    match dotted {
        "transfer.conference" => "conferenceTransfer",
        "transfer.consult" => "consultTransfer",
        "transport.failure" => "transportFailure",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::generator::{Generator, Purpose, Step};
    use serde_json::{json, Value};
    use std::collections::BTreeSet;
    use std::sync::Arc;

    const QUEUES: [&str; 2] = ["queue-a", "queue-b"];

    /// Every conversation of a finite run, fully played.
    fn played(conversations: u64) -> Vec<(Arc<Conversation>, usize)> {
        let queues = QUEUES.map(str::to_owned);
        Generator::new(31, &queues, conversations, 4)
            .filter(|s| s.played() == s.conversation.transitions.len())
            .map(|s| (s.conversation.clone(), s.played()))
            .collect()
    }

    fn query(body: Value) -> DetailsQuery {
        parse_query(body.to_string().as_bytes()).expect("a valid query")
    }

    fn run(query: &DetailsQuery, played: &[(Arc<Conversation>, usize)]) -> Value {
        serde_json::from_str(&answer(query, played.iter().map(|(c, n)| (&**c, *n)))).unwrap()
    }

    fn ids(page: &Value) -> Vec<String> {
        page.get("conversations")
            .and_then(Value::as_array)
            .map(|list| list.iter().map(|c| c["conversationId"].as_str().unwrap().to_owned()).collect())
            .unwrap_or_default()
    }

    const WIDE: &str = "2025-12-31T00:00:00.000Z/2026-01-03T00:00:00.000Z";

    fn by_queue(queue: &str, size: u64, page: u64) -> Value {
        json!({
            "interval": WIDE,
            "order": "asc",
            "orderBy": "conversationStart",
            "paging": {"pageSize": size, "pageNumber": page},
            "segmentFilters": [{"type": "or", "predicates": [
                {"type": "dimension", "dimension": "queueId", "operator": "matches", "value": queue},
            ]}],
        })
    }

    #[test]
    fn the_daemon_s_query_shape_parses_with_genesys_defaults_for_what_it_leaves_out() {
        let full = query(by_queue("q", 100, 2));
        assert_eq!((full.page_size, full.page_number, full.order), (100, 2, Order::Asc));
        assert_eq!(full.filters.len(), 1);
        let bare = query(json!({"interval": "2026-01-01T09:00:00Z/2026-01-01T11:00:00+01:00"}));
        assert_eq!((bare.page_size, bare.page_number, bare.order), (25, 1, Order::Asc));
        assert!(bare.filters.is_empty());
        assert_eq!(format_millis(&bare.from), "2026-01-01T09:00:00.000Z");
        assert_eq!(bare.to - bare.from, chrono::TimeDelta::hours(1), "offsets are honoured");
    }

    #[test]
    fn bad_queries_are_refused_with_what_is_wrong() {
        for (body, needle) in [
            (json!({"interval": "2026-01-01T09:00:00Z"}), "'/'"),
            (json!({"interval": "yesterday/today"}), "\"yesterday\""),
            (json!({"interval": "2026-01-01T10:00:00Z/2026-01-01T09:00:00Z"}), "not after"),
            (json!({"interval": "2026-01-01T09:00:00Z/2026-01-01T09:00:00Z"}), "not after"),
            (json!({"paging": {"pageSize": 5}}), "interval"),
            (json!({"interval": WIDE, "paging": {"pageSize": 0}}), "pageSize"),
            (json!({"interval": WIDE, "paging": {"pageSize": 101}}), "101"),
            (json!({"interval": WIDE, "paging": {"pageNumber": 0}}), "pageNumber"),
            (json!({"interval": WIDE, "orderBy": "segmentEnd"}), "segmentEnd"),
            (json!({"interval": WIDE, "order": "sideways"}), "sideways"),
            (json!({"interval": WIDE, "conversationFilters": []}), "conversationFilters"),
            (json!({"interval": WIDE, "segmentFilters": [{"type": "or", "predicates": []}]}), "predicate"),
            (
                json!({"interval": WIDE, "segmentFilters": [{"type": "or", "predicates": [
                    {"dimension": "purpose", "value": "agent"}]}]}),
                "purpose",
            ),
            (
                json!({"interval": WIDE, "segmentFilters": [{"type": "or", "predicates": [
                    {"dimension": "queueId", "operator": "notExists", "value": "q"}]}]}),
                "notExists",
            ),
        ] {
            let error = parse_query(body.to_string().as_bytes()).expect_err(&body.to_string()).to_string();
            assert!(error.contains(needle), "{body}: {error}");
        }
        assert!(parse_query(b"not json").is_err());
        assert!(parse_query(b"").is_err());
    }

    #[test]
    fn a_queue_predicate_selects_exactly_the_conversations_routed_through_it_in_start_order() {
        let played = played(30);
        let page = run(&query(by_queue(QUEUES[0], 100, 1)), &played);
        let expected: Vec<&Arc<Conversation>> =
            played.iter().map(|(c, _)| c).filter(|c| c.queue_id == QUEUES[0]).collect();
        assert!(!expected.is_empty() && expected.len() < played.len(), "both queues are used");
        let mut expected_ids: Vec<(String, String)> =
            expected.iter().map(|c| (format_millis(&c.transitions[0].at), c.id.clone())).collect();
        expected_ids.sort();
        let listed: Vec<(String, String)> = page["conversations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["conversationStart"].as_str().unwrap().to_owned(),
                    c["conversationId"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(listed, expected_ids);
        assert_eq!(page["totalHits"], expected.len());
    }

    #[test]
    fn predicates_in_an_or_filter_add_up_and_filters_in_a_list_narrow() {
        let played = played(30);
        let user = played
            .iter()
            .flat_map(|(c, _)| &c.participants)
            .find_map(|p| p.user.as_ref())
            .expect("some agent")
            .id
            .clone();
        let predicate = |dimension: &str, value: &str| json!({"dimension": dimension, "value": value});
        let with = |filters: Value| {
            let page = run(
                &query(json!({"interval": WIDE, "paging": {"pageSize": 100}, "segmentFilters": filters})),
                &played,
            );
            ids(&page).into_iter().collect::<BTreeSet<String>>()
        };
        let queue = with(json!([{"type": "or", "predicates": [predicate("queueId", QUEUES[0])]}]));
        let by_user = with(json!([{"type": "or", "predicates": [predicate("userId", &user)]}]));
        let involved: BTreeSet<String> = played
            .iter()
            .filter(|(c, _)| c.participants.iter().any(|p| p.user.as_ref().is_some_and(|u| u.id == user)))
            .map(|(c, _)| c.id.clone())
            .collect();
        assert_eq!(by_user, involved, "alerted-only agents count");
        let either = with(json!([{"type": "or", "predicates": [
            predicate("queueId", QUEUES[0]), predicate("userId", &user)]}]));
        assert_eq!(either, queue.union(&by_user).cloned().collect());
        let both = with(json!([
            {"type": "or", "predicates": [predicate("queueId", QUEUES[0])]},
            {"type": "or", "predicates": [predicate("userId", &user)]},
        ]));
        assert_eq!(both, queue.intersection(&by_user).cloned().collect());
        let and_clause = with(json!([{"type": "or", "clauses": [{"type": "and", "predicates": [
            predicate("queueId", QUEUES[0]), predicate("userId", &user)]}]}]));
        assert_eq!(and_clause, both);
        assert!(with(json!([{"type": "and", "predicates": [predicate("queueId", "nowhere")]}])).is_empty());
    }

    #[test]
    fn pages_split_the_ordered_list_and_an_empty_page_leaves_the_list_out() {
        let played = played(30);
        let whole = ids(&run(&query(json!({"interval": WIDE, "paging": {"pageSize": 100}})), &played));
        assert_eq!(whole.len(), 30);
        let mut pages = Vec::new();
        for number in 1.. {
            let page = run(
                &query(json!({"interval": WIDE, "paging": {"pageSize": 7, "pageNumber": number}})),
                &played,
            );
            assert_eq!(page["totalHits"], 30);
            let listed = ids(&page);
            if listed.is_empty() {
                assert_eq!(page, json!({"totalHits": 30}));
                break;
            }
            assert!(listed.len() <= 7);
            pages.extend(listed);
        }
        assert_eq!(pages, whole);
        let descending = ids(&run(
            &query(json!({"interval": WIDE, "order": "desc", "paging": {"pageSize": 100}})),
            &played,
        ));
        assert_eq!(descending, whole.iter().rev().cloned().collect::<Vec<_>>());
        let none = run(&query(json!({"interval": "2020-01-01T00:00:00Z/2020-01-02T00:00:00Z"})), &played);
        assert_eq!(none, json!({"totalHits": 0}));
    }

    #[test]
    fn the_interval_is_half_open_on_conversation_start() {
        let played = played(12);
        let mut starts: Vec<DateTime<Utc>> = played.iter().map(|(c, _)| c.transitions[0].at).collect();
        starts.sort();
        let interval = format!("{}/{}", format_millis(&starts[3]), format_millis(&starts[7]));
        let page = run(&query(json!({"interval": interval})), &played);
        let expected: BTreeSet<String> = played
            .iter()
            .filter(|(c, _)| (starts[3]..starts[7]).contains(&c.transitions[0].at))
            .map(|(c, _)| c.id.clone())
            .collect();
        assert_eq!(expected.len(), 4);
        assert_eq!(ids(&page).into_iter().collect::<BTreeSet<_>>(), expected);
    }

    #[test]
    fn an_open_conversation_has_no_end_and_shows_only_who_has_appeared() {
        let steps: Vec<Step> = Generator::new(8, &QUEUES.map(str::to_owned), 1, 1).collect();
        let conversation = &steps[0].conversation;
        let everything = query(json!({"interval": WIDE}));
        let customer_only = run(&everything, &[(conversation.clone(), 1)]);
        let listed = &customer_only["conversations"][0];
        assert!(listed.get("conversationEnd").is_none());
        assert_eq!(listed["originatingDirection"], "inbound");
        assert_eq!(listed["participants"].as_array().unwrap().len(), 1);
        assert_eq!(listed["participants"][0]["purpose"], "customer");
        let segment = &listed["participants"][0]["sessions"][0]["segments"][0];
        assert_eq!(segment["segmentType"], "interact");
        assert!(segment.get("segmentEnd").is_none());
        // Not yet queued: a queue predicate does not see it yet.
        let queued = query(by_queue(&conversation.queue_id, 25, 1));
        assert_eq!(run(&queued, &[(conversation.clone(), 1)]), json!({"totalHits": 0}));

        let all = conversation.transitions.len();
        let ended = &run(&queued, &[(conversation.clone(), all)])["conversations"][0];
        assert_eq!(ended["conversationEnd"], format_millis(&conversation.transitions[all - 1].at));
        for (participant, listed) in
            conversation.participants.iter().zip(ended["participants"].as_array().unwrap())
        {
            assert_eq!(listed["participantId"], participant.id.as_str());
            let session = &listed["sessions"][0];
            assert_eq!(session["mediaType"], conversation.media.name());
            let segments = session["segments"].as_array().unwrap();
            let last = segments.last().unwrap();
            assert!(last["segmentEnd"].is_string());
            assert!(last["disconnectType"].as_str().is_some_and(|d| !d.contains('.')), "{last}");
            match (participant.purpose, participant.connected_at) {
                (Purpose::Agent, None) => {
                    assert_eq!(segments.len(), 1);
                    assert_eq!(last["segmentType"], "alert");
                    assert_eq!(last["disconnectType"], "timeout");
                }
                (Purpose::Agent, Some(_)) => {
                    let types: Vec<&str> =
                        segments.iter().map(|s| s["segmentType"].as_str().unwrap()).collect();
                    assert_eq!(types, ["alert", "interact"]);
                    assert_eq!(segments[0]["segmentEnd"], segments[1]["segmentStart"]);
                    assert!(segments[0].get("disconnectType").is_none());
                    assert_eq!(listed["userId"], participant.user.as_ref().unwrap().id.as_str());
                }
                _ => assert_eq!(segments.len(), 1),
            }
        }
    }

    #[test]
    fn dotted_disconnect_types_become_camel_case() {
        assert_eq!(analytics_disconnect_type("transfer.conference"), "conferenceTransfer");
        assert_eq!(analytics_disconnect_type("peer"), "peer");
    }
}
