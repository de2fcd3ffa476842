//! Every metric the endpoint exports on `/metrics`: its name, kind, labels and help text.
//!
//! The list is the contract for dashboards (`config/grafana/`) and alerts; a unit test checks
//! that every `metrics::counter!`/`gauge!`/`histogram!` name in the source is listed here,
//! and that the dashboard names only listed metrics. Labels are bounded sets (outcomes,
//! keys, configured queues and targets, reasons), never a caller's number.
//!
//! Two helpers are for call sites spread over the code: [`record_rejected`] for
//! `sip_requests_rejected_total{reason}` and [`set_registration_up`] for
//! `sip_registration_up{registration}`.

/// A metric's kind, as Prometheus shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    Counter,
    Gauge,
    Histogram,
}

/// One exported metric.
#[derive(Debug, Clone, Copy)]
pub struct MetricInfo {
    pub name: &'static str,
    pub kind: MetricKind,
    pub labels: &'static [&'static str],
    pub help: &'static str,
}

const fn metric(
    name: &'static str,
    kind: MetricKind,
    labels: &'static [&'static str],
    help: &'static str,
) -> MetricInfo {
    MetricInfo { name, kind, labels, help }
}

use crate::outbox::{
    METRIC_DEAD_LETTERED, METRIC_DEAD_LETTERS, METRIC_DEPTH, METRIC_FAILED, METRIC_OLDEST_AGE,
    METRIC_POSTED,
};
use MetricKind::{Counter, Gauge, Histogram};

/// The catalogue.
pub const METRICS: &[MetricInfo] = &[
    // calls and the IVR
    metric("calls_active", Gauge, &[], "Calls in progress, from the INVITE to the comment."),
    metric("calls_total", Counter, &["outcome"], "Finished calls by the flow's outcome."),
    metric("ivr_menu_keys_total", Counter, &["key"], "Menu keys pressed."),
    metric(
        "call_answer_seconds",
        Histogram,
        &[],
        "From the INVITE to the call being established (ACK of our 200 OK).",
    ),
    metric(
        "call_first_audio_seconds",
        Histogram,
        &[],
        "From the INVITE to the first audio handed to the pacer (the first RTP leaves \
         within one 20 ms tick).",
    ),
    metric("dtmf_digits_total", Counter, &["method"], "Digits by DTMF method."),
    // Zendesk
    metric("zendesk_dip_total", Counter, &["outcome"], "Data dips by outcome."),
    metric("zendesk_dip_seconds", Histogram, &[], "Data dip latency, cache hits included."),
    metric("zendesk_dip_cache_hits_total", Counter, &[], "Data dips answered by the cache."),
    metric(
        "zendesk_requests_total",
        Counter,
        &["endpoint", "status"],
        "Zendesk API requests by endpoint and HTTP status (`error`: no answer).",
    ),
    // text-to-speech
    metric("tts_renders_total", Counter, &["result"], "Sentences rendered by the TTS engine."),
    metric("tts_cache_hits_total", Counter, &["layer"], "TTS cache hits (memory or disk)."),
    metric("tts_render_seconds", Histogram, &[], "TTS render time."),
    // transfers
    metric(
        "transfer_attempts_total",
        Counter,
        &["result"],
        "Transfer attempts to a target (connected or failed).",
    ),
    metric(
        "transfer_results_total",
        Counter,
        &["queue", "target", "result"],
        "Transfer attempts by queue, target and result.",
    ),
    metric("transfer_target_up", Gauge, &["target"], "A target's last OPTIONS probe (1 up)."),
    // media
    metric("media_streams", Gauge, &[], "RTP streams paced by the media workers."),
    metric("media_tick_late_seconds", Histogram, &[], "How late a pacing tick ran."),
    metric("rtp_packets_sent_total", Counter, &[], "RTP packets sent."),
    metric("rtp_send_syscalls_total", Counter, &[], "System calls used to send RTP."),
    metric("rtp_frames_skipped_total", Counter, &[], "Frames skipped by a late pacer."),
    metric("rtp_frames_late_total", Counter, &[], "Frames sent more than 1 ms after their time."),
    metric("rtp_send_errors_total", Counter, &[], "RTP packets that could not be sent."),
    metric("rtp_invalid_packets_total", Counter, &[], "Received RTP that did not parse."),
    metric(
        "srtp_unprotect_failures_total",
        Counter,
        &["kind", "reason"],
        "Received SRTP (kind rtp) or SRTCP (kind rtcp) dropped: reason auth, replay or malformed.",
    ),
    metric(
        "rtp_unlatched_packets_total",
        Counter,
        &[],
        "Received RTP from a source other than the latched one.",
    ),
    // SIP
    metric(
        "sip_requests_rejected_total",
        Counter,
        &["reason"],
        "SIP requests or messages refused or dropped, by reason.",
    ),
    metric(
        "sip_rate_limit_buckets",
        Gauge,
        &[],
        "Buckets the per-source request limit holds (addresses and networks; bounded by 3 × `sip.rate_limit_sources`).",
    ),
    metric(
        "sip_registration_up",
        Gauge,
        &["registration"],
        "Trunk registrations (`sip.register`): 1 registered, 0 not.",
    ),
    metric(
        "sip_transactions_rejected_total",
        Counter,
        &["reason"],
        "New transactions refused at the transaction table's bound (`count` or `bytes`).",
    ),
    metric(
        "sip_transaction_stored_bytes",
        Gauge,
        &[],
        "Bytes of messages the transaction table keeps for retransmission.",
    ),
    metric(
        "sip_call_events_dropped_total",
        Counter,
        &["reason"],
        "In-dialog INFO content dropped (`info_rate`, `queue_full`); the INFO is still answered.",
    ),
    metric(
        "sip_call_event_overflows_total",
        Counter,
        &[],
        "Calls ended because their event queue was full of events that cannot be dropped.",
    ),
    metric(
        "sip_tcp_connections_refused_total",
        Counter,
        &[],
        "Inbound TCP/TLS connections closed at once over `sip.tcp_max_connections*`.",
    ),
    metric(
        "sip_tcp_slow_senders_total",
        Counter,
        &[],
        "Stream connections cut off for not finishing a message in time (slowloris).",
    ),
    metric(
        "sip_tls_handshakes_failed_total",
        Counter,
        &["side"],
        "TLS handshakes that failed or timed out (`in`: accepted, `out`: dialled).",
    ),
    metric(
        "sip_transport_errors_total",
        Counter,
        &["transport"],
        "Requests of client transactions the transport could not deliver (connection refused \
         or lost, TLS handshake failed); each fails at once as a 503.",
    ),
    metric(
        "sip_tls_reloads_total",
        Counter,
        &["result"],
        "Certificate reloads on SIGHUP (`ok`, `failed`).",
    ),
    // outbox
    metric(METRIC_DEPTH, Gauge, &[], "Post-call comments waiting to be delivered."),
    metric(METRIC_OLDEST_AGE, Gauge, &[], "Age of the oldest waiting comment."),
    metric(METRIC_DEAD_LETTERS, Gauge, &[], "Comments that gave up (see `outbox replay`)."),
    metric(METRIC_POSTED, Counter, &[], "Comments delivered."),
    metric(METRIC_FAILED, Counter, &["kind"], "Failed delivery attempts by kind."),
    metric(METRIC_DEAD_LETTERED, Counter, &[], "Comments moved to dead letters."),
];

/// Looks a metric up by its exported name (a histogram's `_bucket`, `_sum` and `_count`
/// series count as the histogram).
pub fn find(series: &str) -> Option<&'static MetricInfo> {
    METRICS.iter().find(|m| m.name == series).or_else(|| {
        ["_bucket", "_sum", "_count"]
            .iter()
            .filter_map(|suffix| series.strip_suffix(suffix))
            .filter_map(|base| METRICS.iter().find(|m| m.name == base))
            .find(|m| m.kind == Histogram)
    })
}

/// Gives every metric its help text (shown as `# HELP` once it has a value).
pub fn describe_all() {
    for m in METRICS {
        match m.kind {
            Counter => metrics::describe_counter!(m.name, m.help),
            Gauge => metrics::describe_gauge!(m.name, m.help),
            Histogram => metrics::describe_histogram!(m.name, m.help),
        }
    }
}

/// Why a SIP request (or a message) was refused or dropped. The words are labels: keep
/// the set small and fixed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// A message that could not be framed or parsed (answered 400 or dropped).
    Malformed,
    /// Over `sip.max_calls` (503 with Retry-After).
    Overload,
    /// A new call while draining (503).
    Draining,
    /// The transaction table is full.
    TransactionLimit,
    /// Over a per-source or overall rate limit.
    RateLimited,
    /// From outside `sip.allow`.
    NotAllowed,
    /// Digest credentials missing or wrong.
    Unauthorized,
    /// A known scanner's User-Agent.
    Scanner,
    /// A TCP connection over a cap, or a slow sender cut off.
    ConnectionLimit,
    /// A re-INVITE or UPDATE over its call's rate (500 with Retry-After).
    RefreshRate,
}

impl RejectReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::Malformed => "malformed",
            RejectReason::Overload => "overload",
            RejectReason::Draining => "draining",
            RejectReason::TransactionLimit => "transaction_limit",
            RejectReason::RateLimited => "rate_limited",
            RejectReason::NotAllowed => "not_allowed",
            RejectReason::Unauthorized => "unauthorized",
            RejectReason::Scanner => "scanner",
            RejectReason::ConnectionLimit => "connection_limit",
            RejectReason::RefreshRate => "refresh_rate",
        }
    }
}

/// Counts one refused or dropped request in `sip_requests_rejected_total{reason}`.
pub fn record_rejected(reason: RejectReason) {
    metrics::counter!("sip_requests_rejected_total", "reason" => reason.as_str()).increment(1);
}

/// Sets `sip_registration_up{registration}` for one `[[sip.register]]` entry (named by
/// its configured name or AOR, never a password).
pub fn set_registration_up(registration: &str, up: bool) {
    let value = if up { 1.0 } else { 0.0 };
    metrics::gauge!("sip_registration_up", "registration" => registration.to_string()).set(value);
}

#[cfg(test)]
mod tests;
