//! The API endpoints: search, tickets, comments and users, in Zendesk's shapes, after the
//! request is logged, faults are applied and the credentials are checked.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::data::{self, SimComment, SimData};
use super::faults::{self, Endpoint, FaultKind};
use super::{MAX_COMMENT_BYTES, MAX_PER_PAGE, RecordedRequest, SimAuth, SimState, lock, search};
use crate::zendesk::auth::base64_decode;
use crate::zendesk::model::{Comment, NewTicket, Status, Ticket, User};

/// The API routes the simulator knows, from method and path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Search,
    ListTickets,
    CreateTicket,
    ShowTicket(u64),
    UpdateTicket(u64),
    Comments(u64),
    ShowUser(u64),
    /// `GET /api/v2/users/me`: who the credentials belong to.
    Me,
}

impl Route {
    fn endpoint(self) -> Endpoint {
        match self {
            Route::Search => Endpoint::Search,
            Route::ListTickets
            | Route::CreateTicket
            | Route::ShowTicket(_)
            | Route::UpdateTicket(_) => Endpoint::Tickets,
            Route::Comments(_) => Endpoint::Comments,
            Route::ShowUser(_) | Route::Me => Endpoint::Users,
        }
    }
}

fn route(method: &Method, path: &str) -> Option<Route> {
    let rest = path.strip_prefix("/api/v2/")?;
    let rest = rest.strip_suffix(".json").unwrap_or(rest);
    let parts: Vec<&str> = rest.split('/').collect();
    let id = |s: &str| s.parse::<u64>().ok();
    match (method, parts.as_slice()) {
        (&Method::GET, ["search"]) => Some(Route::Search),
        (&Method::GET, ["tickets"]) => Some(Route::ListTickets),
        (&Method::POST, ["tickets"]) => Some(Route::CreateTicket),
        (&Method::GET, ["tickets", t]) => Some(Route::ShowTicket(id(t)?)),
        (&Method::PUT, ["tickets", t]) => Some(Route::UpdateTicket(id(t)?)),
        (&Method::GET, ["tickets", t, "comments"]) => Some(Route::Comments(id(t)?)),
        (&Method::GET, ["users", "me"]) => Some(Route::Me),
        (&Method::GET, ["users", u]) => Some(Route::ShowUser(id(u)?)),
        _ => None,
    }
}

pub(super) async fn api(
    State(state): State<SimState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let route = route(&method, uri.path());
    state.record(RecordedRequest {
        method: method.to_string(),
        path: uri.path().to_string(),
        query: uri.query().map(str::to_string),
        body: (!body.is_empty()).then(|| String::from_utf8_lossy(&body).into_owned()),
        endpoint: route.map(Route::endpoint),
    });
    tracing::debug!(%method, path = uri.path(), "simulator request");
    let Some(route) = route else {
        return error(StatusCode::NOT_FOUND, "InvalidEndpoint", "Not found");
    };
    let decision = faults::decide(&mut lock(&state.inner.faults), route.endpoint());
    if !decision.latency.is_zero() {
        tokio::time::sleep(decision.latency).await;
    }
    match decision.failure {
        Some(FaultKind::Stall { ms }) => {
            // Carried out now; only the answer is lost.
            let status = answer(&state, route, &uri, &headers, &body).status();
            tracing::debug!(%status, ?ms, "simulator withholds the answer");
            match ms {
                Some(ms) => tokio::time::sleep(std::time::Duration::from_millis(ms)).await,
                None => std::future::pending::<()>().await,
            }
            return fault_response(FaultKind::Stall { ms });
        }
        Some(failure) => return fault_response(failure),
        None => {}
    }
    answer(&state, route, &uri, &headers, &body)
}

/// Carries out an API request and builds its answer (no faults applied).
fn answer(state: &SimState, route: Route, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Response {
    if !authorised(state.inner.auth.as_ref(), headers) {
        return json_response(
            StatusCode::UNAUTHORIZED,
            json!({ "error": "Couldn't authenticate you" }),
        );
    }
    let base = base_url(headers);
    let params = query_pairs(uri.query().unwrap_or(""));
    let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let mut data = lock(&state.inner.data);
    match route {
        Route::Search => search_response(
            &data,
            &base,
            param("query"),
            param("sort_by"),
            param("sort_order"),
            page_of(param("page")),
            per_page_of(param("per_page")),
        ),
        Route::ShowTicket(id) => match data.tickets.iter().find(|t| t.id == id) {
            Some(ticket) => {
                json_response(StatusCode::OK, json!({ "ticket": ticket_json(ticket, &base) }))
            }
            None => not_found(),
        },
        Route::ShowUser(id) => match data.user(id) {
            Some(user) => json_response(StatusCode::OK, json!({ "user": user_json(user, &base) })),
            None => not_found(),
        },
        Route::Me => {
            // Past the auth check: the API user the IVR signs in as.
            let email = state.inner.auth.as_ref().map_or("ivr@example.com", |a| a.email.as_str());
            let me = User {
                id: 1,
                name: "Zendesk IVR".into(),
                email: Some(email.to_string()),
                phone: None,
                locale: Some(data::default_locale()),
                role: Some("admin".into()),
                shared_phone_number: Some(false),
                created_at: None,
                updated_at: None,
            };
            json_response(StatusCode::OK, json!({ "user": user_json(&me, &base) }))
        }
        Route::UpdateTicket(id) => update_ticket(&mut data, &base, id, body),
        Route::CreateTicket => create_ticket(&mut data, &base, body),
        Route::ListTickets => {
            // Only the external_id filter is implemented (all the client uses).
            let wanted = param("external_id");
            let tickets: Vec<Value> = data
                .tickets
                .iter()
                .filter(|t| wanted.is_none_or(|w| t.external_id.as_deref() == Some(w)))
                .map(|t| ticket_json(t, &base))
                .collect();
            let count = tickets.len();
            json_response(
                StatusCode::OK,
                json!({ "tickets": tickets, "count": count, "next_page": null, "previous_page": null }),
            )
        }
        Route::Comments(id) => {
            if !data.tickets.iter().any(|t| t.id == id) {
                return not_found();
            }
            let mut comments = data.comments_of(id);
            if param("sort_order") == Some("desc") {
                comments.reverse();
            }
            let per_page = per_page_of(param("per_page"));
            let page = page_of(param("page"));
            let count = comments.len();
            let slice: Vec<Value> = comments
                .into_iter()
                .skip((page - 1).saturating_mul(per_page))
                .take(per_page)
                .map(comment_json)
                .collect();
            let next_page = (page.saturating_mul(per_page) < count).then(|| {
                let order = param("sort_order").unwrap_or("asc");
                format!(
                    "{base}/api/v2/tickets/{id}/comments.json?page={}&per_page={per_page}&sort_order={order}",
                    page + 1
                )
            });
            json_response(
                StatusCode::OK,
                json!({ "comments": slice, "next_page": next_page, "previous_page": null, "count": count }),
            )
        }
    }
}

fn page_of(value: Option<&str>) -> usize {
    value.and_then(|v| v.parse::<usize>().ok()).filter(|&p| p >= 1).unwrap_or(1).min(10_000)
}

fn per_page_of(value: Option<&str>) -> usize {
    value
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&p| p >= 1)
        .unwrap_or(MAX_PER_PAGE)
        .min(MAX_PER_PAGE)
}

fn search_response(
    data: &SimData,
    base: &str,
    query: Option<&str>,
    sort_by: Option<&str>,
    sort_order: Option<&str>,
    page: usize,
    per_page: usize,
) -> Response {
    let Some(text) = query else {
        return error(StatusCode::BAD_REQUEST, "InvalidSearch", "query is required");
    };
    let query = match search::parse_query(text) {
        Ok(query) => query,
        Err(err) => return error(StatusCode::BAD_REQUEST, "InvalidSearch", &err.to_string()),
    };
    let hits = search::search(data, &query, sort_by, sort_order);
    let count = hits.len();
    let results: Vec<Value> = hits
        .into_iter()
        .skip((page - 1).saturating_mul(per_page))
        .take(per_page)
        .map(|hit| match hit {
            search::Hit::User(user) => with_result_type(user_json(user, base), "user"),
            search::Hit::Ticket(ticket) => with_result_type(ticket_json(ticket, base), "ticket"),
        })
        .collect();
    let next_page = (page.saturating_mul(per_page) < count).then(|| {
        let mut pairs = vec![("query", text.to_string()), ("page", (page + 1).to_string())];
        if let Some(s) = sort_by {
            pairs.push(("sort_by", s.to_string()));
        }
        if let Some(s) = sort_order {
            pairs.push(("sort_order", s.to_string()));
        }
        format!("{base}/api/v2/search.json?{}", encode_pairs(&pairs))
    });
    json_response(
        StatusCode::OK,
        json!({ "results": results, "count": count, "next_page": next_page,
                "previous_page": null, "facets": null }),
    )
}

fn update_ticket(data: &mut SimData, base: &str, id: u64, body: &[u8]) -> Response {
    #[derive(Deserialize)]
    struct Update {
        ticket: UpdateFields,
    }
    #[derive(Deserialize)]
    struct UpdateFields {
        #[serde(default)]
        comment: Option<CommentInput>,
        #[serde(default)]
        status: Option<Status>,
    }
    let update: Update = match serde_json::from_slice(body) {
        Ok(update) => update,
        Err(err) => return invalid(&err.to_string()),
    };
    let comment_id = data.next_comment_id();
    let Some(ticket) = data.ticket_mut(id) else { return not_found() };
    let now = data::now_rfc3339();
    if let Some(status) = update.ticket.status {
        ticket.status = status;
    }
    ticket.updated_at = Some(now.clone());
    let ticket = ticket.clone();
    let mut events = Vec::new();
    if let Some(comment) = update.ticket.comment {
        if let Err(reason) = comment.check() {
            return invalid(reason);
        }
        let comment = SimComment {
            id: comment_id,
            ticket_id: id,
            author_id: 1,
            body: comment.body,
            // Zendesk makes a comment public unless told otherwise.
            public: comment.public.unwrap_or(true),
            created_at: now,
        };
        events.push(json!({ "id": comment.id, "type": "Comment", "body": comment.body, "public": comment.public }));
        data.comments.push(comment);
    }
    json_response(
        StatusCode::OK,
        json!({ "ticket": ticket_json(&ticket, base), "audit": { "ticket_id": id, "events": events } }),
    )
}

#[derive(Deserialize)]
struct CommentInput {
    body: String,
    #[serde(default)]
    public: Option<bool>,
}

impl CommentInput {
    fn check(&self) -> Result<(), &'static str> {
        if self.body.trim().is_empty() {
            return Err("comment body is empty");
        }
        if self.body.len() > MAX_COMMENT_BYTES {
            return Err("comment body is too long");
        }
        Ok(())
    }
}

fn create_ticket(data: &mut SimData, base: &str, body: &[u8]) -> Response {
    #[derive(Deserialize)]
    struct Create {
        ticket: NewTicket,
    }
    let create: Create = match serde_json::from_slice(body) {
        Ok(create) => create,
        Err(err) => return invalid(&err.to_string()),
    };
    let new = create.ticket;
    let comment = CommentInput { body: new.comment.body.clone(), public: Some(new.comment.public) };
    if let Err(reason) = comment.check() {
        return invalid(reason);
    }
    let now = data::now_rfc3339();
    let requester_id = match (new.requester_id, new.requester) {
        (Some(id), _) if data.user(id).is_some() => id,
        (Some(_), _) => return invalid("requester_id is not a user"),
        (None, Some(requester)) => {
            let id = data.next_user_id();
            data.users.push(User {
                id,
                name: requester.name,
                email: None,
                phone: requester.phone,
                locale: Some(data::default_locale()),
                role: Some(data::default_role()),
                shared_phone_number: Some(false),
                created_at: Some(now.clone()),
                updated_at: Some(now.clone()),
            });
            id
        }
        (None, None) => return invalid("a requester is needed"),
    };
    let ticket = Ticket {
        id: data.next_ticket_id(),
        subject: Some(new.subject),
        status: Status::New,
        priority: new.priority,
        requester_id,
        tags: new.tags,
        created_at: Some(now.clone()),
        updated_at: Some(now.clone()),
        external_id: new.external_id,
    };
    data.comments.push(SimComment {
        id: data.next_comment_id(),
        ticket_id: ticket.id,
        author_id: requester_id,
        body: comment.body,
        public: new.comment.public,
        created_at: now,
    });
    data.tickets.push(ticket.clone());
    json_response(StatusCode::CREATED, json!({ "ticket": ticket_json(&ticket, base) }))
}

/// A model record in its API shape, with the fields the simulator adds that the data dip
/// does not read.
fn api_json(record: &impl serde::Serialize, extra: Value) -> Value {
    let mut value = serde_json::to_value(record).unwrap_or_else(|_| json!({}));
    if let (Some(object), Value::Object(extra)) = (value.as_object_mut(), extra) {
        object.extend(extra);
    }
    value
}

fn user_json(user: &User, base: &str) -> Value {
    api_json(
        user,
        json!({
            "url": format!("{base}/api/v2/users/{}.json", user.id),
            "active": true,
            "verified": true,
            "suspended": false,
            "time_zone": "UTC",
            "iana_time_zone": "Etc/UTC",
            "tags": [],
            "user_fields": {},
        }),
    )
}

fn ticket_json(ticket: &Ticket, base: &str) -> Value {
    api_json(
        ticket,
        json!({
            "url": format!("{base}/api/v2/tickets/{}.json", ticket.id),
            "raw_subject": ticket.subject,
            "type": null,
            "submitter_id": ticket.requester_id,
            "is_public": true,
            "via": { "channel": "web" },
        }),
    )
}

fn comment_json(comment: &SimComment) -> Value {
    let api = Comment {
        id: comment.id,
        body: comment.body.clone(),
        public: comment.public,
        author_id: Some(comment.author_id),
        created_at: Some(comment.created_at.clone()),
        kind: Some("Comment".into()),
    };
    api_json(&api, json!({ "plain_body": comment.body, "attachments": [] }))
}

fn with_result_type(mut value: Value, kind: &str) -> Value {
    if let Some(object) = value.as_object_mut() {
        object.insert("result_type".into(), Value::from(kind));
    }
    value
}

fn authorised(auth: Option<&SimAuth>, headers: &HeaderMap) -> bool {
    let Some(auth) = auth else { return true };
    let Some(value) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    if let Some(token) = value.strip_prefix("Bearer ") {
        return token.trim() == auth.token;
    }
    let Some(encoded) = value.strip_prefix("Basic ") else { return false };
    let Some(decoded) = base64_decode(encoded) else { return false };
    decoded == format!("{}/token:{}", auth.email, auth.token).as_bytes()
}

fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| h.chars().all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c)))
        .unwrap_or("localhost");
    format!("http://{host}")
}

fn fault_response(kind: FaultKind) -> Response {
    match kind {
        FaultKind::RateLimit { retry_after_s } => {
            let mut response = error(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequests",
                "You have exceeded the rate limit",
            );
            if let Ok(value) = HeaderValue::from_str(&retry_after_s.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            response
        }
        FaultKind::ServerError { status } => json_response(
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            json!({ "errors": [{ "code": "InternalError", "title": "Internal server error" }] }),
        ),
        FaultKind::MalformedJson => Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "application/json; charset=utf-8")
            .body(Body::from("{\"results\": [ {\"id\": 1, \"name\": \"trunc"))
            .unwrap_or_default(),
        // A stall ends like a drop, after the wait (see `api`).
        FaultKind::Drop | FaultKind::Stall { .. } => {
            // A body that fails at once makes the server cut the connection.
            let stream = futures_util::stream::once(async {
                Err::<Bytes, std::io::Error>(std::io::Error::other("connection dropped"))
            });
            Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from_stream(stream))
                .unwrap_or_default()
        }
        FaultKind::Latency { .. } => StatusCode::OK.into_response(),
    }
}

fn json_response(status: StatusCode, body: Value) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    let headers = response.headers_mut();
    headers.insert("x-rate-limit", HeaderValue::from_static("700"));
    headers.insert("x-rate-limit-remaining", HeaderValue::from_static("699"));
    response
}

pub(super) fn error(status: StatusCode, code: &str, description: &str) -> Response {
    json_response(status, json!({ "error": code, "description": description }))
}

fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "RecordNotFound", "Not found")
}

fn invalid(reason: &str) -> Response {
    json_response(
        StatusCode::UNPROCESSABLE_ENTITY,
        json!({ "error": "RecordInvalid", "description": "Record validation errors",
                "details": { "base": [{ "description": reason }] } }),
    )
}

/// Decodes `a=b&c=d` (with `+` and `%XX`).
pub(super) fn query_pairs(query: &str) -> Vec<(String, String)> {
    reqwest::Url::parse(&format!("http://x/?{query}"))
        .map(|url| url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect())
        .unwrap_or_default()
}

fn encode_pairs(pairs: &[(&str, String)]) -> String {
    let mut url = reqwest::Url::parse("http://x/").unwrap_or_else(|_| unreachable!());
    url.query_pairs_mut().extend_pairs(pairs.iter().map(|(k, v)| (*k, v.as_str())));
    url.query().unwrap_or("").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_accept_paths_with_and_without_json() {
        assert_eq!(route(&Method::GET, "/api/v2/search.json"), Some(Route::Search));
        assert_eq!(route(&Method::GET, "/api/v2/search"), Some(Route::Search));
        assert_eq!(route(&Method::PUT, "/api/v2/tickets/7.json"), Some(Route::UpdateTicket(7)));
        assert_eq!(route(&Method::GET, "/api/v2/tickets/7/comments"), Some(Route::Comments(7)));
        assert_eq!(route(&Method::POST, "/api/v2/tickets.json"), Some(Route::CreateTicket));
        assert_eq!(route(&Method::GET, "/api/v2/tickets/x"), None);
        assert_eq!(route(&Method::DELETE, "/api/v2/tickets/7"), None);
        assert_eq!(route(&Method::GET, "/other"), None);
    }

    #[test]
    fn auth_check_reads_basic_and_bearer() {
        let auth = SimAuth { email: "a@b.c".into(), token: "tok".into() };
        let mut headers = HeaderMap::new();
        assert!(!authorised(Some(&auth), &headers));
        assert!(authorised(None, &headers));
        // base64("a@b.c/token:tok")
        headers
            .insert(header::AUTHORIZATION, HeaderValue::from_static("Basic YUBiLmMvdG9rZW46dG9r"));
        assert!(authorised(Some(&auth), &headers));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic YUBiLmM6dG9r"));
        assert!(!authorised(Some(&auth), &headers));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer tok"));
        assert!(authorised(Some(&auth), &headers));
        assert!(!format!("{auth:?}").contains("tok\""));
    }

    /// A stalled PUT adds its comment, the client hears nothing, and the next PUT is
    /// answered as usual.
    #[tokio::test]
    async fn a_stalled_write_lands_but_is_never_answered() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let state = SimState::sample();
        state.add_fault("tickets:stall@1".parse().unwrap());
        let (addr, _server) =
            super::super::spawn("127.0.0.1:0".parse().unwrap(), state.clone()).await.unwrap();
        let http = reqwest::Client::new();
        let put = |marker: &str| {
            http.put(format!("http://{addr}/api/v2/tickets/101.json"))
                .timeout(std::time::Duration::from_millis(300))
                .json(&json!({ "ticket": { "comment": { "body": marker, "public": false } } }))
                .send()
        };
        let before = state.comments(101).len();

        let stalled = put("stalled-write").await;
        assert!(stalled.as_ref().is_err_and(reqwest::Error::is_timeout), "{stalled:?}");
        let comments = state.comments(101);
        assert_eq!(comments.len(), before + 1);
        assert!(comments.last().is_some_and(|c| c.body == "stalled-write" && !c.public));

        let answered = put("answered-write").await.unwrap();
        assert_eq!(answered.status(), StatusCode::OK);
        assert_eq!(state.comments(101).len(), before + 2);
        let puts = state.requests().iter().filter(|r| r.method == "PUT").count();
        assert_eq!(puts, 2);
    }

    /// With a hold time, the stall ends by cutting the connection: no status reaches the
    /// client, only an error.
    #[tokio::test]
    async fn a_bounded_stall_cuts_the_connection() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let state = SimState::sample();
        state.add_fault("comments:stall:50@1".parse().unwrap());
        let (addr, _server) =
            super::super::spawn("127.0.0.1:0".parse().unwrap(), state.clone()).await.unwrap();
        let url = format!("http://{addr}/api/v2/tickets/101/comments.json");
        let started = std::time::Instant::now();
        let read = async { reqwest::get(&url).await?.bytes().await };
        let cut = tokio::time::timeout(std::time::Duration::from_secs(5), read).await.unwrap();
        assert!(cut.is_err(), "{cut:?}");
        assert!(started.elapsed() >= std::time::Duration::from_millis(50));
        let again = reqwest::get(&url).await.unwrap();
        assert_eq!(again.status(), StatusCode::OK);
    }

    #[test]
    fn query_pairs_round_trip() {
        let encoded = encode_pairs(&[("query", "type:ticket status<solved".into())]);
        let decoded = query_pairs(&encoded);
        assert_eq!(decoded, vec![("query".into(), "type:ticket status<solved".into())]);
    }
}
