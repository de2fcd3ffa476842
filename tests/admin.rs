//! The admin listener: health, readiness (503 while draining) and Prometheus metrics.

mod common;

use std::time::Duration;

use common::{next_summary, sipp, start, test_config};

async fn get(client: &reqwest::Client, url: String) -> (u16, String) {
    let response = client.get(url).send().await.expect("admin answers");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread")]
async fn health_readiness_and_metrics() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut config = test_config();
    config.admin.listen = Some("127.0.0.1:0".parse().unwrap());
    let server = start(config).await;
    let admin = server.admin_addr().expect("admin enabled");
    let http = reqwest::Client::new();
    assert_eq!(get(&http, format!("http://{admin}/healthz")).await.0, 200);
    assert_eq!(get(&http, format!("http://{admin}/readyz")).await.0, 200);

    let mut ended = server.subscribe();
    sipp("uac_bye.xml", server.sip_addr(), "u1", &[]).await.assert_ok();
    next_summary(&mut ended).await;
    let (status, text) = get(&http, format!("http://{admin}/metrics")).await;
    assert_eq!(status, 200);
    assert!(text.contains("calls_active"), "{text}");

    assert_eq!(server.drain(Duration::from_millis(10)).await, 0);
    assert_eq!(get(&http, format!("http://{admin}/readyz")).await.0, 503);
    assert_eq!(get(&http, format!("http://{admin}/healthz")).await.0, 200);
}
