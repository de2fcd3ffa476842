use super::*;
use crate::zendesk::model::{FallbackReason, Status, User};

fn ticket(priority: Option<Priority>, status: Status, tags: &[&str]) -> Ticket {
    let mut ticket: Ticket =
        serde_json::from_str(r#"{"id": 7, "status": "open", "requester_id": 1}"#).unwrap();
    ticket.priority = priority;
    ticket.status = status;
    ticket.tags = tags.iter().map(|t| t.to_string()).collect();
    ticket
}

fn found(ticket: Option<Ticket>) -> DipOutcome {
    let user: User = serde_json::from_str(r#"{"id": 1, "name": "Kari"}"#).unwrap();
    DipOutcome::Found { user, ticket, greet_by_name: true }
}

fn fallback() -> DipOutcome {
    DipOutcome::Fallback { reason: FallbackReason::Deadline }
}

#[test]
fn shorthand_sends_urgent_and_high_to_the_priority_queue() {
    let config = RoutingConfig::default();
    let router = Router::from_config(&config).unwrap();
    for p in [Priority::Urgent, Priority::High] {
        let route = router.route(&found(Some(ticket(Some(p), Status::Open, &[]))));
        assert_eq!(route.queue, PRIORITY_QUEUE);
        assert_eq!(route.targets, vec![config.priority_queue.clone()]);
        assert_eq!(route.reason, RouteReason::PriorityTicket);
        assert_eq!(route.ticket_priority, Some(p));
    }
    for outcome in [
        found(Some(ticket(Some(Priority::Normal), Status::Open, &[]))),
        found(Some(ticket(None, Status::New, &[]))),
        found(None),
        DipOutcome::UnknownCaller,
        DipOutcome::Anonymous,
        fallback(),
    ] {
        let route = router.route(&outcome);
        assert_eq!(route.queue, DEFAULT_QUEUE, "{outcome:?}");
        assert_eq!(route.targets, vec![config.default_queue.clone()]);
        assert_eq!(route.reason, RouteReason::Default);
    }
}

fn rules_config() -> RoutingConfig {
    let queue = |targets: &[&str], priority| QueueConfig {
        targets: targets.iter().map(|t| t.to_string()).collect(),
        priority,
    };
    let mut config = RoutingConfig::default();
    config.queues.insert("vip".into(), queue(&["sip:vip1@10.0.0.1", "sip:vip2@10.0.0.2"], Some(9)));
    config.queues.insert("billing".into(), queue(&["sip:billing@10.0.0.3"], None));
    config.queues.insert("triage".into(), queue(&["sip:triage@10.0.0.4"], None));
    config.queues.insert("waiting".into(), queue(&["sip:pending@10.0.0.5"], None));
    config.rules = vec![
        RuleConfig { priority: vec![Priority::Urgent], queue: "vip".into(), ..Default::default() },
        RuleConfig {
            tags: vec!["billing".into(), "invoice".into()],
            queue: "billing".into(),
            ..Default::default()
        },
        RuleConfig { status: vec![Status::Pending], queue: "waiting".into(), ..Default::default() },
        RuleConfig {
            caller: vec![CallerKind::Unknown, CallerKind::Anonymous, CallerKind::Fallback],
            queue: "triage".into(),
            ..Default::default()
        },
    ];
    config
}

#[test]
fn rules_match_by_priority_tags_status_and_caller_kind_in_order() {
    let router = Router::from_config(&rules_config()).unwrap();
    let cases = [
        (found(Some(ticket(Some(Priority::Urgent), Status::Open, &["billing"]))), "vip", Some(0)),
        (
            found(Some(ticket(Some(Priority::Normal), Status::Open, &["invoice"]))),
            "billing",
            Some(1),
        ),
        (found(Some(ticket(Some(Priority::Low), Status::Pending, &[]))), "waiting", Some(2)),
        (DipOutcome::UnknownCaller, "triage", Some(3)),
        (DipOutcome::Anonymous, "triage", Some(3)),
        (fallback(), "triage", Some(3)),
        (found(Some(ticket(Some(Priority::High), Status::Open, &[]))), DEFAULT_QUEUE, None),
        (found(None), DEFAULT_QUEUE, None),
    ];
    for (outcome, queue, rule) in cases {
        let route = router.route(&outcome);
        assert_eq!(route.queue, queue, "{outcome:?}");
        let expected = match rule {
            Some(index) => RouteReason::Rule { index },
            None => RouteReason::Default,
        };
        assert_eq!(route.reason, expected, "{outcome:?}");
    }
    let vip = router.route(&found(Some(ticket(Some(Priority::Urgent), Status::Open, &[]))));
    assert_eq!(vip.targets, vec!["sip:vip1@10.0.0.1".to_string(), "sip:vip2@10.0.0.2".to_string()]);
    assert_eq!(vip.queue_priority, Some(9));
}

#[test]
fn bad_tables_are_errors_naming_the_key() {
    let mut config = rules_config();
    config.rules[0].queue = "nope".into();
    let err = Router::from_config(&config).unwrap_err().to_string();
    assert!(err.contains("routing.rules[0].queue"), "{err}");

    let mut config = rules_config();
    config.queues.get_mut("vip").unwrap().targets.push("http://x".into());
    let err = Router::from_config(&config).unwrap_err().to_string();
    assert!(err.contains("routing.queues.vip.targets"), "{err}");

    let mut config = rules_config();
    config.queues.get_mut("billing").unwrap().targets.clear();
    let err = Router::from_config(&config).unwrap_err().to_string();
    assert!(err.contains("routing.queues.billing.targets"), "{err}");

    let config = RoutingConfig { priority_queue: "queue".into(), ..RoutingConfig::default() };
    let err = Router::from_config(&config).unwrap_err().to_string();
    assert!(err.contains("routing.priority_queue"), "{err}");
}

#[test]
fn targets_lists_each_once() {
    let mut config = rules_config();
    config.queues.get_mut("triage").unwrap().targets.push("sip:billing@10.0.0.3".into());
    let router = Router::from_config(&config).unwrap();
    let all: Vec<&String> = router.targets().collect();
    assert_eq!(all.iter().filter(|t| t.as_str() == "sip:billing@10.0.0.3").count(), 1);
    assert_eq!(all.len(), 7);
}
