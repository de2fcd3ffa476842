//! The admin listener during and after a real call (SIPp as the caller, the Zendesk
//! simulator behind the dip): `/metrics` moves, and the status page and `/calls.json`
//! show the call, with the caller's display name and the ticket's subject escaped.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{next_summary, quick_ivr_config, sipp, start};
use zendesk_ivr::config::{Config, MenuDefault};
use zendesk_ivr::server::RunningServer;
use zendesk_ivr::status::RegistrationTable;
use zendesk_ivr::zendesk::sim::{SimData, SimState};

/// Kari Nordmann, the caller the SIPp scenarios send.
const KARI: u64 = 1001;

async fn get(url: String) -> (u16, String) {
    let response = reqwest::get(url).await.expect("admin answers");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

/// An IVR with Zendesk and the admin listener: status, menu once, then goodbye (a call
/// of a few seconds that the endpoint ends).
async fn setup(dir: &tempfile::TempDir, data: SimData) -> (RunningServer, SimState) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut config: Config = quick_ivr_config();
    config.admin.listen = Some("127.0.0.1:0".parse().unwrap());
    config.ivr.menu_attempts = 1;
    config.ivr.menu_default = MenuDefault::Hangup;
    let state = SimState::new(data, None);
    let config = common::with_simulator(config, dir, state.clone()).await;
    (start(config).await, state)
}

/// Places the named call in the background.
fn call(server: &RunningServer, display: &str) -> tokio::task::JoinHandle<common::SippRun> {
    let (addr, display) = (server.sip_addr(), display.to_string());
    tokio::spawn(async move {
        sipp("uac_named_remote_bye.xml", addr, "u1", &["-key", "display", &display]).await
    })
}

/// Polls `/calls.json` (bounded) until an active call satisfies `wanted`; returns it.
async fn active_call(
    admin: std::net::SocketAddr,
    wanted: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = get(format!("http://{admin}/calls.json")).await;
        assert_eq!(status, 200, "{body}");
        let json: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        if let Some(call) =
            json["calls"]["active"].as_array().into_iter().flatten().find(|c| wanted(c))
        {
            return call.clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "the call never showed: {json:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The sum of the samples of `name` whose labels include every `labels` pair.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, rest) = match series.split_once('{') {
                Some((metric, rest)) => (metric, rest),
                None => (series, ""),
            };
            let all = labels.iter().all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")));
            (metric == name && all).then(|| value.parse::<f64>().ok()).flatten()
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_move_during_and_after_a_call() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _state) = setup(&dir, SimData::sample()).await;
    let admin = server.admin_addr().expect("admin enabled");
    let metrics_url = format!("http://{admin}/metrics");
    let before = get(metrics_url.clone()).await.1;
    let mut ended = server.subscribe();

    let caller = call(&server, "Kari");
    // During the call: it is active, answered, and the dip has asked Zendesk.
    active_call(admin, |c| c["step"] != "ringing" && c["ticket"]["id"].is_u64()).await;
    let (status, during) = get(metrics_url.clone()).await;
    assert_eq!(status, 200);
    assert!(sample(&during, "calls_active", &[]) >= 1.0, "{during}");
    let answered = |t: &str| sample(t, "call_answer_seconds_count", &[]);
    assert!(answered(&during) > answered(&before), "{during}");
    let searches =
        |t: &str| sample(t, "zendesk_requests_total", &[("endpoint", "search"), ("status", "200")]);
    assert!(searches(&during) > searches(&before), "{during}");
    let dips = |t: &str| sample(t, "zendesk_dip_seconds_count", &[]);
    assert!(dips(&during) > dips(&before), "{during}");

    // After it: counted by outcome, and no longer active.
    caller.await.unwrap().assert_ok();
    let summary = next_summary(&mut ended).await;
    let outcome = summary.report.as_ref().expect("the flow reported").outcome.kind();
    let after = get(metrics_url).await.1;
    let calls = |t: &str| sample(t, "calls_total", &[("outcome", outcome)]);
    assert!(calls(&after) > calls(&before), "calls_total{{outcome={outcome}}}: {after}");
    let audio = |t: &str| sample(t, "call_first_audio_seconds_count", &[]);
    assert!(audio(&after) > audio(&before), "{after}");
    assert!(after.contains("# HELP calls_total"), "metrics carry their help text");
    assert!(!after.contains("+4798765432"), "no caller number in any label");
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_status_page_shows_the_call_with_outside_text_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = SimData::sample();
    let subject = "<script>alert('subject')</script>\r\nVia: evil";
    for ticket in data.tickets.iter_mut().filter(|t| t.requester_id == KARI) {
        ticket.subject = Some(subject.into());
    }
    let (server, _state) = setup(&dir, data).await;
    let admin = server.admin_addr().expect("admin enabled");
    let display = "<script>alert(1)</script>";
    let mut ended = server.subscribe();
    // Trunk registration feeds its section through a provider the server holds.
    let registrations = RegistrationTable::default();
    registrations.set("trunk-1", true, "registered <until 12:00>");
    server.status().set_registrations(Arc::new(registrations));

    let caller = call(&server, display);
    let active = active_call(admin, |c| c["ticket"]["id"].is_u64()).await;
    // JSON carries the text as it came (JSON-escaped by the encoder).
    assert_eq!(active["display_name"], display);
    assert_eq!(active["caller"], "+4798765432");
    let call_id = active["call_id"].as_str().expect("a Call-ID").to_string();
    let shown_subject = active["ticket"]["subject"].as_str().expect("the subject").to_string();
    assert!(shown_subject.contains("<script>alert('subject')</script>"), "{shown_subject}");

    let (status, page) = get(format!("http://{admin}/")).await;
    assert_eq!(status, 200);
    assert!(page.contains("http-equiv=\"refresh\""));
    assert!(page.contains(&call_id), "the page lists the call: {page}");
    assert!(!page.contains("<script"), "no markup from outside: {page}");
    assert!(page.contains("&lt;script&gt;alert(1)&lt;&#x2F;script&gt;"), "{page}");
    assert!(page.contains("&lt;script&gt;alert(&#x27;subject&#x27;)"), "{page}");
    assert!(page.contains("Via: evil") && !page.contains("\nVia: evil"), "{page}");
    assert!(page.contains("trunk-1") && page.contains("registered &lt;until 12:00&gt;"));

    caller.await.unwrap().assert_ok();
    next_summary(&mut ended).await;
    let json: serde_json::Value =
        serde_json::from_str(&get(format!("http://{admin}/calls.json")).await.1).unwrap();
    let finished = json["calls"]["finished"].as_array().expect("finished calls");
    let done = finished.iter().find(|c| c["call_id"] == call_id.as_str()).expect("listed");
    assert!(done["outcome"].is_string() && done["answered"] == true, "{done}");
    assert!(!done["path"].as_array().expect("a path").is_empty(), "{done}");
    assert!(json["outbox"]["pending"].is_u64(), "the outbox is shown: {json}");
    assert_eq!(json["registrations"][0]["name"], "trunk-1", "{json}");
    let page = get(format!("http://{admin}/")).await.1;
    assert!(page.contains("Last calls") && page.contains(&call_id), "{page}");
    server.shutdown(Duration::from_secs(1)).await;
}
