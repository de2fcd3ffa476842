//! The Zendesk API client: the data dip (caller by phone, latest unsolved ticket) under one
//! deadline, and (in `writes`) the post-call writes: comments, tickets for unknown callers.
//!
//! One `reqwest::Client` is shared by every call, so dips run on warm keep-alive
//! connections. The call path never waits past its deadline: retries and `Retry-After` are
//! honoured only when they fit in the time left, a circuit breaker answers at once while
//! Zendesk is down, and repeat callers are served from a short-lived cache.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use reqwest::header::{AUTHORIZATION, HeaderValue, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use tokio::time::Instant as TokioInstant;

use super::auth::{Credentials, CredentialsError};
use super::breaker::CircuitBreaker;
use super::cache::TtlCache;
use super::model::{ApiError, SearchResponse, Ticket, User, parse_time};
pub use super::model::{DipOutcome, FallbackReason};
use super::retry::{Backoff, DEFAULT_RETRY_AFTER, parse_retry_after};
use crate::config::ZendeskConfig;
use crate::phone::PhoneNumber;

mod endpoint_label;
mod tls;
mod writes;
use crate::outbox::PostError;

/// Largest response body read, in bytes.
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;
/// Most search results considered per query.
pub const MAX_RESULTS: usize = 100;
/// Most comment pages read when looking for a call-id marker.
pub const MAX_COMMENT_PAGES: usize = 20;
/// Time limit of one request off the call path (comments, ticket creation).
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    #[error("zendesk.url {0:?} is not an http(s) URL")]
    BadUrl(String),
    #[error("building the HTTP client: {0}")]
    Http(String),
    #[error("zendesk.ca_file {path}: {reason}")]
    CaFile { path: std::path::PathBuf, reason: String },
}

/// Why one request failed, as the retry logic sees it.
#[derive(Debug, Clone)]
enum RequestError {
    /// 429 with this wait.
    RateLimited(Duration),
    /// The request surely had no effect (connect error, 503).
    Transient(String),
    /// The request may have had an effect (timeout or reset after send, 500/502/504, bad body).
    Ambiguous(String),
    /// Retrying does not help (4xx other than 429).
    Permanent(String),
}

impl RequestError {
    fn retryable(&self) -> bool {
        matches!(self, RequestError::Transient(_) | RequestError::Ambiguous(_))
    }
    fn message(&self) -> String {
        match self {
            RequestError::RateLimited(d) => format!("rate limited for {d:?}"),
            RequestError::Transient(m)
            | RequestError::Ambiguous(m)
            | RequestError::Permanent(m) => m.clone(),
        }
    }
}

impl From<RequestError> for PostError {
    fn from(err: RequestError) -> Self {
        match err {
            RequestError::RateLimited(d) => PostError::RetryAfter(d),
            RequestError::Transient(m) => PostError::Transient(m),
            RequestError::Ambiguous(m) => PostError::Ambiguous(m),
            RequestError::Permanent(m) => PostError::Permanent(m),
        }
    }
}

struct DipState {
    breaker: CircuitBreaker,
    cache: TtlCache<DipOutcome>,
    /// After a 429, dips before this instant fall back at once.
    rate_limited_until: Option<Instant>,
}

struct Inner {
    http: reqwest::Client,
    base: String,
    auth: Option<HeaderValue>,
    deadline: Duration,
    sort_by: String,
    backoff: Backoff,
    state: Mutex<DipState>,
}

/// The Zendesk client. Cheap to clone; clones share connections, breaker and cache.
#[derive(Clone)]
pub struct ZendeskClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ZendeskClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZendeskClient")
            .field("base", &self.inner.base)
            .field("auth", &self.inner.auth.as_ref().map(|_| "[redacted]"))
            .field("deadline", &self.inner.deadline)
            .finish()
    }
}

impl ZendeskClient {
    /// Builds the client from `[zendesk]` (credentials from the config, the environment via
    /// the config overrides, or `api_token_file`).
    pub fn from_config(config: &ZendeskConfig) -> Result<Self, ClientError> {
        let credentials = Credentials::from_config(config)?;
        Self::new(config, &credentials)
    }

    pub fn new(config: &ZendeskConfig, credentials: &Credentials) -> Result<Self, ClientError> {
        let base = config.url.trim().trim_end_matches('/').to_string();
        if reqwest::Url::parse(&base)
            .map(|u| !matches!(u.scheme(), "http" | "https"))
            .unwrap_or(true)
        {
            return Err(ClientError::BadUrl(config.url.clone()));
        }
        // reqwest is built without a default crypto provider; ring is ours. An error only
        // means a provider is installed already.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let builder = reqwest::Client::builder()
            .user_agent(concat!("zendesk-ivr/", env!("CARGO_PKG_VERSION")))
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(64)
            .tcp_keepalive(Duration::from_secs(30))
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(3))
            .redirect(reqwest::redirect::Policy::none());
        let http = tls::trust(builder, config.ca_file.as_deref())?
            .build()
            .map_err(|e| ClientError::Http(e.to_string()))?;
        let state = DipState {
            breaker: CircuitBreaker::new(
                config.breaker_failures,
                Duration::from_secs(config.breaker_open_s),
            ),
            cache: TtlCache::new(Duration::from_secs(config.cache_ttl_s), config.cache_size),
            rate_limited_until: None,
        };
        Ok(ZendeskClient {
            inner: Arc::new(Inner {
                http,
                base,
                auth: credentials.header()?,
                deadline: config.deadline(),
                sort_by: config.sort_by.clone(),
                backoff: Backoff::CALL_PATH,
                state: Mutex::new(state),
            }),
        })
    }

    /// The deadline of one data dip.
    pub fn deadline(&self) -> Duration {
        self.inner.deadline
    }

    fn state(&self) -> MutexGuard<'_, DipState> {
        // A panic while holding the lock leaves plain data behind; keep using it.
        self.inner.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Finds the caller and their latest unsolved ticket within the configured deadline.
    pub async fn data_dip(&self, ani: Option<&PhoneNumber>) -> DipOutcome {
        self.data_dip_until(ani, TokioInstant::now() + self.inner.deadline).await
    }

    /// [`ZendeskClient::data_dip`] with an explicit deadline (e.g. counted from the INVITE).
    pub async fn data_dip_until(
        &self,
        ani: Option<&PhoneNumber>,
        deadline: TokioInstant,
    ) -> DipOutcome {
        let started = Instant::now();
        let outcome = match ani {
            None => DipOutcome::Anonymous,
            Some(number) => self.dip_number(number, deadline).await,
        };
        let label = match &outcome {
            DipOutcome::Found { .. } => "found",
            DipOutcome::UnknownCaller => "unknown",
            DipOutcome::Anonymous => "anonymous",
            DipOutcome::Fallback { reason: FallbackReason::Deadline } => "deadline",
            DipOutcome::Fallback { reason: FallbackReason::BreakerOpen } => "breaker_open",
            DipOutcome::Fallback { reason: FallbackReason::RateLimited { .. } } => "rate_limited",
            DipOutcome::Fallback { reason: FallbackReason::Error { .. } } => "error",
        };
        metrics::counter!("zendesk_dip_total", "outcome" => label).increment(1);
        metrics::histogram!("zendesk_dip_seconds").record(started.elapsed().as_secs_f64());
        tracing::debug!(
            outcome = label,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "data dip"
        );
        outcome
    }

    async fn dip_number(&self, number: &PhoneNumber, deadline: TokioInstant) -> DipOutcome {
        let now = Instant::now();
        {
            let mut state = self.state();
            if let Some(hit) = state.cache.get(&number.e164, now) {
                metrics::counter!("zendesk_dip_cache_hits_total").increment(1);
                return hit;
            }
            if let Some(until) = state.rate_limited_until {
                if now < until {
                    let retry_after_ms = (until - now).as_millis() as u64;
                    return DipOutcome::Fallback {
                        reason: FallbackReason::RateLimited { retry_after_ms },
                    };
                }
                state.rate_limited_until = None;
            }
            if !state.breaker.allow(now) {
                return DipOutcome::Fallback { reason: FallbackReason::BreakerOpen };
            }
        }
        let mut probe = ProbeGuard { client: self, settled: false };
        let result = tokio::time::timeout_at(deadline, self.lookup(number, deadline)).await;
        probe.settled = true;
        let now = Instant::now();
        let mut state = self.state();
        match result {
            Ok(Ok(outcome)) => {
                state.breaker.on_success();
                state.cache.insert(number.e164.clone(), outcome.clone(), now);
                outcome
            }
            Ok(Err(RequestError::RateLimited(wait))) => {
                state.breaker.on_abandoned();
                state.rate_limited_until = Some(now + wait);
                tracing::warn!(retry_after_ms = wait.as_millis() as u64, "Zendesk rate limit");
                DipOutcome::Fallback {
                    reason: FallbackReason::RateLimited { retry_after_ms: wait.as_millis() as u64 },
                }
            }
            Ok(Err(err)) => {
                state.breaker.on_failure(now);
                tracing::warn!(error = %err.message(), "data dip failed");
                DipOutcome::Fallback { reason: FallbackReason::Error { message: err.message() } }
            }
            Err(_elapsed) => {
                state.breaker.on_failure(now);
                tracing::warn!(
                    deadline_ms = self.inner.deadline.as_millis() as u64,
                    "data dip deadline"
                );
                DipOutcome::Fallback { reason: FallbackReason::Deadline }
            }
        }
    }

    /// The two searches of a dip (three when the E.164 form finds nobody).
    async fn lookup(
        &self,
        number: &PhoneNumber,
        deadline: TokioInstant,
    ) -> Result<DipOutcome, RequestError> {
        let mut users =
            self.search_users(&format!("phone:{}", number.e164_digits()), deadline).await?;
        if users.is_empty() {
            users = self.search_users(&format!("phone:*{}", number.national), deadline).await?;
        }
        let Some((user, greet_by_name)) = choose_user(users) else {
            return Ok(DipOutcome::UnknownCaller);
        };
        let ticket = self.latest_unsolved_ticket(user.id, deadline).await?;
        Ok(DipOutcome::Found { user, ticket, greet_by_name })
    }

    async fn search_users(
        &self,
        phone_term: &str,
        deadline: TokioInstant,
    ) -> Result<Vec<User>, RequestError> {
        let query = format!("type:user {phone_term}");
        let page: SearchResponse = self
            .get_json_call_path("/api/v2/search.json", &[("query", query.as_str())], deadline)
            .await?;
        Ok(page.typed::<User>("user", MAX_RESULTS).into_iter().map(User::cleaned).collect())
    }

    async fn latest_unsolved_ticket(
        &self,
        user_id: u64,
        deadline: TokioInstant,
    ) -> Result<Option<Ticket>, RequestError> {
        let query = format!("type:ticket requester_id:{user_id} status<solved");
        let params = [
            ("query", query.as_str()),
            ("sort_by", self.inner.sort_by.as_str()),
            ("sort_order", "desc"),
        ];
        let page: SearchResponse =
            self.get_json_call_path("/api/v2/search.json", &params, deadline).await?;
        let tickets = page
            .typed::<Ticket>("ticket", MAX_RESULTS)
            .into_iter()
            .filter(|t| t.requester_id == user_id && t.status.is_unsolved());
        let chosen = if self.inner.sort_by == "updated_at" {
            // Don't trust the order alone: take the most recently updated.
            tickets.max_by_key(|t| parse_time(t.updated_at.as_deref()))
        } else {
            tickets.into_iter().next()
        };
        Ok(chosen.map(Ticket::cleaned))
    }

    /// GET with retries for the call path: 5xx and connection errors are retried with
    /// jittered backoff, and a 429 is waited out, only when the wait ends before `deadline`.
    async fn get_json_call_path<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
        deadline: TokioInstant,
    ) -> Result<T, RequestError> {
        let mut attempt = 0;
        loop {
            let result = self.send(Method::GET, path, query, None::<&()>, None).await;
            let body = match result {
                Ok(body) => body,
                Err(err) => {
                    attempt += 1;
                    let wait = match &err {
                        RequestError::RateLimited(wait) => *wait,
                        e if e.retryable() && attempt < self.inner.backoff.max_attempts => {
                            self.inner.backoff.jittered(attempt - 1)
                        }
                        _ => return Err(err),
                    };
                    if TokioInstant::now() + wait >= deadline {
                        tracing::debug!(wait_ms = wait.as_millis() as u64, "no time left to retry");
                        return Err(err);
                    }
                    tracing::debug!(error = %err.message(), wait_ms = wait.as_millis() as u64, "retrying");
                    tokio::time::sleep(wait).await;
                    continue;
                }
            };
            match serde_json::from_slice(&body) {
                Ok(value) => return Ok(value),
                Err(err) => {
                    attempt += 1;
                    let err =
                        RequestError::Ambiguous(format!("malformed JSON from Zendesk: {err}"));
                    let wait = self.inner.backoff.jittered(attempt - 1);
                    if attempt >= self.inner.backoff.max_attempts
                        || TokioInstant::now() + wait >= deadline
                    {
                        return Err(err);
                    }
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// One request; the body of a 2xx answer, or the classified failure.
    async fn send<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&B>,
        timeout: Option<Duration>,
    ) -> Result<bytes::Bytes, RequestError> {
        let url = format!("{}{}", self.inner.base, path);
        self.send_url(method, &url, query, body, timeout).await
    }

    async fn send_url<B: Serialize>(
        &self,
        method: Method,
        url: &str,
        query: &[(&str, &str)],
        body: Option<&B>,
        timeout: Option<Duration>,
    ) -> Result<bytes::Bytes, RequestError> {
        let is_write = method != Method::GET;
        let mut request = self.inner.http.request(method.clone(), url).query(query);
        if let Some(auth) = &self.inner.auth {
            request = request.header(AUTHORIZATION, auth.clone());
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        if let Some(timeout) = timeout {
            request = request.timeout(timeout);
        }
        tracing::debug!(%method, path = url.strip_prefix(&self.inner.base).unwrap_or(url), "Zendesk request");
        let endpoint = endpoint_label::endpoint_label(
            &method,
            url.strip_prefix(&self.inner.base).unwrap_or(""),
        );
        let sent = request.send().await;
        let status_label = sent.as_ref().map(|r| r.status().as_str().to_string());
        let status_label = status_label.unwrap_or_else(|_| "error".into());
        metrics::counter!("zendesk_requests_total", "endpoint" => endpoint, "status" => status_label)
            .increment(1);
        let mut response = sent.map_err(|e| classify_send_error(&e, is_write))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(|v| parse_retry_after(v, SystemTime::now()).unwrap_or(DEFAULT_RETRY_AFTER));
        let body = read_bounded(&mut response).await.map_err(|e| {
            if status.is_success() && !is_write {
                RequestError::Transient(e)
            } else {
                RequestError::Ambiguous(e)
            }
        })?;
        if status.is_success() {
            return Ok(body);
        }
        let detail = ApiError::parse(&body)
            .map(|e| e.to_string())
            .unwrap_or_else(|| status.canonical_reason().unwrap_or("").to_string());
        let message = format!("HTTP {}: {detail}", status.as_u16());
        Err(match status {
            StatusCode::TOO_MANY_REQUESTS => {
                RequestError::RateLimited(retry_after.unwrap_or(DEFAULT_RETRY_AFTER))
            }
            StatusCode::SERVICE_UNAVAILABLE => match retry_after {
                Some(wait) => RequestError::RateLimited(wait),
                None => RequestError::Transient(message),
            },
            s if s.is_server_error() && is_write => RequestError::Ambiguous(message),
            s if s.is_server_error() => RequestError::Transient(message),
            StatusCode::REQUEST_TIMEOUT if !is_write => RequestError::Transient(message),
            _ => RequestError::Permanent(message),
        })
    }
}

/// Frees the breaker's half-open probe slot if the dip is dropped midway (caller hung up).
struct ProbeGuard<'a> {
    client: &'a ZendeskClient,
    settled: bool,
}

impl Drop for ProbeGuard<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.client.state().breaker.on_abandoned();
        }
    }
}

/// Picks the caller among the users with the number: end-users first, then the most recently
/// updated. Greets by name only if the number is not shared and no one else of the same kind
/// has it.
pub fn choose_user(users: Vec<User>) -> Option<(User, bool)> {
    let any_end_user = users.iter().any(User::is_end_user);
    let mut pool: Vec<User> =
        users.into_iter().filter(|u| !any_end_user || u.is_end_user()).collect();
    let alone = pool.len() == 1;
    pool.sort_by_key(|u| std::cmp::Reverse(parse_time(u.updated_at.as_deref())));
    let user = pool.into_iter().next()?;
    let greet = alone && !user.has_shared_phone_number();
    Some((user, greet))
}

fn classify_send_error(err: &reqwest::Error, is_write: bool) -> RequestError {
    // Only a failed connect surely sent nothing; anything later may have reached Zendesk.
    let message = format!("request failed: {}", error_chain(err));
    if err.is_connect() || !is_write {
        RequestError::Transient(message)
    } else {
        RequestError::Ambiguous(message)
    }
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

async fn read_bounded(response: &mut reqwest::Response) -> Result<bytes::Bytes, String> {
    if response.content_length().is_some_and(|len| len > MAX_BODY_BYTES as u64) {
        return Err(format!("response larger than {MAX_BODY_BYTES} bytes"));
    }
    let mut body = bytes::BytesMut::new();
    while let Some(chunk) =
        response.chunk().await.map_err(|e| format!("reading the response: {}", error_chain(&e)))?
    {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(format!("response larger than {MAX_BODY_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: u64, role: &str, updated: &str, shared: bool) -> User {
        User {
            id,
            name: format!("User {id}"),
            email: None,
            phone: Some("+4798765432".into()),
            locale: None,
            role: Some(role.into()),
            shared_phone_number: Some(shared),
            updated_at: Some(updated.into()),
            created_at: None,
        }
    }

    #[test]
    fn end_users_are_preferred_then_the_latest_updated() {
        let (u, greet) = choose_user(vec![
            user(1, "agent", "2024-06-01T00:00:00Z", false),
            user(2, "end-user", "2024-01-01T00:00:00Z", false),
        ])
        .unwrap();
        assert_eq!((u.id, greet), (2, true));
        let (u, greet) = choose_user(vec![
            user(3, "end-user", "2024-01-01T00:00:00Z", false),
            user(4, "end-user", "2024-03-01T00:00:00Z", false),
            user(5, "end-user", "2023-12-01T00:00:00Z", false),
        ])
        .unwrap();
        assert_eq!((u.id, greet), (4, false));
        let (u, greet) =
            choose_user(vec![user(6, "end-user", "2024-01-01T00:00:00Z", true)]).unwrap();
        assert_eq!((u.id, greet), (6, false));
        assert!(choose_user(vec![]).is_none());
    }

    #[test]
    fn debug_never_shows_the_token() {
        let config = ZendeskConfig {
            email: Some("a@b.c".into()),
            api_token: Some("s3cr3t-token".into()),
            ..ZendeskConfig::default()
        };
        let client = ZendeskClient::from_config(&config).unwrap();
        let text = format!("{client:?}");
        assert!(!text.contains("s3cr3t"), "{text}");
        assert!(text.contains("redacted"));
    }
}
