//! The admin listener (runtime layer): `/metrics` (Prometheus text), `/healthz` (the
//! process is alive) and `/readyz` (it takes new calls: 503 while draining, so a load
//! balancer stops sending calls before shutdown).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing::{info, warn};

/// The process-wide Prometheus recorder, installed on first use. `None` if another
/// recorder was installed first (then `/metrics` says so).
pub fn prometheus() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| match PrometheusBuilder::new().install_recorder() {
            Ok(handle) => Some(handle),
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
}

/// Serves the admin endpoints on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, draining: Arc<AtomicBool>) {
    let _ = prometheus();
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .with_state(AdminState { draining });
    if let Ok(addr) = listener.local_addr() {
        info!(%addr, "admin listening: /metrics /healthz /readyz");
    }
    if let Err(err) = axum::serve(listener, app).await {
        warn!(%err, "admin listener stopped");
    }
}

/// Binds the admin address and serves it in the background; returns the bound address.
pub async fn spawn(addr: SocketAddr, draining: Arc<AtomicBool>) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    tokio::spawn(serve(listener, draining));
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
