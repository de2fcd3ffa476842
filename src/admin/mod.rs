//! The admin listener (runtime layer): `/metrics` (Prometheus text), `/healthz` (the
//! process is alive), `/readyz` (it takes new calls: 503 while draining, so a load
//! balancer stops sending calls before shutdown), and the status page: `/` (HTML that
//! refreshes itself) and `/calls.json` (the same data).

mod status_page;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing::{info, warn};

use crate::status::StatusSources;

/// The process-wide Prometheus recorder, installed on first use. `None` if another
/// recorder was installed first (then `/metrics` says so).
pub fn prometheus() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| match PrometheusBuilder::new().install_recorder() {
            Ok(handle) => {
                crate::metric_catalog::describe_all();
                Some(handle)
            }
            Err(err) => {
                warn!(%err, "metrics recorder not installed; /metrics will be empty");
                None
            }
        })
        .as_ref()
}

#[derive(Clone)]
struct AdminState {
    draining: Arc<AtomicBool>,
    status: Arc<StatusSources>,
}

/// Serves the admin endpoints on `listener` until the process ends.
pub async fn serve(
    listener: tokio::net::TcpListener,
    draining: Arc<AtomicBool>,
    status: Arc<StatusSources>,
) {
    let _ = prometheus();
    let app = Router::new()
        .route("/", get(status_html))
        .route("/calls.json", get(status_json))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .with_state(AdminState { draining, status });
    if let Ok(addr) = listener.local_addr() {
        info!(%addr, "admin listening: / /calls.json /metrics /healthz /readyz");
    }
    if let Err(err) = axum::serve(listener, app).await {
        warn!(%err, "admin listener stopped");
    }
}

/// Binds the admin address and serves it in the background; returns the bound address.
pub async fn spawn(
    addr: SocketAddr,
    draining: Arc<AtomicBool>,
    status: Arc<StatusSources>,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    // Before anything records a metric or keeps a handle on one (with no recorder yet,
    // both go nowhere).
    let _ = prometheus();
    tokio::spawn(serve(listener, draining, status));
    Ok(local)
}

async fn metrics() -> (StatusCode, String) {
    match prometheus() {
        Some(handle) => {
            handle.run_upkeep();
            (StatusCode::OK, handle.render())
        }
        None => (StatusCode::SERVICE_UNAVAILABLE, "no metrics recorder\n".into()),
    }
}

async fn ready(State(state): State<AdminState>) -> (StatusCode, &'static str) {
    if state.draining.load(Ordering::SeqCst) {
        (StatusCode::SERVICE_UNAVAILABLE, "draining\n")
    } else {
        (StatusCode::OK, "ready\n")
    }
}

/// The status page: no script, no cache, refreshed by the browser every few seconds.
async fn status_html(State(state): State<AdminState>) -> impl IntoResponse {
    let snapshot = state.status.snapshot(state.draining.load(Ordering::SeqCst)).await;
    ([(header::CACHE_CONTROL, "no-store")], Html(status_page::render(&snapshot)))
}

async fn status_json(State(state): State<AdminState>) -> impl IntoResponse {
    let snapshot = state.status.snapshot(state.draining.load(Ordering::SeqCst)).await;
    ([(header::CACHE_CONTROL, "no-store")], Json(snapshot))
}
