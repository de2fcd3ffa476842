//! The metrics a finished call adds, from the flow's report: `calls_total{outcome}`,
//! `ivr_menu_keys_total{key}`, `transfer_attempts_total{result}` and
//! `transfer_results_total{queue,target,result}`.

use crate::ivr::flow::FlowReport;
use crate::ivr::outcome::{PathStep, TransferFailure};

/// `calls_total{outcome}`, `ivr_menu_keys_total{key}`, `transfer_attempts_total{result}`
/// and `transfer_results_total{queue,target,result}`, from the flow's report (queues and
/// targets come from the config: a bounded set).
pub(super) fn record(report: &FlowReport) {
    metrics::counter!("calls_total", "outcome" => report.outcome.kind()).increment(1);
    let mut queue = String::new();
    for step in &report.path {
        let (target, result) = match step {
            PathStep::Pressed { key } => {
                metrics::counter!("ivr_menu_keys_total", "key" => key.to_string()).increment(1);
                continue;
            }
            PathStep::Routed { queue: routed, .. } => {
                queue.clone_from(routed);
                continue;
            }
            PathStep::TargetAnswered { target, .. } => (target, "connected"),
            PathStep::TargetFailed { target, failure } => (target, failure_kind(failure)),
            _ => continue,
        };
        let attempt = if result == "connected" { "connected" } else { "failed" };
        metrics::counter!("transfer_attempts_total", "result" => attempt).increment(1);
        let labels =
            [("queue", queue.clone()), ("target", target.clone()), ("result", result.into())];
        metrics::counter!("transfer_results_total", &labels).increment(1);
    }
}

fn failure_kind(failure: &TransferFailure) -> &'static str {
    match failure {
        TransferFailure::Refused { .. } => "refused",
        TransferFailure::TimedOut => "timed_out",
        TransferFailure::Unavailable => "unavailable",
        TransferFailure::Error { .. } => "error",
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::ivr::outcome::CallOutcome;
    use crate::ivr::prompts::Language;

    #[test]
    fn transfers_are_counted_by_queue_target_and_result() {
        let target = |t: &str| t.to_string();
        let report = FlowReport {
            outcome: CallOutcome::HungUp { step: crate::ivr::outcome::Step::Waiting },
            path: vec![
                PathStep::Pressed { key: '1' },
                PathStep::Routed { queue: "priority".into(), ticket_priority: None },
                PathStep::TargetFailed {
                    target: target("sip:a@10.0.0.1"),
                    failure: TransferFailure::Refused { status: 486 },
                },
                PathStep::TargetAnswered {
                    target: target("sip:b@10.0.0.2"),
                    after: Duration::ZERO,
                },
            ],
            ivr_duration: Duration::from_secs(5),
            wait: Duration::ZERO,
            talk: Duration::ZERO,
            language: Language::new("en"),
            route: None,
        };
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        metrics::with_local_recorder(&recorder, || record(&report));
        let text = recorder.handle().render();
        for line in [
            r#"calls_total{outcome="hung_up"} 1"#,
            r#"ivr_menu_keys_total{key="1"} 1"#,
            r#"transfer_attempts_total{result="failed"} 1"#,
            r#"transfer_attempts_total{result="connected"} 1"#,
            r#"transfer_results_total{queue="priority",target="sip:a@10.0.0.1",result="refused"} 1"#,
            r#"transfer_results_total{queue="priority",target="sip:b@10.0.0.2",result="connected"} 1"#,
        ] {
            assert!(text.contains(line), "{line} in:\n{text}");
        }
    }
}
