use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::*;

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src").flatten() {
        let path = entry.path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The string-literal names given to `metrics::counter!`, `gauge!` and `histogram!`.
fn names_in_source() -> Vec<(String, PathBuf)> {
    let mut files = Vec::new();
    sources(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut files);
    let mut names = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read a source file");
        for macro_name in ["counter!(\"", "gauge!(\"", "histogram!(\""] {
            for (at, _) in text.match_indices(macro_name) {
                let rest = &text[at + macro_name.len()..];
                if let Some(end) = rest.find('"') {
                    names.push((rest[..end].to_string(), file.clone()));
                }
            }
        }
    }
    names
}

#[test]
fn every_metric_in_the_code_is_in_the_catalogue() {
    let found = names_in_source();
    assert!(found.len() > 20, "the scan finds the call sites: {found:?}");
    for (name, file) in found {
        assert!(find(&name).is_some(), "{name} (in {}) is not in METRICS", file.display());
    }
}

#[test]
fn names_are_unique_and_in_prometheus_form() {
    let mut seen = HashSet::new();
    for m in METRICS {
        assert!(seen.insert(m.name), "{} twice", m.name);
        assert!(
            m.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
            "{}",
            m.name
        );
        if m.kind == MetricKind::Counter {
            assert!(m.name.ends_with("_total"), "a counter ends in _total: {}", m.name);
        }
        assert!(!m.labels.iter().any(|l| l.contains("caller") || l.contains("number")));
    }
}

#[test]
fn histogram_series_resolve_to_their_histogram() {
    assert_eq!(find("call_answer_seconds_bucket").map(|m| m.name), Some("call_answer_seconds"));
    assert_eq!(find("calls_total").map(|m| m.kind), Some(MetricKind::Counter));
    assert!(find("calls_total_bucket").is_none(), "a counter has no buckets");
    assert!(find("no_such_metric").is_none());
}

/// Every metric the Grafana dashboard queries exists.
#[test]
fn the_dashboard_names_only_real_metrics() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/grafana/zendesk-ivr.json");
    let text = std::fs::read_to_string(&path).expect("the dashboard exists");
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    let mut exprs = Vec::new();
    for panel in panels {
        for target in panel["targets"].as_array().into_iter().flatten() {
            if let Some(expr) = target["expr"].as_str() {
                exprs.push(expr.to_string());
            }
        }
    }
    assert!(exprs.len() >= 12, "the dashboard has queries: {exprs:?}");
    let mut used = HashSet::new();
    for expr in &exprs {
        for word in metric_words(expr) {
            let metric = find(&word).unwrap_or_else(|| panic!("{word} in {expr:?} is unknown"));
            used.insert(metric.name);
        }
    }
    for wanted in [
        "calls_total",
        "call_answer_seconds",
        "call_first_audio_seconds",
        "zendesk_dip_seconds",
        "zendesk_requests_total",
        "transfer_results_total",
        "sip_requests_rejected_total",
        "sip_registration_up",
        "rtp_frames_late_total",
    ] {
        assert!(used.contains(wanted), "the dashboard shows {wanted}");
    }
}

/// The identifiers in a PromQL expression that look like our metrics (a known prefix),
/// leaving out functions, labels and keywords.
fn metric_words(expr: &str) -> Vec<String> {
    const PREFIXES: &[&str] =
        &["call", "ivr_", "dtmf_", "zendesk_", "tts_", "transfer_", "media_", "rtp_", "sip_"];
    let mut words = Vec::new();
    let mut inside_braces = false;
    let mut current = String::new();
    for c in expr.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_alphanumeric() || c == '_' {
            current.push(c);
            continue;
        }
        if !current.is_empty() && !inside_braces && PREFIXES.iter().any(|p| current.starts_with(p))
        {
            words.push(std::mem::take(&mut current));
        }
        current.clear();
        match c {
            '{' => inside_braces = true,
            '}' => inside_braces = false,
            _ => {}
        }
    }
    words
}
