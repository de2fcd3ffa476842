//! The flow in virtual time: routing, transfers, failover, the busy branch.

use std::time::Duration;

use super::harness::*;
use crate::config::{Config, QueueConfig, RuleConfig, TransferMode};
use crate::ivr::flow::{Action, EndCause, FlowEvent, TransferUpdate};
use crate::ivr::outcome::{CallOutcome, PathStep, TransferFailure};
use crate::ivr::routing::CallerKind;
use crate::zendesk::model::{DipOutcome, Priority};

/// Presses 1 and lets "connecting" play: the first transfer is asked for.
fn press_agent(bench: &mut Bench) -> Vec<Action> {
    let actions = bench.press('1');
    assert_eq!(spoken(&actions), vec!["Connecting you to an agent."]);
    bench.finish_play()
}

#[test]
fn refer_to_the_priority_queue_for_an_urgent_ticket_then_hang_up() {
    let mut bench = Bench::to_menu(kari(Some(Priority::Urgent)));
    bench.advance(Duration::from_secs(2));
    let actions = press_agent(&mut bench);
    assert_eq!(actions[0], Action::HoldMusic);
    let request = &transfers(&actions)[0];
    assert_eq!(request.target, "sip:priority@10.0.0.2");
    assert_eq!(request.queue, "priority");
    assert_eq!(request.mode, TransferMode::Refer);
    assert_eq!((request.ticket_id, request.user_id), (Some(102), Some(11)));
    bench.transfer(TransferUpdate::Progress(100));
    bench.advance(Duration::from_secs(3));
    assert_eq!(bench.transfer(TransferUpdate::Connected), vec![Action::Hangup]);
    let report = bench.end(EndCause::Us);
    assert_eq!(
        report.outcome,
        CallOutcome::Transferred {
            queue: "priority".into(),
            target: "sip:priority@10.0.0.2".into(),
            mode: TransferMode::Refer
        }
    );
    assert_eq!(report.ivr_duration, Duration::from_secs(2), "the time until the transfer");
    assert_eq!(report.wait, Duration::from_secs(3));
    let path = crate::ivr::outcome::path_text(&report.path);
    assert_eq!(
        path,
        "status heard, pressed 1, urgent ticket → priority queue, sip:priority@10.0.0.2 answered after 3 s"
    );
}

/// A flow whose default queue has two targets (priority `queue_priority`), answered,
/// with the dip's `outcome` (rendered) and its status played: ready for a key.
fn two_targets(mut config: Config, queue_priority: Option<u8>, outcome: DipOutcome) -> Bench {
    let targets = vec!["sip:a1@10.0.0.1".into(), "sip:a2@10.0.0.2".into()];
    config
        .routing
        .queues
        .insert("default".into(), QueueConfig { targets, priority: queue_priority });
    let mut bench = Bench::new(settings(&config));
    bench.event(FlowEvent::Answered);
    bench.event(FlowEvent::Dip(outcome));
    bench.event(FlowEvent::Rendered { ok: true });
    bench.finish_play();
    bench
}

fn two_target_bridge() -> Bench {
    two_targets(bridge_config(), Some(3), kari(Some(Priority::Normal)))
}

/// Both targets busy, the busy menu heard, and 1 pressed: waiting for a new round.
fn waiting_after_all_busy() -> Bench {
    let mut bench = two_target_bridge();
    press_agent(&mut bench);
    bench.refuse(486);
    bench.refuse(486);
    bench.finish_play();
    bench.press('1');
    bench
}

#[test]
fn bridge_fails_over_to_the_next_target_and_records_the_talk_time() {
    let mut bench = two_target_bridge();
    let actions = press_agent(&mut bench);
    let first = &transfers(&actions)[0];
    assert_eq!((first.target.as_str(), first.mode), ("sip:a1@10.0.0.1", TransferMode::Bridge));
    assert_eq!(first.queue_priority, Some(3));
    for status in [486, 480, 503, 603, 408] {
        let mut bench = two_target_bridge();
        press_agent(&mut bench);
        let actions = bench.refuse(status);
        assert_eq!(transfers(&actions)[0].target, "sip:a2@10.0.0.2", "{status}");
        assert!(spoken(&actions).is_empty(), "the caller keeps hearing hold music");
    }
    bench.advance(Duration::from_secs(4));
    bench.transfer(TransferUpdate::Failed(TransferFailure::TimedOut));
    bench.advance(Duration::from_secs(2));
    assert!(bench.transfer(TransferUpdate::Connected).is_empty(), "bridged: nothing to do");
    bench.advance(Duration::from_secs(30));
    let report = bench.end(EndCause::Caller);
    assert_eq!(
        report.outcome,
        CallOutcome::Transferred {
            queue: "default".into(),
            target: "sip:a2@10.0.0.2".into(),
            mode: TransferMode::Bridge
        }
    );
    assert_eq!((report.wait, report.talk), (Duration::from_secs(6), Duration::from_secs(30)));
}

#[test]
fn a_target_that_is_down_is_skipped_at_once() {
    let mut bench = two_target_bridge();
    press_agent(&mut bench);
    let actions = bench.transfer(TransferUpdate::Failed(TransferFailure::Unavailable));
    assert_eq!(transfers(&actions)[0].target, "sip:a2@10.0.0.2");
}

#[test]
fn all_busy_then_wait_then_an_agent_answers() {
    let mut bench = two_target_bridge();
    press_agent(&mut bench);
    bench.refuse(486);
    let actions = bench.refuse(486);
    assert_eq!(
        spoken(&actions),
        vec!["All our agents are busy. Press 1 to keep waiting, or 2 to ask us to call you back."]
    );
    bench.finish_play();
    let actions = bench.press('1');
    assert_eq!(actions, vec![Action::HoldMusic]);
    // A new round after the retry interval (15 s).
    assert!(transfers(&bench.advance(Duration::from_millis(14_999))).is_empty());
    let actions = bench.advance(Duration::from_millis(1));
    assert_eq!(transfers(&actions)[0].target, "sip:a1@10.0.0.1");
    bench.transfer(TransferUpdate::Connected);
    let report = bench.end(EndCause::Caller);
    assert!(matches!(report.outcome, CallOutcome::Transferred { .. }), "{:?}", report.outcome);
    assert!(report.path.contains(&PathStep::AgentsBusy));
    assert!(report.path.contains(&PathStep::KeptWaiting));
}

#[test]
fn all_busy_then_a_callback_request() {
    let mut bench = two_target_bridge();
    press_agent(&mut bench);
    bench.refuse(486);
    bench.refuse(603);
    bench.finish_play();
    let actions = bench.press('2');
    assert_eq!(spoken(&actions), vec!["Thank you. We will call you back. Goodbye."]);
    assert_eq!(bench.finish_play(), vec![Action::Hangup]);
    let report = bench.end(EndCause::Us);
    assert_eq!(
        report.outcome,
        CallOutcome::CallbackRequested { number: Some("+4798765432".into()) }
    );
    assert_eq!(report.outcome.to_string(), "callback requested to +4798765432");
}

#[test]
fn waiting_runs_out_after_max_wait() {
    let mut bench = waiting_after_all_busy();
    // Rounds every 15 s, each failing at once, until 120 s have passed.
    let mut rounds = 0;
    let mut said = Vec::new();
    for _ in 0..20 {
        let actions = bench.advance(Duration::from_secs(15));
        if !transfers(&actions).is_empty() {
            rounds += 1;
            bench.refuse(486);
            bench.refuse(486);
        }
        said.extend(spoken(&actions));
        if !said.is_empty() {
            break;
        }
    }
    assert_eq!(rounds, 7, "tries at 15, 30, ... 105 s");
    assert_eq!(said, vec!["Sorry, no agent is free right now. Please call again later. Goodbye."]);
    bench.finish_play();
    let report = bench.end(EndCause::Us);
    assert_eq!(report.outcome, CallOutcome::AllAgentsBusy { queue: "default".into() });
}

#[test]
fn a_failed_refer_goes_back_to_the_menu_once_then_to_the_busy_branch() {
    let mut bench = Bench::to_menu(kari(None));
    press_agent(&mut bench);
    let actions = bench.refuse(603);
    assert_eq!(
        spoken(&actions),
        vec![
            "Sorry, we could not connect you to an agent.",
            "Press 1 to talk to an agent, or 2 to end the call. Press star to hear your ticket again."
        ]
    );
    bench.finish_play();
    press_agent(&mut bench);
    // No final NOTIFY in time (32 s): the busy branch.
    let actions = bench.advance(Duration::from_secs(32));
    assert!(actions.contains(&Action::CancelTransfer), "{actions:?}");
    assert_eq!(
        spoken(&actions),
        vec!["All our agents are busy. Press 1 to keep waiting, or 2 to ask us to call you back."]
    );
    let report = bench.end(EndCause::Caller);
    assert_eq!(report.outcome, CallOutcome::HungUp { step: crate::ivr::outcome::Step::Busy });
}

#[test]
fn a_caller_who_hangs_up_after_a_failed_transfer_is_recorded_as_such() {
    let mut bench = Bench::to_menu(kari(None));
    press_agent(&mut bench);
    bench.refuse(480);
    let report = bench.end(EndCause::Caller);
    assert_eq!(
        report.outcome,
        CallOutcome::TransferFailed { queue: "default".into(), reason: "refused (480)".into() }
    );
}

#[test]
fn refer_refused_as_unsupported_falls_back_to_a_bridge() {
    let mut config = config();
    config.transfer.refer_fallback_bridge = true;
    let mut bench = Bench::new(settings(&config));
    bench.event(FlowEvent::Answered);
    bench.event(FlowEvent::Dip(DipOutcome::UnknownCaller));
    bench.finish_play();
    press_agent(&mut bench);
    let actions = bench.refuse(501);
    let retry = &transfers(&actions)[0];
    assert_eq!((retry.target.as_str(), retry.mode), ("sip:support@10.0.0.1", TransferMode::Bridge));
}

#[test]
fn routing_rules_pick_the_queue_even_when_the_dip_fell_back() {
    let mut config = bridge_config();
    config.routing.queues.insert(
        "triage".into(),
        QueueConfig { targets: vec!["sip:triage@10.0.0.9".into()], priority: None },
    );
    config.routing.rules = vec![RuleConfig {
        caller: vec![CallerKind::Fallback],
        queue: "triage".into(),
        ..RuleConfig::default()
    }];
    let mut bench = Bench::new(settings(&config));
    bench.event(FlowEvent::Answered);
    bench.finish_play();
    bench.finish_play();
    bench.advance(Duration::from_secs(3));
    let actions = press_agent(&mut bench);
    assert_eq!(transfers(&actions)[0].target, "sip:triage@10.0.0.9");
    assert_eq!(transfers(&actions)[0].ticket_id, None);
}

#[test]
fn hanging_up_while_waiting_or_bridged() {
    let mut bench = waiting_after_all_busy();
    let report = bench.end(EndCause::Caller);
    assert_eq!(report.outcome, CallOutcome::HungUp { step: crate::ivr::outcome::Step::Waiting });
}

fn two_target_refer() -> Bench {
    two_targets(config(), None, DipOutcome::UnknownCaller)
}

#[test]
fn a_refused_refer_tries_the_queues_next_target_before_the_menu() {
    let mut bench = two_target_refer();
    press_agent(&mut bench);
    let actions = bench.refuse(486);
    let next = &transfers(&actions)[0];
    assert_eq!((next.target.as_str(), next.mode), ("sip:a2@10.0.0.2", TransferMode::Refer));
    let actions = bench.refuse(486);
    assert_eq!(spoken(&actions)[0], "Sorry, we could not connect you to an agent.");
}

#[test]
fn a_refer_given_up_on_that_connects_late_is_still_a_transfer() {
    let mut bench = Bench::to_menu(kari(None));
    press_agent(&mut bench);
    bench.advance(Duration::from_secs(32));
    // Back at the menu after the apology; then the caller's phone reports success.
    let actions = bench.transfer(TransferUpdate::Connected);
    assert_eq!(actions, vec![Action::Hangup]);
    let report = bench.end(EndCause::Us);
    assert!(matches!(report.outcome, CallOutcome::Transferred { mode: TransferMode::Refer, .. }));
}

#[test]
fn waiting_does_not_start_a_round_past_max_wait() {
    let mut bench = waiting_after_all_busy();
    // Rounds at 15 s ... 105 s fail at once; the round at 105 s rings the first target
    // until after the 120 s limit: its failure ends the wait, without ringing the second.
    for _ in 0..6 {
        bench.advance(Duration::from_secs(15));
        bench.refuse(486);
        bench.refuse(486);
    }
    let actions = bench.advance(Duration::from_secs(15));
    assert_eq!(transfers(&actions).len(), 1);
    bench.advance(Duration::from_secs(20));
    let actions = bench.transfer(TransferUpdate::Failed(TransferFailure::TimedOut));
    assert!(transfers(&actions).is_empty(), "{actions:?}");
    assert_eq!(
        spoken(&actions),
        vec!["Sorry, no agent is free right now. Please call again later. Goodbye."]
    );
}

#[test]
fn a_withheld_caller_is_not_offered_a_callback() {
    let mut config = bridge_config();
    config.routing.queues.insert(
        "default".into(),
        QueueConfig { targets: vec!["sip:a1@10.0.0.1".into()], priority: None },
    );
    let caller = crate::ivr::flow::Caller { number: None };
    let mut bench = Bench::with_caller(settings(&config), caller);
    bench.event(FlowEvent::Answered);
    bench.event(FlowEvent::Dip(DipOutcome::Anonymous));
    bench.finish_play();
    press_agent(&mut bench);
    let actions = bench.refuse(486);
    assert_eq!(
        spoken(&actions),
        vec!["All our agents are busy. Press 1 to keep waiting, or 2 to end the call."]
    );
    let actions = bench.press('2');
    assert_eq!(spoken(&actions), vec!["Thank you for calling. Goodbye."]);
    bench.finish_play();
    assert_eq!(
        bench.end(EndCause::Us).outcome,
        CallOutcome::AllAgentsBusy { queue: "default".into() }
    );
}

#[test]
fn the_agent_hanging_up_or_a_failed_bridge_ends_the_call() {
    let mut bench = two_target_bridge();
    press_agent(&mut bench);
    bench.transfer(TransferUpdate::Connected);
    assert_eq!(bench.event(FlowEvent::AgentHungUp), vec![Action::Hangup]);
    assert!(matches!(bench.end(EndCause::Us).outcome, CallOutcome::Transferred { .. }));

    let mut bench = two_target_bridge();
    press_agent(&mut bench);
    let failure = TransferFailure::Error { message: "RTP sockets".into() };
    let actions = bench.event(FlowEvent::BridgeFailed(failure));
    assert_eq!(actions, vec![Action::Hangup], "the next target is not called");
    assert!(matches!(bench.end(EndCause::Us).outcome, CallOutcome::TransferFailed { .. }));
}
