//! The demo's calls: one per sample customer, placed at once with the test caller, each
//! pressing a key; then what each call did, side by side with what it should have done.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::broadcast;
use tracing::warn;

use crate::call::CallSummary;
use crate::caller::{self, CallOptions, CallReport, CallTransport, DtmfMode};
use crate::config::Config;
use crate::ivr::outcome::CallOutcome;
use crate::sip::ani::CallerId;
use crate::zendesk::lookup::{self, LookupReport};
use crate::zendesk::sim::SimState;

/// When the key is pressed: after the welcome, while the status and the menu play.
const DTMF_AT: Duration = Duration::from_millis(9500);
/// The longest a demo call lasts; a transferred caller talks to the agent until then.
const CALL_DURATION: Duration = Duration::from_secs(18);
/// How long the summary and the comment of a finished call may take to appear.
const SETTLE: Duration = Duration::from_secs(15);
/// A recording counts as voiced above this RMS (16-bit samples).
const VOICED_RMS: f64 = 300.0;

/// What a demo call must end in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Transferred to this queue.
    Transferred(&'static str),
    /// The caller ended it from the menu.
    Ended,
}

/// One sample customer's call.
#[derive(Debug, Clone, Copy)]
pub struct DemoCall {
    pub label: &'static str,
    /// What the file of the recording is called.
    pub name: &'static str,
    pub number: &'static str,
    pub key: char,
    pub expect: Expect,
    /// The language the caller must hear.
    pub language: &'static str,
}

/// The sample customers called (from the simulator's sample data).
pub const DEMO_CALLS: [DemoCall; 3] = [
    DemoCall {
        label: "Kari Nordmann, urgent ticket, Norwegian",
        name: "urgent-kari",
        number: "+4798765432",
        key: '1',
        expect: Expect::Transferred("priority"),
        language: "nb",
    },
    DemoCall {
        label: "Ola Hansen, normal ticket, Norwegian",
        name: "normal-ola",
        number: "+4798765433",
        key: '2',
        expect: Expect::Ended,
        language: "nb",
    },
    DemoCall {
        label: "an unknown caller",
        name: "unknown",
        number: "+4722334455",
        key: '1',
        expect: Expect::Transferred("default"),
        language: "en",
    },
];

/// What one demo call did.
#[derive(Debug)]
pub struct DemoCallResult {
    pub call: DemoCall,
    pub lookup: Option<LookupReport>,
    pub report: Option<CallReport>,
    pub summary: Option<CallSummary>,
    /// The private comment the simulator now holds: (ticket, body).
    pub comment: Option<(u64, String)>,
    /// RMS of the recording.
    pub recording_rms: Option<f64>,
    /// What went other than it should (empty: the call did what it should).
    pub problems: Vec<String>,
}

/// Places every demo call at once to `sip` and checks what each did.
pub async fn run_all(
    config: &Config,
    sip: SocketAddr,
    summaries: broadcast::Receiver<CallSummary>,
    sim: &SimState,
    recordings: &Path,
) -> Vec<DemoCallResult> {
    let mut summaries = summaries;
    // What each caller will hear, as a dry run before the calls change the data (the
    // unknown caller's comment opens a ticket).
    let mut lookups = Vec::new();
    for call in DEMO_CALLS {
        lookups.push(lookup::lookup(config, call.number).await.ok());
    }
    let mut placed = Vec::new();
    for call in DEMO_CALLS {
        let options = CallOptions {
            target: format!("sip:ivr@{sip}"),
            from: call.number.to_string(),
            digits: call.key.to_string(),
            dtmf_at: DTMF_AT,
            dtmf_mode: DtmfMode::Rfc4733,
            record: Some(recordings.join(format!("{}.wav", call.name))),
            duration: CALL_DURATION,
            follow_refer: true,
            transport: CallTransport::Udp,
        };
        placed.push((call, tokio::spawn(caller::place_call(options))));
    }
    let mut results = Vec::new();
    for ((call, task), lookup) in placed.into_iter().zip(lookups) {
        let report = match task.await {
            Ok(Ok(report)) => Some(report),
            Ok(Err(err)) => {
                warn!(%err, number = call.number, "the demo call was not placed");
                None
            }
            Err(err) => {
                warn!(%err, "the demo call's task failed");
                None
            }
        };
        results.push(DemoCallResult {
            call,
            lookup,
            report,
            summary: None,
            comment: None,
            recording_rms: None,
            problems: Vec::new(),
        });
    }
    collect_summaries(&mut summaries, &mut results).await;
    for result in &mut results {
        result.comment = match &result.summary {
            Some(summary) => wait_for_comment(sim, &summary.call_id).await,
            None => None,
        };
        let path = result.report.as_ref().and_then(|r| r.recording.clone());
        result.recording_rms = match path {
            Some(path) => tokio::task::spawn_blocking(move || rms_of(&path)).await.ok().flatten(),
            None => None,
        };
        result.problems = problems(result);
    }
    results
}

fn number_of(summary: &CallSummary) -> Option<&str> {
    match &summary.ani.caller {
        CallerId::Number(n) => Some(n.e164.as_str()),
        _ => None,
    }
}

async fn collect_summaries(
    summaries: &mut broadcast::Receiver<CallSummary>,
    results: &mut [DemoCallResult],
) {
    let deadline = tokio::time::Instant::now() + SETTLE;
    while results
        .iter()
        .any(|r| r.summary.is_none() && r.report.as_ref().is_some_and(|c| c.answered))
    {
        match tokio::time::timeout_at(deadline, summaries.recv()).await {
            Ok(Ok(summary)) => {
                let number = number_of(&summary).map(str::to_string);
                if let Some(r) =
                    results.iter_mut().find(|r| Some(r.call.number) == number.as_deref())
                {
                    r.summary = Some(summary);
                }
            }
            Ok(Err(broadcast::error::RecvError::Lagged(_))) => continue,
            Ok(Err(broadcast::error::RecvError::Closed)) | Err(_) => return,
        }
    }
}

/// The comment naming `call_id` once the outbox has posted it (bounded wait).
async fn wait_for_comment(sim: &SimState, call_id: &str) -> Option<(u64, String)> {
    let deadline = tokio::time::Instant::now() + SETTLE;
    loop {
        let found = sim
            .data()
            .comments
            .iter()
            .find(|c| c.body.contains(call_id))
            .map(|c| (c.ticket_id, c.body.clone()));
        if found.is_some() || tokio::time::Instant::now() >= deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn rms_of(path: &PathBuf) -> Option<f64> {
    let mut reader = hound::WavReader::open(path).ok()?;
    let (mut sum, mut n) = (0f64, 0u64);
    for sample in reader.samples::<i16>() {
        let v = f64::from(sample.ok()?);
        sum += v * v;
        n += 1;
    }
    (n > 0).then(|| (sum / n as f64).sqrt())
}

fn problems(r: &DemoCallResult) -> Vec<String> {
    let mut out = Vec::new();
    let Some(report) = &r.report else {
        return vec!["the call was not placed".into()];
    };
    if !report.answered {
        out.push(format!("not answered (status {:?})", report.final_status));
    }
    if report.digits_sent != r.call.key.to_string() {
        out.push(format!("pressed {:?}, not {}", report.digits_sent, r.call.key));
    }
    let Some(flow) = r.summary.as_ref().and_then(|s| s.report.as_ref()) else {
        out.push("the IVR reported no call".into());
        return out;
    };
    match (r.call.expect, &flow.outcome) {
        (Expect::Transferred(queue), CallOutcome::Transferred { queue: got, .. }) => {
            if got != queue {
                out.push(format!("transferred to {got}, not {queue}"));
            }
            let reached = report.refer.as_ref().and_then(|refer| refer.status);
            if reached != Some(200) {
                out.push(format!("the agent was not reached (status {reached:?})"));
            }
        }
        (Expect::Ended, CallOutcome::EndedByCaller) => {}
        (expect, got) => out.push(format!("ended as {}, expected {expect:?}", got.kind())),
    }
    if flow.language.as_str() != r.call.language {
        out.push(format!("heard language {}, not {}", flow.language, r.call.language));
    }
    if r.comment.is_none() {
        out.push("no private comment on the ticket".into());
    }
    match r.recording_rms {
        Some(rms) if rms >= VOICED_RMS => {}
        other => out.push(format!("the recording is not voiced (RMS {other:?})")),
    }
    out
}

/// The demo's account of one call.
pub fn describe(r: &DemoCallResult) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "== {} ({}), presses {}", r.call.label, r.call.number, r.call.key);
    if let Some(lookup) = &r.lookup {
        let _ = writeln!(out, "   heard:     [{}] {}", lookup.sentence.lang, lookup.sentence.text);
    }
    if let Some(report) = &r.report {
        let digits = if report.digits_sent.is_empty() { "none" } else { &report.digits_sent };
        let _ = writeln!(out, "   digits:    {digits} ({:?})", report.dtmf_mode);
    }
    let flow = r.summary.as_ref().and_then(|s| s.report.as_ref());
    let route = flow.and_then(|f| f.route.as_ref()).or(r.lookup.as_ref().map(|l| &l.route));
    if let Some(route) = route {
        let _ = writeln!(out, "   route:     {} -> {}", route.queue, route.targets.join(", "));
    }
    let result = match flow.map(|f| &f.outcome) {
        Some(CallOutcome::Transferred { queue, target, mode }) => {
            let reached = r.report.as_ref().and_then(|c| c.refer.as_ref()).and_then(|x| x.status);
            format!(
                "transferred to {queue} ({target}) by {mode:?}; the agent answered: {}",
                reached == Some(200)
            )
        }
        Some(other) => format!("{} (no transfer)", other.kind()),
        None => "unknown".into(),
    };
    let _ = writeln!(out, "   result:    {result}");
    match &r.comment {
        Some((ticket, body)) => {
            let body = body.replace('\n', " | ");
            let _ = writeln!(out, "   comment:   ticket {ticket}: {body}");
        }
        None => {
            let _ = writeln!(out, "   comment:   none");
        }
    }
    if let Some(report) = &r.report {
        if let Some(path) = &report.recording {
            let rms = r.recording_rms.map_or("-".into(), |v| format!("{v:.0}"));
            let _ = writeln!(out, "   recording: {} (RMS {rms})", path.display());
        }
        let _ = writeln!(
            out,
            "   call:      answered in {} ms, first RTP {} ms later, {} packets, pacing p99 {:.2} ms; hung up by {:?} ({:?})",
            report.time_to_answer_ms.unwrap_or_default(),
            report.answer_to_first_rtp_ms.unwrap_or_default(),
            report.packets_received,
            report.pacing.p99_deviation_ms,
            report.hung_up_by,
            report.hangup_cause,
        );
    }
    if r.problems.is_empty() {
        let _ = writeln!(out, "   => ok");
    } else {
        let _ = writeln!(out, "   => FAILED: {}", r.problems.join("; "));
    }
    out
}
