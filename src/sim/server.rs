//! The simulator's HTTP surface: OAuth, the Notifications REST API, the two WebSocket
//! upgrades, conversation backfill, the conversation-details query, and the simulator's
//! own `/sim/truth`, `/sim/faults` and `/sim/hidden`, all on one actix-web port.
//!
//! Handlers are thin: check credentials, decode the request, ask the [`Hub`], render the
//! answer the way the real service does (`{"error","error_description"}` from the login
//! host, `{"message","code","status"}` from the API). Injected HTTP errors (the `http`
//! fault) are answered by a middleware in front of every handler.

use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::HeaderValue;
use actix_web::http::{header, Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::details;
use super::faults;
use super::hub::{HttpAnswer, Hub, SubscriptionError, SubscriptionOp};
use super::protocol;
use super::sockets;

/// Request bodies up to this size (a full 1,000-topic subscription list fits easily).
const MAX_BODY: usize = 4 * 1024 * 1024;

pub(crate) fn routes(config: &mut web::ServiceConfig) {
    config
        .app_data(web::PayloadConfig::new(MAX_BODY))
        .route("/oauth/token", web::post().to(oauth_token))
        .route("/api/v2/notifications/channels", web::post().to(create_channel))
        .route("/api/v2/notifications/channels/{id}", web::head().to(channel_exists))
        .service(
            web::resource("/api/v2/notifications/channels/{id}/subscriptions")
                .route(web::get().to(subscriptions))
                .route(web::put().to(subscriptions))
                .route(web::post().to(subscriptions))
                .route(web::delete().to(subscriptions)),
        )
        .route("/api/v2/conversations/{id}", web::get().to(conversation))
        .route("/api/v2/analytics/conversations/details/query", web::post().to(details_query))
        .route("/api/v2/analytics/conversations/stream", web::get().to(analytics_socket))
        .route("/channels/{id}", web::get().to(channel_socket))
        .route("/sim/truth", web::get().to(truth))
        .route("/sim/faults", web::post().to(post_faults))
        .route("/sim/hidden", web::get().to(hidden));
}

/// Answers a request with the injected error when an `http` fault is due for its path
/// (the WebSocket upgrades included); otherwise serves it.
pub(crate) async fn inject_http_faults<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    if let Some(hub) = req.app_data::<web::Data<Hub>>() {
        hub.record_request(req.method().as_str(), &req.uri().to_string());
    }
    let answer = req.app_data::<web::Data<Hub>>().and_then(|hub| hub.take_http_fault(req.path()));
    match answer {
        Some(answer) => {
            let response = injected_error(req.path(), answer);
            Ok(req.into_response(response).map_into_right_body())
        }
        None => next.call(req).await.map(ServiceResponse::map_into_left_body),
    }
}

/// The injected error in the shape of the endpoint family `path` belongs to.
fn injected_error(path: &str, answer: HttpAnswer) -> HttpResponse {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let message = format!("{} (a simulated fault)", status.canonical_reason().unwrap_or("Error"));
    let mut response = if faults::is_login_path(path) {
        oauth_error(status, faults::oauth_error_code(answer.status), &message)
    } else {
        api_error(status, faults::api_error_code(answer.status), &message)
    };
    if let Some(seconds) = answer.retry_after {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// An error from the API host, in the service's shape.
fn api_error(status: StatusCode, code: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({
        "message": message,
        "code": code,
        "status": status.as_u16(),
    }))
}

/// An error from the login host, in OAuth's shape.
fn oauth_error(status: StatusCode, error: &str, description: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({
        "error": error,
        "error_description": description,
    }))
}

/// `Authorization: <scheme> <credentials>` with a case-insensitive scheme.
fn credentials<'r>(req: &'r HttpRequest, scheme: &str) -> Option<&'r str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (given, credentials) = value.trim().split_once(' ')?;
    given.eq_ignore_ascii_case(scheme).then(|| credentials.trim())
}

/// Every `/api/v2` call needs a known, unexpired bearer token: the 401 to answer, if not.
fn refuse_unauthorized(req: &HttpRequest, hub: &Hub) -> Option<HttpResponse> {
    match credentials(req, "Bearer") {
        Some(token) if hub.token_is_valid(token) => None,
        Some(_) => Some(api_error(
            StatusCode::UNAUTHORIZED,
            "authentication.required",
            "The bearer token is invalid or has expired.",
        )),
        None => Some(api_error(
            StatusCode::UNAUTHORIZED,
            "authentication.required",
            "No authentication bearer token specified in authorization header.",
        )),
    }
}

/// Client credentials: any `id:secret` pair in Basic auth is accepted.
async fn oauth_token(req: HttpRequest, body: web::Bytes, hub: web::Data<Hub>) -> HttpResponse {
    let client = credentials(&req, "Basic")
        .and_then(protocol::decode_base64)
        .and_then(|decoded| String::from_utf8(decoded).ok())
        .filter(|pair| pair.split_once(':').is_some_and(|(id, _)| !id.is_empty()));
    if client.is_none() {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client credentials are required as HTTP Basic authentication",
        );
    }
    let form = String::from_utf8_lossy(&body);
    let grant_type = form.split('&').find_map(|pair| pair.trim().strip_prefix("grant_type="));
    match grant_type {
        Some("client_credentials") => {}
        Some(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "only grant_type=client_credentials is supported",
            )
        }
        None => return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "grant_type is required"),
    }
    let (token, expires_in) = hub.issue_token();
    HttpResponse::Ok().json(json!({
        "access_token": token,
        "token_type": "bearer",
        "expires_in": expires_in,
    }))
}

/// No body, an empty body, or JSON `null` (what the official SDK sends) — any JSON is fine.
async fn create_channel(req: HttpRequest, body: web::Bytes, hub: web::Data<Hub>) -> HttpResponse {
    if let Some(refused) = refuse_unauthorized(&req, &hub) {
        return refused;
    }
    let body_ok = body.iter().all(u8::is_ascii_whitespace) || serde_json::from_slice::<Value>(&body).is_ok();
    if !body_ok {
        return api_error(StatusCode::BAD_REQUEST, "bad.request", "The request body is not JSON.");
    }
    let token = credentials(&req, "Bearer").unwrap_or_default();
    let Some(channel) = hub.create_channel(token) else {
        // The service documents the limit, not its answer: a 400 in its error shape.
        return api_error(
            StatusCode::BAD_REQUEST,
            "channel.limit.exceeded",
            "Every one of the 20 channels this client may hold has an open connection.",
        );
    };
    let host = req.connection_info().host().to_owned();
    let connect_uri = channel.connect_uri.unwrap_or_else(|| format!("ws://{host}/channels/{}", channel.id));
    HttpResponse::Ok().json(json!({
        "id": channel.id,
        "connectUri": connect_uri,
        "expires": channel.expires,
    }))
}

/// `HEAD` on a channel: 200 while it exists (alive, not expired), 404 otherwise; no body.
async fn channel_exists(req: HttpRequest, path: web::Path<String>, hub: web::Data<Hub>) -> HttpResponse {
    if let Some(refused) = refuse_unauthorized(&req, &hub) {
        return refused;
    }
    if hub.channel_is_alive(&path) {
        HttpResponse::Ok().finish()
    } else {
        HttpResponse::NotFound().finish()
    }
}

/// The topics of a subscriptions body: `[{"id": "<topic>"}, …]` (bare strings accepted).
fn requested_topics(body: &[u8]) -> Option<Vec<String>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Some(Vec::new());
    }
    let items: Vec<Value> = serde_json::from_slice(body).ok()?;
    items
        .iter()
        .map(|item| item.as_str().or_else(|| item.get("id").and_then(Value::as_str)).map(str::to_owned))
        .collect()
}

async fn subscriptions(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    hub: web::Data<Hub>,
) -> HttpResponse {
    if let Some(refused) = refuse_unauthorized(&req, &hub) {
        return refused;
    }
    let op = match *req.method() {
        Method::PUT => SubscriptionOp::Replace,
        Method::POST => SubscriptionOp::Add,
        Method::DELETE => SubscriptionOp::RemoveAll,
        _ => SubscriptionOp::List,
    };
    let topics = match op {
        SubscriptionOp::Replace | SubscriptionOp::Add => match requested_topics(&body) {
            Some(topics) => topics,
            None => {
                return api_error(
                    StatusCode::BAD_REQUEST,
                    "bad.request",
                    "Expected a JSON array of {\"id\": \"<topic>\"}.",
                )
            }
        },
        SubscriptionOp::List | SubscriptionOp::RemoveAll => Vec::new(),
    };
    match hub.subscriptions(&path, op, topics) {
        Ok(entities) => {
            let entities: Vec<Value> = entities
                .into_iter()
                .map(|entity| match entity.rejection {
                    None => json!({"id": entity.id, "state": "Permitted"}),
                    Some(reason) => json!({
                        "id": entity.id,
                        "state": "Rejected",
                        "rejectionReason": reason,
                    }),
                })
                .collect();
            HttpResponse::Ok().json(json!({ "entities": entities }))
        }
        Err(SubscriptionError::UnknownChannel) => api_error(
            StatusCode::NOT_FOUND,
            "not.found",
            "The notification channel does not exist or has expired.",
        ),
        Err(SubscriptionError::TooManyTopics) => api_error(
            StatusCode::BAD_REQUEST,
            "bad.request",
            "A channel may subscribe to at most 1000 topics.",
        ),
    }
}

/// Backfill: the conversation as it stands now.
async fn conversation(req: HttpRequest, path: web::Path<String>, hub: web::Data<Hub>) -> HttpResponse {
    if let Some(refused) = refuse_unauthorized(&req, &hub) {
        return refused;
    }
    match hub.conversation(&path) {
        Some(snapshot) => HttpResponse::Ok().content_type("application/json").body(snapshot),
        None => api_error(StatusCode::NOT_FOUND, "not.found", "The conversation does not exist."),
    }
}

/// The analytics conversation-details query: conversations played so far that started in
/// the interval (event time) and match the segment filters, one page of them.
async fn details_query(req: HttpRequest, body: web::Bytes, hub: web::Data<Hub>) -> HttpResponse {
    if let Some(refused) = refuse_unauthorized(&req, &hub) {
        return refused;
    }
    match details::parse_query(&body) {
        Ok(query) => HttpResponse::Ok().content_type("application/json").body(hub.details(&query)),
        Err(error) => api_error(StatusCode::BAD_REQUEST, "bad.request", &error.to_string()),
    }
}

/// The streaming socket at a channel's `connectUri`; no credentials, the id is the secret.
async fn channel_socket(
    req: HttpRequest,
    body: web::Payload,
    path: web::Path<String>,
    hub: web::Data<Hub>,
) -> actix_web::Result<HttpResponse> {
    let not_found = || {
        api_error(
            StatusCode::NOT_FOUND,
            "not.found",
            "The notification channel does not exist or has expired.",
        )
    };
    let channel_id = path.into_inner();
    if !hub.channel_is_alive(&channel_id) {
        return Ok(not_found());
    }
    let (response, session, stream) = actix_ws::handle(&req, body)?;
    let hub: Arc<Hub> = hub.into_inner();
    match sockets::open_notifications(hub, channel_id, session, stream) {
        Some(socket) => Ok(socket.cut_on_abort(response)),
        // Evicted between the check and the upgrade: nothing has been sent yet.
        None => Ok(not_found()),
    }
}

/// The analytics-stream socket; it authenticates in-band with `{"token": …}`.
async fn analytics_socket(
    req: HttpRequest,
    body: web::Payload,
    hub: web::Data<Hub>,
) -> actix_web::Result<HttpResponse> {
    let (response, session, stream) = actix_ws::handle(&req, body)?;
    let socket = sockets::open_analytics(hub.into_inner(), session, stream);
    Ok(socket.cut_on_abort(response))
}

async fn truth(hub: web::Data<Hub>) -> HttpResponse {
    HttpResponse::Ok().json(hub.truth())
}

/// One fault object or an array of them; all are checked before any is applied.
async fn post_faults(body: web::Bytes, hub: web::Data<Hub>) -> HttpResponse {
    match faults::parse_faults(&body) {
        Ok(faults) => {
            for fault in &faults {
                hub.apply(fault);
            }
            HttpResponse::Ok().json(json!({ "applied": faults.len() }))
        }
        Err(error) => api_error(StatusCode::BAD_REQUEST, "bad.request", &error.to_string()),
    }
}

async fn hidden(hub: web::Data<Hub>) -> HttpResponse {
    HttpResponse::Ok().json(hub.hidden())
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn subscription_bodies_are_topic_objects_or_strings() {
        assert_eq!(requested_topics(br#"[{"id":"a"},"b"]"#), Some(vec!["a".to_owned(), "b".to_owned()]));
        assert_eq!(requested_topics(b"  "), Some(Vec::new()));
        assert_eq!(requested_topics(br#"[{"name":"a"}]"#), None);
        assert_eq!(requested_topics(b"nope"), None);
    }

    #[test]
    fn authorization_schemes_are_case_insensitive() {
        let req =
            TestRequest::default().insert_header((header::AUTHORIZATION, "bearer abc")).to_http_request();
        assert_eq!(credentials(&req, "Bearer"), Some("abc"));
        assert_eq!(credentials(&req, "Basic"), None);
    }

    #[test]
    fn injected_errors_take_the_shape_of_their_endpoint_family() {
        let answer = HttpAnswer { status: 429, retry_after: Some(2) };
        let login = injected_error("/oauth/token", answer);
        assert_eq!(login.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(login.headers().get(header::RETRY_AFTER).unwrap(), "2");
        let api = injected_error("/api/v2/conversations/c", HttpAnswer { status: 503, retry_after: None });
        assert_eq!(api.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(api.headers().get(header::RETRY_AFTER).is_none());
    }
}
