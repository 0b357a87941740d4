//! A Genesys client for the tests that drive the simulator on its own over loopback: get
//! a token, open a notification channel, subscribe, connect a socket and read its frames
//! by a deadline. Each test file keeps its own `DEADLINE` and seed.

use std::time::Duration;

use awc::error::{WsClientError, WsProtocolError};
use awc::ws::{Frame, Message};
use awc::Client;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use serde_json::{json, Value};
use timelined::sim::{SimConfig, SimHandle};
use tokio::time::{timeout_at, Instant};

/// What awc's `connect` hands back, without naming the codec crate.
pub trait Socket:
    Stream<Item = Result<Frame, WsProtocolError>> + Sink<Message, Error = WsProtocolError> + Unpin
{
}

impl<S> Socket for S where
    S: Stream<Item = Result<Frame, WsProtocolError>> + Sink<Message, Error = WsProtocolError> + Unpin
{
}

/// The largest frame (or JSON body) a test accepts.
pub const MAX_FRAME: usize = 16 * 1024 * 1024;

pub fn client() -> Client {
    timelined::cli::install_crypto_provider();
    Client::builder().timeout(Duration::from_secs(3)).finish()
}

/// A short, fast finite run of `conversations` from `seed`.
pub fn small_run(seed: u64, conversations: u64) -> SimConfig {
    SimConfig { seed, conversations, rate: 1_000, concurrency: 3, ..SimConfig::default() }
}

/// `POST /oauth/token` with the client-credentials grant: the JSON body of the 200 answer.
pub async fn grant(client: &Client, sim: &SimHandle) -> Value {
    let mut response = client
        .post(format!("{}/oauth/token", sim.base_url()))
        .basic_auth("client-id", "client-secret")
        .send_form(&[("grant_type", "client_credentials")])
        .await
        .expect("token request");
    assert_eq!(response.status(), 200);
    response.json().await.expect("token json")
}

/// The bearer token of a grant's body.
pub fn access_token(grant: &Value) -> String {
    grant["access_token"].as_str().expect("access_token").to_owned()
}

/// A bearer token.
pub async fn token(client: &Client, sim: &SimHandle) -> String {
    access_token(&grant(client, sim).await)
}

/// `POST /api/v2/notifications/channels`: the status, any `Retry-After`, the JSON body.
pub async fn create_channel(client: &Client, sim: &SimHandle, token: &str) -> (u16, Option<String>, Value) {
    let mut response = client
        .post(format!("{}/api/v2/notifications/channels", sim.base_url()))
        .bearer_auth(token)
        .send()
        .await
        .expect("channel request");
    let retry_after =
        response.headers().get("retry-after").map(|v| v.to_str().unwrap_or_default().to_owned());
    let body = response.json().await.unwrap_or(Value::Null);
    (response.status().as_u16(), retry_after, body)
}

/// A new channel: its id and connectUri.
pub async fn channel(client: &Client, sim: &SimHandle, token: &str) -> (String, String) {
    let (status, _, body) = create_channel(client, sim, token).await;
    assert_eq!(status, 200, "{body}");
    (body["id"].as_str().expect("id").to_owned(), body["connectUri"].as_str().expect("connectUri").to_owned())
}

/// `PUT` a channel's subscriptions to `topics`: the status and the JSON body.
pub async fn put_topics(
    client: &Client,
    sim: &SimHandle,
    token: &str,
    channel: &str,
    topics: &[String],
) -> (u16, Value) {
    let body: Vec<Value> = topics.iter().map(|t| json!({ "id": t })).collect();
    let mut response = client
        .put(format!("{}/api/v2/notifications/channels/{channel}/subscriptions", sim.base_url()))
        .bearer_auth(token)
        .send_json(&body)
        .await
        .expect("subscriptions request");
    let status = response.status().as_u16();
    let json = response.json().limit(MAX_FRAME).await.unwrap_or(Value::Null);
    (status, json)
}

/// `GET /api/v2/conversations/{id}`, the backfill of one conversation: the status and the
/// JSON body.
pub async fn backfill(client: &Client, sim: &SimHandle, token: &str, conversation: &str) -> (u16, Value) {
    let mut response = client
        .get(format!("{}/api/v2/conversations/{conversation}", sim.base_url()))
        .bearer_auth(token)
        .send()
        .await
        .expect("backfill request");
    let status = response.status().as_u16();
    let json = response.json().limit(MAX_FRAME).await.unwrap_or(Value::Null);
    (status, json)
}

pub async fn connect(client: &Client, uri: &str) -> impl Socket {
    let (_, socket) = client.ws(uri).max_frame_size(MAX_FRAME).connect().await.expect("websocket upgrade");
    socket
}

/// The status an upgrade was refused with.
pub async fn refused_upgrade(client: &Client, uri: &str) -> u16 {
    match client.ws(uri).connect().await {
        Err(WsClientError::InvalidResponseStatus(status)) => status.as_u16(),
        Err(other) => panic!("expected a refused upgrade, got {other}"),
        Ok(_) => panic!("the upgrade to {uri} was accepted"),
    }
}

pub fn analytics_url(sim: &SimHandle) -> String {
    format!("ws://{}/api/v2/analytics/conversations/stream", sim.addr())
}

pub async fn send_json(socket: &mut impl Socket, value: Value) {
    socket.send(Message::Text(value.to_string().into())).await.expect("send on socket");
}

pub enum Next {
    Frame(Frame),
    /// The connection ended (cleanly or not) without a Close frame first.
    Ended,
    TimedOut,
}

/// The next frame of any kind, or why none came by `until`.
pub async fn next(socket: &mut impl Socket, until: Instant) -> Next {
    match timeout_at(until, socket.next()).await {
        Err(_) => Next::TimedOut,
        Ok(None) | Ok(Some(Err(_))) => Next::Ended,
        Ok(Some(Ok(frame))) => Next::Frame(frame),
    }
}
