//! A caller floods its call with re-INVITEs (SIPp): the first [`REFRESH_BURST`] are
//! answered 200, the excess gets 500 with Retry-After (see `sip::dialog::refresh_rate`),
//! the refusals are counted and logged once, and the call still ends with BYE and 200.

mod common;

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use zendesk_ivr::sip::dialog::{REFRESH_BURST, REFRESH_PER_SECOND};

use common::ivr_process::IvrProcess;
use common::sipp;

/// re-INVITEs sent past the burst, back to back.
const EXCESS: u32 = 20;

#[tokio::test(flavor = "multi_thread")]
async fn a_reinvite_flood_gets_its_burst_then_500_and_the_call_ends_cleanly() {
    let mut ivr = IvrProcess::start(&[
        // One source on purpose: the per-call policy is under test, not the per-source
        // limits (tested in `sip_floods.rs`).
        ("ZENDESK_IVR_SIP__RATE_LIMIT_REQUESTS_PER_S", "0"),
        ("ZENDESK_IVR_SIP__RATE_LIMIT_INVITES_PER_S", "0"),
    ])
    .await;
    let dir = tempfile::tempdir().expect("temp dir");
    let scenario = dir.path().join("uac_reinvite_flood.xml");
    std::fs::write(&scenario, flood_scenario(REFRESH_BURST + EXCESS)).expect("scenario written");

    let started = Instant::now();
    let run = sipp(scenario.to_str().expect("utf-8 path"), ivr.sip, "u1", &[]).await;
    let took = started.elapsed();
    run.assert_ok();

    // The answers to the re-INVITEs, in the order they came (CSeq 2 on).
    let answers = reinvite_answers(&run.messages);
    assert_eq!(answers.len() as u32, REFRESH_BURST + EXCESS, "{}", run.messages);
    let (burst, excess) = answers.split_at(REFRESH_BURST as usize);
    assert!(burst.iter().all(|a| a.status == 200), "the burst is taken: {burst:?}");
    let refused: Vec<_> = excess.iter().filter(|a| a.status == 500).collect();
    assert!(
        refused.iter().all(|a| a.retry_after.is_some_and(|s| (1..=2).contains(&s))),
        "{refused:?}"
    );
    assert!(excess.iter().all(|a| matches!(a.status, 200 | 500)), "{excess:?}");
    // While the flood ran, the sustained rate let a few more in; no more than that.
    let refilled = (took.as_secs_f64() * f64::from(REFRESH_PER_SECOND)).ceil() as usize;
    assert!(
        refused.len() + refilled >= EXCESS as usize,
        "{} of {EXCESS} refused in {took:?}",
        refused.len()
    );
    assert!(!refused.is_empty());

    let counted = ivr.counter("sip_requests_rejected_total{reason=\"refresh_rate\"}").await;
    assert_eq!(counted as usize, refused.len(), "each refusal is counted");
    // Logged once for the call, in the security-event form.
    ivr.wait_for(
        "SECURITY rate-limited src=127.0.0.1 detail=\"INVITE in a call: over",
        Duration::from_secs(10),
    )
    .await;
    let logged = ivr
        .drain_log()
        .iter()
        .filter(|l| l.contains("SECURITY rate-limited") && l.contains("in a call"))
        .count();
    assert_eq!(logged, 1, "one security line per call");
    ivr.stop().await;
}

#[derive(Debug, Clone, Copy)]
struct Answer {
    status: u16,
    retry_after: Option<u32>,
}

/// Final answers to in-dialog INVITEs among SIPp's received messages, in order.
fn reinvite_answers(messages: &str) -> Vec<Answer> {
    messages
        .split("----------------------------------------------- ")
        .filter(|block| block.contains("message received"))
        .filter_map(|block| block.split_once(" :\n").map(|(_, msg)| msg.trim_start()))
        .filter(|msg| msg.starts_with("SIP/2.0 "))
        .filter(|msg| {
            header(msg, "CSeq").is_some_and(|c| c.ends_with(" INVITE") && !c.starts_with("1 "))
        })
        .filter_map(|msg| {
            let status: u16 = msg.get(8..11)?.parse().ok()?;
            (status >= 200).then(|| Answer {
                status,
                retry_after: header(msg, "Retry-After").and_then(|v| v.trim().parse().ok()),
            })
        })
        .collect()
}

fn header<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
    msg.lines().find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// A SIPp caller: INVITE, then `count` re-INVITEs back to back (hold and unhold in turn),
/// each acknowledged whether it got 200 (ACK in a new transaction) or 500 (ACK in the
/// INVITE's), then BYE. Written out step by step so every request has its own branch
/// (SIPp reads scenario files of at most 64 KiB, hence no indentation).
fn flood_scenario(count: u32) -> String {
    let mut xml = String::from(
        r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="Caller floods its call with re-INVITEs">
"#,
    );
    xml.push_str(&invite(1, "To: <sip:[service]@[remote_ip]:[remote_port]>", "sendrecv", 1));
    xml.push_str(
        r#"<recv response="100" optional="true"/>
<recv response="180" optional="true"/>
<recv response="200" rrs="true"/>
"#,
    );
    xml.push_str(&ack(1, "[branch]"));
    for i in 0..count {
        let cseq = i + 2;
        let direction = if i % 2 == 0 { "sendonly" } else { "sendrecv" };
        xml.push_str(&invite(cseq, "[last_To:]", direction, cseq));
        // After the INVITE: 100, 200 and 500 are steps 1-3, the ACK for a 500 step 4.
        let _ = write!(
            xml,
            r#"<recv response="100" optional="true"/>
<recv response="200" optional="true" next="ok{cseq}"/>
<recv response="500"/>
{}<nop next="done{cseq}"/>
<label id="ok{cseq}"/>
{}<label id="done{cseq}"/>
"#,
            ack(cseq, "[branch-4]"),
            ack(cseq, "[branch]"),
        );
    }
    let bye_cseq = count + 2;
    let _ = write!(
        xml,
        r#"<send retrans="500">
<![CDATA[

BYE [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
From: "Caller" <sip:+4798765432@[local_ip]:[local_port]>;tag=[call_number]
[last_To:]
[routes]
Call-ID: [call_id]
CSeq: {bye_cseq} BYE
Max-Forwards: 70
Content-Length: 0

]]>
</send>
<recv response="200" crlf="true"/>
</scenario>
"#
    );
    xml
}

fn invite(cseq: u32, to: &str, direction: &str, version: u32) -> String {
    let uri = if cseq == 1 { "sip:[service]@[remote_ip]:[remote_port]" } else { "[next_url]" };
    let routes = if cseq == 1 { "" } else { "[routes]\n" };
    format!(
        r#"<send retrans="500">
<![CDATA[

INVITE {uri} SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
From: "Caller" <sip:+4798765432@[local_ip]:[local_port]>;tag=[call_number]
{to}
{routes}Call-ID: [call_id]
CSeq: {cseq} INVITE
Contact: <sip:caller@[local_ip]:[local_port];transport=[transport]>
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

v=0
o=sipp 1 {version} IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a={direction}

]]>
</send>
"#
    )
}

fn ack(cseq: u32, branch: &str) -> String {
    format!(
        r#"<send>
<![CDATA[

ACK [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch={branch};rport
From: "Caller" <sip:+4798765432@[local_ip]:[local_port]>;tag=[call_number]
[last_To:]
[routes]
Call-ID: [call_id]
CSeq: {cseq} ACK
Max-Forwards: 70
Content-Length: 0

]]>
</send>
"#
    )
}
