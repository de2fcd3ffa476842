//! Calls with the Zendesk simulator: the data dip finds the caller's ticket, and the
//! post-call comment lands on it exactly once, also when Zendesk fails at hang-up.

mod common;

use std::time::Duration;

use common::{next_summary, sipp, start, test_config};
use zendesk_ivr::config::Config;
use zendesk_ivr::outbox::EntryState;
use zendesk_ivr::zendesk::client::DipOutcome;
use zendesk_ivr::zendesk::sim::{self, SimData, SimState};

/// The caller number the SIPp scenarios send (Kari Nordmann in the sample data).
const KARI_TICKETS: [u64; 2] = [101, 102];

async fn setup(dir: &tempfile::TempDir) -> (Config, SimState) {
    setup_with(dir, SimState::sample()).await
}

async fn setup_with(dir: &tempfile::TempDir, state: SimState) -> (Config, SimState) {
    (common::with_simulator(test_config(), dir, state.clone()).await, state)
}

/// Waits (bounded) until `ticket` has a comment containing `needle`; returns how many.
async fn comments_with(state: &SimState, ticket: u64, needle: &str) -> usize {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let count = state.comments(ticket).iter().filter(|c| c.body.contains(needle)).count();
        if count > 0 || tokio::time::Instant::now() > deadline {
            return count;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn ticket_of(dip: &Option<DipOutcome>) -> u64 {
    match dip {
        Some(DipOutcome::Found { ticket: Some(t), user, .. }) => {
            assert_eq!(user.id, 1001, "the caller is Kari Nordmann");
            t.id
        }
        other => panic!("expected the caller and a ticket, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_comment_lands_on_the_callers_latest_ticket() {
    let dir = tempfile::tempdir().unwrap();
    let (config, state) = setup(&dir).await;
    let server = start(config).await;
    let mut ended = server.subscribe();
    sipp("uac_bye.xml", server.sip_addr(), "u1", &[]).await.assert_ok();
    let summary = next_summary(&mut ended).await;
    let ticket = ticket_of(&summary.dip);
    assert!(KARI_TICKETS.contains(&ticket));
    let marker = format!("[call-id: {}]", summary.call_id);
    assert_eq!(comments_with(&state, ticket, &marker).await, 1);
    let comment = state.comments(ticket).into_iter().find(|c| c.body.contains(&marker)).unwrap();
    assert!(!comment.public, "post-call comments are private notes");
    assert!(comment.body.contains("+4798765432"), "{}", comment.body);
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn zendesk_failing_at_hang_up_still_gets_the_comment_once() {
    let dir = tempfile::tempdir().unwrap();
    let (config, state) = setup(&dir).await;
    // Searches work (the dip finds the ticket); the first three comment PUTs fail.
    state.add_fault("tickets:500@3".parse().unwrap());
    let server = start(config).await;
    let mut ended = server.subscribe();
    sipp("uac_bye.xml", server.sip_addr(), "u1", &[]).await.assert_ok();
    let summary = next_summary(&mut ended).await;
    let ticket = ticket_of(&summary.dip);
    let marker = format!("[call-id: {}]", summary.call_id);
    assert_eq!(comments_with(&state, ticket, &marker).await, 1);
    let puts = state
        .requests()
        .iter()
        .filter(|r| r.method == "PUT" && r.path.contains(&ticket.to_string()))
        .count();
    assert!(puts >= 4, "three failed PUTs, then the one that landed: {puts}");
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_zendesk_gives_the_fallback_and_the_call_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let (mut config, _state) = setup(&dir).await;
    config.zendesk.url = "http://127.0.0.1:9".into(); // nothing listens on the discard port
    config.zendesk.deadline_ms = 300;
    let server = start(config).await;
    let mut ended = server.subscribe();
    sipp("uac_bye.xml", server.sip_addr(), "u1", &[]).await.assert_ok();
    let summary = next_summary(&mut ended).await;
    assert!(summary.answered);
    assert!(matches!(summary.dip, Some(DipOutcome::Fallback { .. })), "{:?}", summary.dip);
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_caller_gets_one_ticket_even_when_zendesk_loses_the_answer() {
    let dir = tempfile::tempdir().unwrap();
    // Nobody is known; the ticket create is carried out but its answer is lost.
    let (mut config, state) = setup_with(&dir, SimState::new(SimData::default(), None)).await;
    config.zendesk.create_ticket_for_unknown = true;
    state.add_fault("tickets:stall:100@1".parse().unwrap());
    let server = start(config).await;
    let mut ended = server.subscribe();
    sipp("uac_bye.xml", server.sip_addr(), "u1", &[]).await.assert_ok();
    let summary = next_summary(&mut ended).await;
    assert!(matches!(summary.dip, Some(DipOutcome::UnknownCaller)), "{:?}", summary.dip);
    let marker = format!("[call-id: {}]", summary.call_id);

    let outbox = server.outbox().expect("an outbox").clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while outbox.find(&marker).await.unwrap().map(|e| e.state) != Some(EntryState::Delivered) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the ticket entry was not delivered: {:?}\nrequests: {:#?}",
            outbox.find(&marker).await,
            state.requests()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let data = state.data();
    let opened: Vec<_> =
        data.tickets.iter().filter(|t| t.external_id.as_deref() == Some(&marker)).collect();
    assert_eq!(opened.len(), 1, "one ticket for the call: {opened:?}");
    let requester = data.users.iter().find(|u| u.id == opened[0].requester_id).expect("requester");
    assert_eq!(requester.phone.as_deref(), Some("+4798765432"));
    let comments = state.comments(opened[0].id);
    assert_eq!(comments.len(), 1);
    assert!(comments[0].body.contains(&marker) && !comments[0].public, "{:?}", comments[0]);
    // The lost answer made the outbox look for the ticket before creating another.
    let checked = state.requests().iter().any(|r| {
        r.method == "GET"
            && r.path.starts_with("/api/v2/tickets")
            && r.param("external_id") == Some(marker.clone())
    });
    assert!(checked, "looked the ticket up by its external id");
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn zendesk_down_for_the_whole_call_still_gets_the_comment_once_it_is_back() {
    let dir = tempfile::tempdir().unwrap();
    // Zendesk's port is bound but not listening: every connection is refused.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let mut config = test_config();
    config.zendesk.enabled = true;
    config.zendesk.url = format!("http://{}", socket.local_addr().unwrap());
    config.zendesk.deadline_ms = 300;
    config.outbox.path = dir.path().join("outbox.sqlite");
    config.outbox.backoff_base_ms = 20;
    config.outbox.backoff_cap_ms = 200;
    let server = start(config).await;
    let mut ended = server.subscribe();
    sipp("uac_bye.xml", server.sip_addr(), "u1", &[]).await.assert_ok();
    let summary = next_summary(&mut ended).await;
    assert!(matches!(summary.dip, Some(DipOutcome::Fallback { .. })), "{:?}", summary.dip);
    let marker = format!("[call-id: {}]", summary.call_id);
    let outbox = server.outbox().expect("an outbox").clone();
    let queued = outbox.find(&marker).await.unwrap().expect("the comment is queued");
    assert_eq!(queued.state, EntryState::Pending);

    // Zendesk comes back on the same address: the outbox finds Kari's latest ticket.
    let state = SimState::sample();
    let latest = state
        .data()
        .tickets
        .iter()
        .filter(|t| t.requester_id == 1001 && t.status.is_unsolved())
        .max_by_key(|t| t.updated_at.clone())
        .map(|t| t.id)
        .expect("Kari has an unsolved ticket");
    tokio::spawn(sim::serve(socket.listen(64).unwrap(), state.clone()));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let ticket = loop {
        if let Some(t) = KARI_TICKETS
            .into_iter()
            .find(|t| state.comments(*t).iter().any(|c| c.body.contains(&marker)))
        {
            break t;
        }
        assert!(tokio::time::Instant::now() < deadline, "the comment never landed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(comments_with(&state, ticket, &marker).await, 1);
    assert_eq!(ticket, latest, "on the caller's latest unsolved ticket");
    server.shutdown(Duration::from_secs(1)).await;
}
