//! The API token never appears in logs, even at the most verbose level.

use std::io::Write;
use std::sync::{Arc, Mutex};

use base64::Engine;
use zendesk_ivr::config::ZendeskConfig;
use zendesk_ivr::zendesk::sim::{self, Endpoint, Fault, FaultKind, SimAuth, SimData, SimState};
use zendesk_ivr::zendesk::{DipOutcome, ZendeskClient, normalise};

const TOKEN: &str = "very-secret-token-8c1f";

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// A current-thread runtime: the client, the simulator and the HTTP stack all log on this
// thread, where the test subscriber is installed.
#[tokio::test(flavor = "current_thread")]
async fn token_never_appears_in_logs_at_debug_level() {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let sim = SimState::new(
        SimData::sample(),
        Some(SimAuth { email: "ivr@example.com".into(), token: TOKEN.into() }),
    );
    let (addr, _task) = sim::spawn("127.0.0.1:0".parse().unwrap(), sim.clone()).await.unwrap();
    let config = ZendeskConfig {
        url: format!("http://{addr}"),
        email: Some("ivr@example.com".into()),
        api_token: Some(TOKEN.into()),
        ..ZendeskConfig::default()
    };
    let client = ZendeskClient::from_config(&config).unwrap();
    tracing::debug!(?client, ?config.email, "client built");
    let kari = normalise("+4798765432", "NO").unwrap();
    assert!(matches!(client.data_dip(Some(&kari)).await, DipOutcome::Found { .. }));
    client.add_comment(102, "summary", false).await.unwrap();
    // A failing request logs its error too.
    sim.add_fault(Fault {
        endpoint: Endpoint::Any,
        kind: FaultKind::ServerError { status: 500 },
        remaining: None,
    });
    let other = normalise("+4741234567", "NO").unwrap();
    assert!(matches!(client.data_dip(Some(&other)).await, DipOutcome::Fallback { .. }));

    let logs = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("Zendesk request"), "debug logs were captured:\n{logs}");
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("ivr@example.com/token:{TOKEN}"));
    for secret in [TOKEN, basic.as_str(), &basic[..16]] {
        assert!(!logs.contains(secret), "{secret:?} leaked into the logs:\n{logs}");
    }
}
