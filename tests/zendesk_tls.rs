//! TLS to Zendesk is always verified: against a server whose CA the system does not know,
//! the client fails; with that CA in `zendesk.ca_file`, it succeeds. The server is the
//! simulator behind a TLS front with a certificate from a CA made at test time.

mod common;

use zendesk_ivr::config::ZendeskConfig;
use zendesk_ivr::zendesk::ZendeskClient;
use zendesk_ivr::zendesk::client::ClientError;
use zendesk_ivr::zendesk::sim::{self, SimAuth, SimData, SimState};

use common::tls::{TestCa, tls_front};

const EMAIL: &str = "ivr@example.com";
const TOKEN: &str = "test-token-123";

/// The simulator behind TLS for `https://localhost:PORT`; returns the config for it.
async fn https_simulator(ca: &TestCa) -> ZendeskConfig {
    let state = SimState::new(
        SimData::sample(),
        Some(SimAuth { email: EMAIL.into(), token: TOKEN.into() }),
    );
    let (plain, _task) = sim::spawn("127.0.0.1:0".parse().unwrap(), state).await.unwrap();
    let front = tls_front(&ca.issue("zendesk", 7001), plain).await;
    ZendeskConfig {
        url: format!("https://localhost:{}", front.port()),
        email: Some(EMAIL.into()),
        api_token: Some(TOKEN.into()),
        ..ZendeskConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_ca_is_refused() {
    let ca = TestCa::new("private Zendesk CA");
    let config = https_simulator(&ca).await;
    let client = ZendeskClient::from_config(&config).expect("client");
    let err = client.current_user().await.expect_err("an unknown CA is refused");
    let text = format!("{err:?}");
    assert!(text.contains("UnknownIssuer"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_ca_file_is_trusted() {
    let ca = TestCa::new("private Zendesk CA");
    let config = ZendeskConfig { ca_file: Some(ca.cert()), ..https_simulator(&ca).await };
    let client = ZendeskClient::from_config(&config).expect("client");
    let me = client.current_user().await.expect("the simulator answers over TLS");
    assert_eq!(me.email.as_deref(), Some(EMAIL));
}

#[tokio::test(flavor = "multi_thread")]
async fn another_ca_in_the_ca_file_is_refused() {
    let ca = TestCa::new("private Zendesk CA");
    let other = TestCa::new("another CA");
    let config = ZendeskConfig { ca_file: Some(other.cert()), ..https_simulator(&ca).await };
    let client = ZendeskClient::from_config(&config).expect("client");
    let err = client.current_user().await.expect_err("only the CA file's CAs are trusted");
    assert!(format!("{err:?}").contains("UnknownIssuer"), "{err:?}");
}

#[test]
fn a_ca_file_that_cannot_be_read_stops_the_client() {
    let config = ZendeskConfig {
        url: "https://localhost:1".into(),
        email: Some(EMAIL.into()),
        api_token: Some(TOKEN.into()),
        ca_file: Some("/nonexistent/ca.pem".into()),
        ..ZendeskConfig::default()
    };
    let err = ZendeskClient::from_config(&config).expect_err("no client");
    assert!(matches!(err, ClientError::CaFile { .. }), "{err}");
}
