//! The Zendesk client against the in-process simulator (port 0): lookups, deadlines,
//! retries, rate limits, the circuit breaker, the cache and comments.

use std::time::{Duration, Instant};

use zendesk_ivr::config::ZendeskConfig;
use zendesk_ivr::outbox::{CommentSink, PostError};
use zendesk_ivr::zendesk::model::{NewComment, NewRequester, NewTicket, Priority};
use zendesk_ivr::zendesk::sim::{self, Endpoint, Fault, FaultKind, SimAuth, SimData, SimState};
use zendesk_ivr::zendesk::{DipOutcome, FallbackReason, PhoneNumber, ZendeskClient, normalise};

const EMAIL: &str = "ivr@example.com";
const TOKEN: &str = "test-token-123";

struct Lab {
    sim: SimState,
    client: ZendeskClient,
    config: ZendeskConfig,
}

async fn lab_with(adjust: impl FnOnce(&mut ZendeskConfig)) -> Lab {
    let sim = SimState::new(
        SimData::sample(),
        Some(SimAuth { email: EMAIL.into(), token: TOKEN.into() }),
    );
    let (addr, _task) = sim::spawn("127.0.0.1:0".parse().unwrap(), sim.clone()).await.unwrap();
    let mut config = ZendeskConfig {
        url: format!("http://{addr}"),
        email: Some(EMAIL.into()),
        api_token: Some(TOKEN.into()),
        cache_ttl_s: 0,
        ..ZendeskConfig::default()
    };
    adjust(&mut config);
    let client = ZendeskClient::from_config(&config).unwrap();
    Lab { sim, client, config }
}

async fn lab() -> Lab {
    lab_with(|_| {}).await
}

fn number(raw: &str) -> PhoneNumber {
    normalise(raw, "NO").unwrap()
}

fn fault(endpoint: Endpoint, kind: FaultKind, remaining: Option<u32>) -> Fault {
    Fault { endpoint, kind, remaining }
}

/// The `query` parameters of the search requests the simulator saw.
fn queries(sim: &SimState) -> Vec<String> {
    sim.requests().iter().filter_map(|r| r.param("query")).collect()
}

fn found(outcome: DipOutcome) -> (u64, Option<u64>, bool) {
    match outcome {
        DipOutcome::Found { user, ticket, greet_by_name } => {
            (user.id, ticket.map(|t| t.id), greet_by_name)
        }
        other => panic!("expected Found, got {other:?}"),
    }
}

#[tokio::test]
async fn found_by_e164_with_the_latest_unsolved_ticket() {
    let lab = lab().await;
    let outcome = lab.client.data_dip(Some(&number("+47 987 65 432"))).await;
    let DipOutcome::Found { user, ticket, greet_by_name } = outcome else {
        panic!("expected Found, got {outcome:?}")
    };
    assert_eq!(user.name, "Kari Nordmann");
    assert_eq!(user.locale.as_deref(), Some("nb"));
    assert!(greet_by_name);
    // 102 (open, urgent, updated 05-10) beats 101 (pending, 05-02); 103 is newer but solved.
    let ticket = ticket.unwrap();
    assert_eq!(ticket.id, 102);
    assert_eq!(ticket.priority, Some(Priority::Urgent));
    assert_eq!(ticket.subject.as_deref(), Some("Internett er helt nede"));
    assert!(ticket.tags.contains(&"outage".to_string()));
    // Two requests: the E.164 search and the ticket search, with the documented syntax.
    let requests = lab.sim.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!(requests[0].param("query").unwrap(), "type:user phone:4798765432");
    assert_eq!(requests[1].param("query").unwrap(), "type:ticket requester_id:1001 status<solved");
    assert_eq!(requests[1].param("sort_by").as_deref(), Some("updated_at"));
    assert_eq!(requests[1].param("sort_order").as_deref(), Some("desc"));
}

#[tokio::test]
async fn found_only_by_the_national_form() {
    let lab = lab().await;
    // Ola's number is stored as "987 65 433": the E.164 search misses it.
    let (user, ticket, _) = found(lab.client.data_dip(Some(&number("98765433"))).await);
    assert_eq!((user, ticket), (1002, Some(104)));
    assert_eq!(
        queries(&lab.sim)[..2],
        ["type:user phone:4798765433".to_string(), "type:user phone:*98765433".to_string()]
    );
}

#[tokio::test]
async fn several_matches_prefer_end_users_then_the_latest_updated() {
    let lab = lab().await;
    // An agent (updated last), Per (end-user) and Lise (end-user, updated later) share it.
    let (user, ticket, greet) = found(lab.client.data_dip(Some(&number("+4741234567"))).await);
    assert_eq!((user, ticket), (1007, Some(107)));
    assert!(!greet, "two people share the number: no greeting by name");
}

#[tokio::test]
async fn shared_number_is_not_greeted_by_name() {
    let lab = lab().await;
    let (user, ticket, greet) = found(lab.client.data_dip(Some(&number("+44 20 7946 0018"))).await);
    assert_eq!((user, ticket, greet), (1005, Some(106), false));
}

#[tokio::test]
async fn unknown_number_and_users_without_unsolved_tickets() {
    let lab = lab().await;
    assert_eq!(lab.client.data_dip(Some(&number("+4799999999"))).await, DipOutcome::UnknownCaller);
    // Sofia has only a solved ticket; Max has none at all.
    assert_eq!(
        found(lab.client.data_dip(Some(&number("+39 02 1234 5678"))).await),
        (1009, None, true)
    );
    assert_eq!(
        found(lab.client.data_dip(Some(&number("+49 30 12345678"))).await),
        (1004, None, true)
    );
}

#[tokio::test]
async fn anonymous_callers_skip_the_lookup() {
    let lab = lab().await;
    assert_eq!(lab.client.data_dip(None).await, DipOutcome::Anonymous);
    assert!(lab.sim.requests().is_empty());
}

#[tokio::test]
async fn added_latency_gives_the_fallback_within_the_deadline() {
    let lab = lab().await;
    lab.sim.add_fault(fault(Endpoint::Search, FaultKind::Latency { ms: 3000 }, None));
    let kari = number("+4798765432");
    let started = Instant::now();
    let outcome = lab.client.data_dip(Some(&kari)).await;
    let elapsed = started.elapsed();
    assert_eq!(outcome, DipOutcome::Fallback { reason: FallbackReason::Deadline });
    let limit = lab.config.deadline() + Duration::from_millis(50);
    assert!(elapsed <= limit, "took {elapsed:?}, limit {limit:?}");
    assert!(elapsed >= lab.config.deadline(), "gave up early: {elapsed:?}");
}

#[tokio::test]
async fn retry_after_longer_than_the_time_left_is_not_waited_for() {
    let lab = lab().await;
    lab.sim.add_fault(fault(Endpoint::Search, FaultKind::RateLimit { retry_after_s: 5 }, Some(1)));
    let kari = number("+4798765432");
    let started = Instant::now();
    let outcome = lab.client.data_dip(Some(&kari)).await;
    let elapsed = started.elapsed();
    assert_eq!(
        outcome,
        DipOutcome::Fallback { reason: FallbackReason::RateLimited { retry_after_ms: 5000 } }
    );
    assert!(elapsed < Duration::from_millis(500), "waited {elapsed:?}");
    assert_eq!(lab.sim.requests().len(), 1);
    // While the limit lasts, dips fall back without asking Zendesk.
    let again = lab.client.data_dip(Some(&number("+4798765432"))).await;
    assert!(matches!(again, DipOutcome::Fallback { reason: FallbackReason::RateLimited { .. } }));
    assert_eq!(lab.sim.requests().len(), 1);
}

#[tokio::test]
async fn short_retry_after_is_waited_out_within_the_deadline() {
    let lab = lab_with(|c| c.deadline_ms = 2500).await;
    lab.sim.add_fault(fault(Endpoint::Search, FaultKind::RateLimit { retry_after_s: 1 }, Some(1)));
    let started = Instant::now();
    let (user, _, _) = found(lab.client.data_dip(Some(&number("+4798765432"))).await);
    assert_eq!(user, 1001);
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(lab.sim.requests().len(), 3);
}

#[tokio::test]
async fn a_500_then_200_within_the_deadline_succeeds() {
    let lab = lab().await;
    lab.sim.add_fault(fault(Endpoint::Search, FaultKind::ServerError { status: 500 }, Some(1)));
    let (user, ticket, _) = found(lab.client.data_dip(Some(&number("+4798765432"))).await);
    assert_eq!((user, ticket), (1001, Some(102)));
    // The failed search, its retry, the ticket search.
    assert_eq!(lab.sim.requests().len(), 3);
}

#[tokio::test]
async fn dropped_connections_and_malformed_json_are_retried() {
    let lab = lab().await;
    lab.sim.add_fault(fault(Endpoint::Search, FaultKind::Drop, Some(1)));
    assert_eq!(found(lab.client.data_dip(Some(&number("+4798765432"))).await).0, 1001);
    lab.sim.add_fault(fault(Endpoint::Search, FaultKind::MalformedJson, Some(1)));
    assert_eq!(found(lab.client.data_dip(Some(&number("+4798765432"))).await).0, 1001);
    // Malformed every time: a fallback, not a panic or a hang.
    lab.sim.add_fault(fault(Endpoint::Search, FaultKind::MalformedJson, None));
    let outcome = lab.client.data_dip(Some(&number("+4798765432"))).await;
    assert!(
        matches!(&outcome, DipOutcome::Fallback { reason: FallbackReason::Error { message } } if message.contains("malformed")),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn an_open_breaker_answers_at_once_without_a_request() {
    let lab = lab_with(|c| {
        c.breaker_failures = 2;
        c.breaker_open_s = 60;
    })
    .await;
    lab.sim.add_fault(fault(Endpoint::Any, FaultKind::ServerError { status: 503 }, None));
    for _ in 0..2 {
        let outcome = lab.client.data_dip(Some(&number("+4798765432"))).await;
        assert!(matches!(outcome, DipOutcome::Fallback { reason: FallbackReason::Error { .. } }));
    }
    lab.sim.clear_requests();
    let kari = number("+4798765432");
    let started = Instant::now();
    let outcome = lab.client.data_dip(Some(&kari)).await;
    let elapsed = started.elapsed();
    assert_eq!(outcome, DipOutcome::Fallback { reason: FallbackReason::BreakerOpen });
    assert!(elapsed < Duration::from_millis(20), "took {elapsed:?}");
    assert!(lab.sim.requests().is_empty(), "{:?}", lab.sim.requests());
}

#[tokio::test]
async fn repeat_callers_are_served_from_the_cache() {
    let lab = lab_with(|c| c.cache_ttl_s = 30).await;
    let first = lab.client.data_dip(Some(&number("+4798765432"))).await;
    let requests = lab.sim.requests().len();
    let second = lab.client.data_dip(Some(&number("98765432"))).await;
    assert_eq!(first, second);
    assert_eq!(lab.sim.requests().len(), requests);
}

#[tokio::test]
async fn wrong_credentials_fall_back_with_the_reason() {
    let lab = lab_with(|c| c.api_token = Some("wrong".into())).await;
    let outcome = lab.client.data_dip(Some(&number("+4798765432"))).await;
    assert!(
        matches!(&outcome, DipOutcome::Fallback { reason: FallbackReason::Error { message } } if message.contains("401")),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn comments_are_private_by_default_and_found_by_marker() {
    let lab = lab().await;
    lab.client.add_comment(102, "Call summary [call-id: abc-123]", false).await.unwrap();
    let comments = lab.sim.comments(102);
    let last = comments.last().unwrap();
    assert_eq!(last.body, "Call summary [call-id: abc-123]");
    assert!(!last.public);
    let put = lab.sim.requests().into_iter().find(|r| r.method == "PUT").unwrap();
    assert_eq!(put.path, "/api/v2/tickets/102.json");
    assert!(put.body.unwrap().contains("\"public\":false"));
    assert!(lab.client.has_comment_containing(102, "[call-id: abc-123]").await.unwrap());
    assert!(!lab.client.has_comment_containing(102, "[call-id: other]").await.unwrap());
    // Through the outbox's trait too.
    lab.client.post_comment(105, "second", false).await.unwrap();
    assert_eq!(lab.sim.comments(105).len(), 2);
}

#[tokio::test]
async fn comment_failures_are_classified_for_the_outbox() {
    let lab = lab().await;
    match lab.client.add_comment(999_999, "x", false).await {
        Err(PostError::Permanent(message)) => {
            assert!(message.contains("RecordNotFound"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    lab.sim.add_fault(fault(Endpoint::Tickets, FaultKind::RateLimit { retry_after_s: 7 }, Some(1)));
    assert!(matches!(
        lab.client.add_comment(102, "x", false).await,
        Err(PostError::RetryAfter(d)) if d == Duration::from_secs(7)
    ));
    lab.sim.add_fault(fault(Endpoint::Tickets, FaultKind::ServerError { status: 500 }, Some(1)));
    assert!(matches!(lab.client.add_comment(102, "x", false).await, Err(PostError::Ambiguous(_))));
    lab.sim.add_fault(fault(Endpoint::Tickets, FaultKind::ServerError { status: 503 }, Some(1)));
    assert!(matches!(lab.client.add_comment(102, "x", false).await, Err(PostError::Transient(_))));
    assert!(lab.sim.comments(102).iter().all(|c| c.body != "x"));
}

#[tokio::test]
async fn comment_search_follows_pages() {
    let lab = lab().await;
    for i in 0..150 {
        lab.client.add_comment(104, &format!("note {i}"), false).await.unwrap();
    }
    assert!(lab.client.has_comment_containing(104, "note 0").await.unwrap());
    assert!(lab.client.has_comment_containing(104, "note 149").await.unwrap());
    assert!(!lab.client.has_comment_containing(104, "note 150").await.unwrap());
}

#[tokio::test]
async fn unknown_callers_can_get_a_ticket() {
    let lab = lab().await;
    let ticket = lab
        .client
        .create_ticket(NewTicket {
            subject: "Call from +4799999999".into(),
            comment: NewComment { body: "Caller unknown [call-id: x1]".into(), public: false },
            requester_id: None,
            requester: Some(NewRequester {
                name: "Caller +4799999999".into(),
                phone: Some("+4799999999".into()),
            }),
            tags: vec!["ivr".into()],
            priority: None,
            external_id: Some("[call-id: x1]".into()),
        })
        .await
        .unwrap();
    assert_eq!(lab.sim.comments(ticket.id).len(), 1);
    assert_eq!(ticket.external_id.as_deref(), Some("[call-id: x1]"));
    // A retried create finds it by its external id.
    assert!(lab.client.has_ticket_with_external_id("[call-id: x1]").await.unwrap());
    assert!(!lab.client.has_ticket_with_external_id("[call-id: x2]").await.unwrap());
    // The new requester is now found by the next dip.
    let (_, found_ticket, _) = found(lab.client.data_dip(Some(&number("+4799999999"))).await);
    assert_eq!(found_ticket, Some(ticket.id));
}
