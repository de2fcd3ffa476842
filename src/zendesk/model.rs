//! Serde types for the parts of the Zendesk Support API the data dip uses.
//!
//! Shapes follow Zendesk's OpenAPI description (`UserForAdmin`/`UserForEndUser`,
//! `TicketObject`, `SearchResponse`, `TicketCommentObject`, `Error`/`Errors`). Every field the
//! client does not strictly need is optional, and unknown enum values are kept as `Other`, so a
//! new value on Zendesk's side never breaks a call.

use serde::{Deserialize, Serialize};

/// Longest name or subject kept from Zendesk, in characters.
pub const MAX_TEXT_CHARS: usize = 200;
/// Most tags kept from a ticket.
pub const MAX_TAGS: usize = 32;

/// A Zendesk user (`UserObject`), with the fields the data dip reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub id: u64,
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    /// e.g. `en-US`, `nb`.
    #[serde(default)]
    pub locale: Option<String>,
    /// `end-user`, `agent` or `admin`.
    #[serde(default)]
    pub role: Option<String>,
    /// The number is shared by several people (an office switchboard): don't greet by name.
    #[serde(default)]
    pub shared_phone_number: Option<bool>,
    /// RFC 3339, e.g. `2024-05-01T10:00:00Z`.
    #[serde(default)]
    pub updated_at: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
}

impl User {
    pub fn is_end_user(&self) -> bool {
        self.role.as_deref() == Some("end-user")
    }
    pub fn has_shared_phone_number(&self) -> bool {
        self.shared_phone_number == Some(true)
    }
}

/// Ticket status (`TicketObject.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    New,
    Open,
    Pending,
    Hold,
    Solved,
    Closed,
    /// A value this build does not know (custom status categories).
    #[serde(other)]
    Other,
}

impl Status {
    pub const ALL: [Status; 6] =
        [Status::New, Status::Open, Status::Pending, Status::Hold, Status::Solved, Status::Closed];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::New => "new",
            Status::Open => "open",
            Status::Pending => "pending",
            Status::Hold => "hold",
            Status::Solved => "solved",
            Status::Closed => "closed",
            Status::Other => "other",
        }
    }

    /// Parses a status name as it appears in a search query.
    pub fn from_name(name: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.as_str().eq_ignore_ascii_case(name))
    }

    /// Below `solved`: the ticket still needs work.
    pub fn is_unsolved(self) -> bool {
        matches!(self, Status::New | Status::Open | Status::Pending | Status::Hold)
    }
}

/// Ticket priority (`TicketObject.priority`); `null` in JSON is `Option::None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    Low,
    Normal,
    High,
    Urgent,
    #[serde(other)]
    Other,
}

impl Priority {
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Normal => "normal",
            Priority::High => "high",
            Priority::Urgent => "urgent",
            Priority::Other => "other",
        }
    }
}

/// A Zendesk ticket (`TicketObject`), with the fields the data dip reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ticket {
    pub id: u64,
    #[serde(default)]
    pub subject: Option<String>,
    pub status: Status,
    #[serde(default)]
    pub priority: Option<Priority>,
    pub requester_id: u64,
    #[serde(default)]
    pub updated_at: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Links the ticket to an outside record; ours is the call-id marker of the call that
    /// opened it, which makes opening a ticket safe to retry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
}

/// `GET /api/v2/tickets.json?external_id=...` (`TicketsResponse`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TicketsResponse {
    #[serde(default)]
    pub tickets: Vec<Ticket>,
    #[serde(default)]
    pub next_page: Option<String>,
}

/// `GET /api/v2/search.json` (`SearchResponse`). Results stay raw JSON because one page can
/// mix types; [`SearchResponse::typed`] keeps the ones of the wanted shape.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SearchResponse {
    #[serde(default)]
    pub results: Vec<serde_json::Value>,
    #[serde(default)]
    pub count: u64,
    #[serde(default)]
    pub next_page: Option<String>,
    #[serde(default)]
    pub previous_page: Option<String>,
}

impl SearchResponse {
    /// The first `limit` results of `result_type` that parse as `T`; others are skipped.
    pub fn typed<T: serde::de::DeserializeOwned>(&self, result_type: &str, limit: usize) -> Vec<T> {
        self.results
            .iter()
            .filter(|r| {
                r.get("result_type").and_then(|t| t.as_str()).is_none_or(|t| t == result_type)
            })
            .filter_map(|r| T::deserialize(r).ok())
            .take(limit)
            .collect()
    }
}

/// A ticket comment (`TicketCommentObject`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comment {
    pub id: u64,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub public: bool,
    #[serde(default)]
    pub author_id: Option<u64>,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
}

/// `GET /api/v2/tickets/{id}/comments.json` (`TicketCommentsResponse`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CommentsResponse {
    #[serde(default)]
    pub comments: Vec<Comment>,
    #[serde(default)]
    pub next_page: Option<String>,
    #[serde(default)]
    pub count: Option<u64>,
}

/// `{"ticket": {...}}` (`TicketResponse`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TicketResponse {
    pub ticket: Ticket,
}

/// A comment to add: `{"body": ..., "public": false}`. `public` is always sent, as leaving
/// it out makes the comment public (and can email the requester).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewComment {
    pub body: String,
    pub public: bool,
}

/// Body of `PUT /api/v2/tickets/{id}.json` adding a comment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TicketUpdateRequest {
    pub ticket: TicketUpdate,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TicketUpdate {
    pub comment: NewComment,
}

/// Body of `POST /api/v2/tickets.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TicketCreateRequest {
    pub ticket: NewTicket,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewTicket {
    pub subject: String,
    pub comment: NewComment,
    /// An existing user, or...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requester_id: Option<u64>,
    /// ...a requester Zendesk creates (or matches) by these details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requester: Option<NewRequester>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewRequester {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

/// Either of Zendesk's error shapes, reduced to a code and a message:
/// `{"error":"RecordNotFound","description":"..."}` (the `error` may also be an object with
/// `title`/`message`), and `{"errors":[{"code":"...","title":"...","detail":"..."}]}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: String,
    pub message: String,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.message.is_empty() {
            f.write_str(&self.code)
        } else {
            write!(f, "{}: {}", self.code, self.message)
        }
    }
}

impl ApiError {
    /// Reads an error body; `None` when it is neither shape (an HTML page from a proxy).
    pub fn parse(body: &[u8]) -> Option<ApiError> {
        let value: serde_json::Value = serde_json::from_slice(body).ok()?;
        let text = |v: Option<&serde_json::Value>| {
            v.and_then(|v| v.as_str()).map(|s| clean_text(s, MAX_TEXT_CHARS)).unwrap_or_default()
        };
        if let Some(error) = value.get("error") {
            let (code, message) = match error {
                serde_json::Value::String(code) => {
                    (clean_text(code, MAX_TEXT_CHARS), text(value.get("description")))
                }
                other => (text(other.get("title")), text(other.get("message"))),
            };
            return Some(ApiError { code, message });
        }
        let first = value.get("errors")?.as_array()?.first()?;
        let detail = text(first.get("detail"));
        let title = text(first.get("title"));
        Some(ApiError {
            code: text(first.get("code")),
            message: if detail.is_empty() { title } else { format!("{title}: {detail}") },
        })
    }
}

/// Makes text from Zendesk safe to log, print and speak: control characters (CR, LF, ...)
/// become spaces, runs of white space collapse, and the length is capped.
pub fn clean_text(text: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max_chars * 4));
    let mut count = 0;
    let mut last_space = true;
    for c in text.chars() {
        let c = if c.is_control() || c.is_whitespace() { ' ' } else { c };
        if c == ' ' && last_space {
            continue;
        }
        if count == max_chars {
            break;
        }
        out.push(c);
        count += 1;
        last_space = c == ' ';
    }
    out.truncate(out.trim_end().len());
    out
}

impl Ticket {
    /// The ticket with its free text cleaned and bounded (see [`clean_text`]).
    pub fn cleaned(mut self) -> Ticket {
        self.subject = self.subject.map(|s| clean_text(&s, MAX_TEXT_CHARS));
        self.tags.truncate(MAX_TAGS);
        for tag in &mut self.tags {
            *tag = clean_text(tag, MAX_TEXT_CHARS);
        }
        self
    }
}

impl User {
    /// The user with its free text cleaned and bounded (see [`clean_text`]).
    pub fn cleaned(mut self) -> User {
        self.name = clean_text(&self.name, MAX_TEXT_CHARS);
        self.locale = self.locale.map(|s| clean_text(&s, 16));
        self
    }
}

/// Parses an RFC 3339 timestamp (Zendesk's `updated_at`), for ordering.
pub fn parse_time(text: Option<&str>) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(text?, &time::format_description::well_known::Rfc3339).ok()
}

/// What the data dip found for a caller: a domain type shared by the flow, routing,
/// the comment and the client.
/// Why the caller gets the fallback (straight to an agent, no personal greeting).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FallbackReason {
    /// The dip did not finish within `zendesk.deadline_ms`.
    Deadline,
    /// The circuit breaker is open: Zendesk failed repeatedly, no request was made.
    BreakerOpen,
    /// Zendesk asked us to wait longer than the time left.
    RateLimited { retry_after_ms: u64 },
    /// Any other failure (HTTP status, malformed JSON, connection error).
    Error { message: String },
}

/// The result of a data dip.
// One per call and moved rarely: boxing the user and ticket would only make matching clumsier.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum DipOutcome {
    /// The caller is a known user; `ticket` is their latest unsolved ticket, if any.
    /// `greet_by_name` is false for shared numbers and when several people match.
    Found {
        user: User,
        ticket: Option<Ticket>,
        greet_by_name: bool,
    },
    /// No user has this number.
    UnknownCaller,
    /// No usable caller ID: the lookup was skipped.
    Anonymous,
    Fallback {
        reason: FallbackReason,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_and_ticket_read_real_shapes_and_tolerate_unknowns() {
        let user: User = serde_json::from_str(
            r#"{"id":1,"name":"Kari Nordmann","phone":"+4798765432","locale":"nb","role":"end-user",
                "shared_phone_number":false,"updated_at":"2024-05-01T10:00:00Z","extra":{"x":1}}"#,
        )
        .unwrap();
        assert!(user.is_end_user());
        assert!(!user.has_shared_phone_number());
        let ticket: Ticket = serde_json::from_str(
            r#"{"id":7,"subject":"Printer\r\non fire","status":"weird","priority":null,
                "requester_id":1,"tags":["a"]}"#,
        )
        .unwrap();
        assert_eq!(ticket.status, Status::Other);
        assert_eq!(ticket.priority, None);
        assert_eq!(ticket.cleaned().subject.as_deref(), Some("Printer on fire"));
        let urgent: Ticket = serde_json::from_str(
            r#"{"id":8,"status":"open","priority":"urgent","requester_id":1}"#,
        )
        .unwrap();
        assert_eq!(urgent.priority, Some(Priority::Urgent));
    }

    #[test]
    fn search_response_keeps_only_the_wanted_type() {
        let page: SearchResponse = serde_json::from_str(
            r#"{"results":[{"result_type":"group","id":3,"name":"g"},
                           {"result_type":"user","id":1,"name":"A"},
                           {"result_type":"user","name":"no id"}],
                "count":3,"next_page":null}"#,
        )
        .unwrap();
        let users: Vec<User> = page.typed("user", 10);
        assert_eq!(users.len(), 1);
        assert_eq!(users[0].id, 1);
    }

    #[test]
    fn both_error_shapes_are_read() {
        let one = ApiError::parse(br#"{"error":"RecordNotFound","description":"Not found"}"#);
        assert_eq!(
            one,
            Some(ApiError { code: "RecordNotFound".into(), message: "Not found".into() })
        );
        let nested = ApiError::parse(
            br#"{"error":{"title":"Forbidden","message":"You do not have access"}}"#,
        );
        assert_eq!(nested.unwrap().to_string(), "Forbidden: You do not have access");
        let many = ApiError::parse(
            br#"{"errors":[{"code":"TooManyRequests","title":"Too many","detail":"slow down"}]}"#,
        );
        assert_eq!(
            many,
            Some(ApiError {
                code: "TooManyRequests".into(),
                message: "Too many: slow down".into()
            })
        );
        assert_eq!(ApiError::parse(b"<html>bad gateway</html>"), None);
        assert_eq!(ApiError::parse(br#"{"errors":[]}"#), None);
    }

    #[test]
    fn clean_text_removes_line_breaks_and_bounds_length() {
        assert_eq!(clean_text("a\r\n\tb  c", 10), "a b c");
        assert_eq!(clean_text("  lead", 10), "lead");
        assert_eq!(clean_text(&"é".repeat(500), 5).chars().count(), 5);
        assert_eq!(clean_text("abc def", 4), "abc");
    }

    #[test]
    fn update_request_always_says_whether_public() {
        let body = serde_json::to_string(&TicketUpdateRequest {
            ticket: TicketUpdate { comment: NewComment { body: "x".into(), public: false } },
        })
        .unwrap();
        assert_eq!(body, r#"{"ticket":{"comment":{"body":"x","public":false}}}"#);
    }
}
