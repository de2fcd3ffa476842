//! The test caller's summary of one call, as text or JSON.

use std::fmt::Write as _;
use std::path::PathBuf;

use serde::Serialize;

use super::DtmfMode;
use super::rtp::Pacing;

/// Who ended the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Party {
    /// The test caller (its time was up, or it was interrupted).
    Caller,
    /// The far end (BYE, or a refusal).
    FarEnd,
    /// Neither: a timeout or an error.
    Neither,
}

/// Why the call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HangupCause {
    /// A BYE.
    Bye,
    /// The caller's `--duration` was reached.
    DurationReached,
    /// The caller was interrupted (Ctrl-C).
    Interrupted,
    /// The far end refused the call (`final_status`).
    Refused,
    /// No final answer came in time.
    NoAnswer,
    /// The session timer ran out.
    SessionExpired,
    /// A protocol error (no usable answer, no ACK) or the endpoint stopped.
    Error,
}

/// A REFER from the far end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReferReport {
    /// The Refer-To target.
    pub target: String,
    /// Whether the caller called it (`--follow-refer`).
    pub followed: bool,
    /// The final status of the call to the target (200 when it answered).
    pub status: Option<u16>,
}

/// Everything the caller measured.
#[derive(Debug, Clone, Serialize)]
pub struct CallReport {
    pub target: String,
    pub from: String,
    pub answered: bool,
    /// 200 once answered, the refusal's status, or none when no final response came.
    pub final_status: Option<u16>,
    pub time_to_answer_ms: Option<u64>,
    pub answer_to_first_rtp_ms: Option<u64>,
    pub packets_received: u64,
    pub pacing: Pacing,
    pub codec: Option<String>,
    pub dtmf_mode: DtmfMode,
    pub digits_sent: String,
    /// Digits sent as tones because the far end did not negotiate telephone-event.
    pub digits_as_tones: usize,
    pub refer: Option<ReferReport>,
    pub hung_up_by: Party,
    pub hangup_cause: HangupCause,
    pub duration_ms: u64,
    pub recording: Option<PathBuf>,
    /// Answered, and a followed REFER reached its target.
    pub ok: bool,
}

impl CallReport {
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let status = self.final_status.map_or("none".to_string(), |s| s.to_string());
        let answered = if self.answered { "answered" } else { "NOT answered" };
        let _ = writeln!(
            out,
            "call to {} from {}: {answered} (final status {status})",
            self.target, self.from
        );
        let ms = |v: Option<u64>| v.map_or("-".to_string(), |v| format!("{v} ms"));
        let _ = writeln!(out, "  time to 200 OK:        {}", ms(self.time_to_answer_ms));
        let _ = writeln!(out, "  200 OK to first RTP:   {}", ms(self.answer_to_first_rtp_ms));
        let _ = writeln!(
            out,
            "  packets received:      {} ({}); pacing deviation mean {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            self.packets_received,
            self.codec.as_deref().unwrap_or("no codec"),
            self.pacing.mean_deviation_ms,
            self.pacing.p99_deviation_ms,
            self.pacing.max_deviation_ms,
        );
        let digits = if self.digits_sent.is_empty() { "none" } else { &self.digits_sent };
        let tones = match self.digits_as_tones {
            0 => String::new(),
            n => format!(", {n} as tones: no telephone-event"),
        };
        let _ = writeln!(out, "  digits sent:           {digits} ({:?}{tones})", self.dtmf_mode);
        match &self.refer {
            Some(r) => {
                let how = match (r.followed, r.status) {
                    (false, _) => "not followed".to_string(),
                    (true, Some(s)) => format!("followed, final status {s}"),
                    (true, None) => "followed, no final status".to_string(),
                };
                let _ = writeln!(out, "  REFER to:              {} ({how})", r.target);
            }
            None => {
                let _ = writeln!(out, "  REFER:                 none");
            }
        }
        let _ = writeln!(
            out,
            "  hung up by:            {:?} ({:?}) after {} ms",
            self.hung_up_by, self.hangup_cause, self.duration_ms
        );
        if let Some(path) = &self.recording {
            let _ = writeln!(out, "  recording:             {}", path.display());
        }
        let _ = writeln!(out, "  result:                {}", if self.ok { "ok" } else { "FAILED" });
        out
    }
}
