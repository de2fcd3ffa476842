//! A Zendesk simulator (axum) for labs and tests: the search, ticket and comment endpoints
//! the client uses, in Zendesk's shapes, with Basic/Bearer auth checks, fault injection and
//! a request log.
//!
//! Paths are accepted with and without `.json`. Admin endpoints (no auth):
//! `GET|DELETE /__sim/requests` (the log), `GET|POST|DELETE /__sim/faults` (POST takes
//! `{"faults": ["search:500@1", ...]}` or a list of fault objects).

mod api;
pub mod data;
pub mod faults;
pub mod search;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use serde_json::json;

pub use data::{SimComment, SimData};
pub use faults::{Endpoint, Fault, FaultKind};

/// Requests kept in the log; older ones are dropped.
pub const MAX_LOGGED_REQUESTS: usize = 10_000;
/// Longest comment body accepted, in bytes (Zendesk's own limit is 64 KB).
pub const MAX_COMMENT_BYTES: usize = 65_536;
/// Most results per page.
pub const MAX_PER_PAGE: usize = 100;

/// Credentials the simulator demands. Without them it accepts any request.
#[derive(Clone, PartialEq, Eq)]
pub struct SimAuth {
    pub email: String,
    pub token: String,
}

impl std::fmt::Debug for SimAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimAuth").field("email", &self.email).field("token", &"[redacted]").finish()
    }
}

/// One request as the simulator received it (the `Authorization` header is not kept).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub body: Option<String>,
    pub endpoint: Option<Endpoint>,
}

impl RecordedRequest {
    /// The decoded value of a query parameter.
    pub fn param(&self, name: &str) -> Option<String> {
        let query = self.query.as_deref()?;
        api::query_pairs(query).into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }
}

struct SimInner {
    data: Mutex<SimData>,
    faults: Mutex<Vec<Fault>>,
    log: Mutex<VecDeque<RecordedRequest>>,
    auth: Option<SimAuth>,
}

/// The simulator's state, and the handle tests use to set faults and read the log.
#[derive(Clone)]
pub struct SimState {
    inner: Arc<SimInner>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl SimState {
    /// A simulator serving `data`, with Zendesk's defaults filled in where it leaves fields
    /// out (see [`SimData::fill_defaults`]).
    pub fn new(mut data: SimData, auth: Option<SimAuth>) -> SimState {
        data.fill_defaults();
        SimState {
            inner: Arc::new(SimInner {
                data: Mutex::new(data),
                faults: Mutex::new(Vec::new()),
                log: Mutex::new(VecDeque::new()),
                auth,
            }),
        }
    }

    /// The built-in sample data, no auth.
    pub fn sample() -> SimState {
        SimState::new(SimData::sample(), None)
    }

    pub fn add_fault(&self, fault: Fault) {
        lock(&self.inner.faults).push(fault);
    }

    pub fn clear_faults(&self) {
        lock(&self.inner.faults).clear();
    }

    pub fn faults(&self) -> Vec<Fault> {
        lock(&self.inner.faults).clone()
    }

    /// The requests received so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.inner.log).iter().cloned().collect()
    }

    pub fn clear_requests(&self) {
        lock(&self.inner.log).clear();
    }

    /// The comments of a ticket, oldest first.
    pub fn comments(&self, ticket_id: u64) -> Vec<SimComment> {
        lock(&self.inner.data).comments_of(ticket_id).into_iter().cloned().collect()
    }

    /// A copy of all the data.
    pub fn data(&self) -> SimData {
        lock(&self.inner.data).clone()
    }

    fn record(&self, request: RecordedRequest) {
        let mut log = lock(&self.inner.log);
        if log.len() == MAX_LOGGED_REQUESTS {
            log.pop_front();
        }
        log.push_back(request);
    }
}

/// The simulator's routes.
pub fn router(state: SimState) -> Router {
    Router::new()
        .route("/__sim/requests", get(list_requests).delete(clear_requests))
        .route("/__sim/faults", get(list_faults).post(add_faults).delete(clear_faults))
        .fallback(api::api)
        .with_state(state)
}

/// Serves the simulator on `listener` until the future is dropped or the listener fails.
pub async fn serve(listener: tokio::net::TcpListener, state: SimState) -> std::io::Result<()> {
    axum::serve(listener, router(state)).await
}

/// Binds `addr` (port 0 for any) and serves in a background task: the bound address and the
/// task. For tests and the embedded demo.
pub async fn spawn(
    addr: SocketAddr,
    state: SimState,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    Ok((local, tokio::spawn(serve(listener, state))))
}

/// How the `zendesk-sim` command sets the simulator up.
#[derive(Debug, Clone, Default)]
pub struct SimOptions {
    /// Seed data file; the built-in sample data without it.
    pub data: Option<std::path::PathBuf>,
    /// Latency added to every API request, in milliseconds.
    pub latency_ms: Option<u64>,
    /// Fault specs (`search:429:5@1`, see [`faults`]).
    pub faults: Vec<String>,
    /// Credentials to demand; without a token the simulator accepts any request.
    pub email: Option<String>,
    pub token: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SimSetupError {
    #[error(transparent)]
    Seed(#[from] data::SeedError),
    #[error(transparent)]
    Fault(#[from] faults::FaultSpecError),
}

impl SimOptions {
    pub fn build(&self) -> Result<SimState, SimSetupError> {
        let data = match &self.data {
            Some(path) => SimData::from_file(path)?,
            None => SimData::sample(),
        };
        let auth = self.token.as_ref().map(|token| SimAuth {
            email: self.email.clone().unwrap_or_default(),
            token: token.clone(),
        });
        let state = SimState::new(data, auth);
        if let Some(ms) = self.latency_ms.filter(|&ms| ms > 0) {
            state.add_fault(Fault {
                endpoint: Endpoint::Any,
                kind: FaultKind::Latency { ms },
                remaining: None,
            });
        }
        for spec in &self.faults {
            state.add_fault(spec.parse()?);
        }
        Ok(state)
    }
}

/// Serves until `shutdown` completes, then stops accepting and finishes open requests.
pub async fn serve_until(
    listener: tokio::net::TcpListener,
    state: SimState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state)).with_graceful_shutdown(shutdown).await
}

async fn list_requests(State(state): State<SimState>) -> Response {
    axum::Json(json!({ "requests": state.requests() })).into_response()
}

async fn clear_requests(State(state): State<SimState>) -> StatusCode {
    state.clear_requests();
    StatusCode::NO_CONTENT
}

async fn list_faults(State(state): State<SimState>) -> Response {
    axum::Json(json!({ "faults": state.faults() })).into_response()
}

async fn clear_faults(State(state): State<SimState>) -> StatusCode {
    state.clear_faults();
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
#[serde(untagged)]
enum FaultInput {
    Spec(String),
    Object(Fault),
}

async fn add_faults(State(state): State<SimState>, body: Bytes) -> Response {
    #[derive(Deserialize)]
    struct Input {
        faults: Vec<FaultInput>,
    }
    let input: Input = match serde_json::from_slice(&body) {
        Ok(input) => input,
        Err(err) => return api::error(StatusCode::BAD_REQUEST, "InvalidFaults", &err.to_string()),
    };
    let mut parsed = Vec::new();
    for fault in input.faults {
        match fault {
            FaultInput::Object(fault) => parsed.push(fault),
            FaultInput::Spec(spec) => match spec.parse::<Fault>() {
                Ok(fault) => parsed.push(fault),
                Err(err) => {
                    return api::error(StatusCode::BAD_REQUEST, "InvalidFaults", &err.to_string());
                }
            },
        }
    }
    for fault in parsed {
        state.add_fault(fault);
    }
    list_faults(State(state)).await
}
