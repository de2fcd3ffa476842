//! Scanners: SIPVicious (installed by scripts/setup.sh into target/sipvicious) against the
//! endpoint on loopback. With scanner detection off, `svmap` finds a SIP service and no
//! more, and `svwar` finds no extension, in dictionary and numeric scans, by REGISTER,
//! OPTIONS and INVITE (with its CANCEL, whether the endpoint answers at once or rings
//! first); with it on (the default), scans get nothing and are logged.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::ivr_process::IvrProcess;
use common::sip_phone::{Phone, rand_u64};
use common::{free_sip_port, manifest_dir, start, test_config};
use tokio::sync::broadcast::Receiver;
use zendesk_ivr::call::CallSummary;
use zendesk_ivr::config::Config;
use zendesk_ivr::server::RunningServer;
use zendesk_ivr::sip::dialog::EndReason;

/// A SIPVicious tool (`svmap`, `svwar`), failing when setup has not installed it.
fn tool(name: &str) -> PathBuf {
    let path = manifest_dir().join("target/sipvicious/bin").join(format!("sipvicious_{name}"));
    assert!(path.exists(), "{} is missing: run scripts/setup.sh", path.display());
    path
}

/// Runs a SIPVicious tool against `target`; returns its exit code and all it printed.
async fn run(name: &str, target: SocketAddr, args: &[&str]) -> (i32, String) {
    let output = tokio::process::Command::new(tool(name))
        .args(["-p", &target.port().to_string(), "-P", &free_sip_port().to_string()])
        .args(["-b", "127.0.0.1", "-v"])
        .args(args)
        .arg(target.ip().to_string())
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(60), output)
        .await
        .unwrap_or_else(|_| panic!("{name} finished within 60 s"))
        .unwrap_or_else(|e| panic!("{name} runs: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code().unwrap_or(-1), text)
}

/// svwar's findings: it exits 40 and logs "extension '…' exists" / "probably exists".
fn assert_found_nothing(scan: &str, (code, text): &(i32, String)) {
    assert!(!text.contains("exists"), "{scan}: svwar found an extension:\n{text}");
    assert_ne!(*code, 40, "{scan}: svwar exit code says it found something:\n{text}");
    assert!(text.contains("found nothing"), "{scan}:\n{text}");
}

/// A config that lets a scanner in, without limits, so it sees every answer the endpoint
/// gives; room for an INVITE scan's calls (svwar keeps up to 32 INVITEs open, our
/// dictionary has 9 names).
fn open_config() -> Config {
    let mut config = test_config();
    config.sip.scanner_user_agents = Vec::new();
    config.sip.rate_limit_requests_per_s = 0;
    config.sip.rate_limit_invites_per_s = 0;
    config.sip.max_cps = 0;
    config.sip.max_calls = 16;
    config.sip.server_header = Some(String::new());
    config.sip.user_agent_header = Some(String::new());
    config
}

/// A dictionary of likely extension names, in `dir`.
fn dictionary(dir: &Path) -> String {
    let path = dir.join("names.txt");
    std::fs::write(&path, DICTIONARY.join("\n")).unwrap();
    path.to_str().unwrap().to_string()
}

const DICTIONARY: [&str; 9] =
    ["100", "101", "ivr", "admin", "support", "alice", "bob", "operator", "1000"];

/// svwar's INVITE scans (numeric, then dictionary), with its CANCEL on 180 as it comes;
/// asserts each learnt nothing.
async fn invite_scans_learn_nothing(target: SocketAddr) {
    let dir = tempfile::tempdir().unwrap();
    let words = dictionary(dir.path());
    let numeric = run("svwar", target, &["-m", "INVITE", "-e100-104"]).await;
    assert_found_nothing("INVITE -e100-104", &numeric);
    assert!(numeric.1.contains("Ok SIP device found"), "svwar got answers:\n{}", numeric.1);
    let named = run("svwar", target, &["-m", "INVITE", "-d", &words]).await;
    assert_found_nothing("INVITE -d", &named);
}

/// The summaries of every call the scans made, once all have ended.
async fn scan_calls(server: &RunningServer, ended: &mut Receiver<CallSummary>) -> Vec<CallSummary> {
    assert_eq!(server.drain(Duration::from_secs(30)).await, 0, "the scans' calls ended");
    std::iter::from_fn(|| ended.try_recv().ok()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn svmap_sees_a_sip_service_and_svwar_learns_no_extension() {
    let server = start(open_config()).await;
    let target = server.sip_addr();
    let mut ended = server.subscribe();

    let (_, map) = run("svmap", target, &[]).await;
    assert!(map.contains(&target.to_string()), "svmap finds the service:\n{map}");
    assert!(!map.to_lowercase().contains("zendesk"), "no product name given away:\n{map}");

    let dir = tempfile::tempdir().unwrap();
    let words = dictionary(dir.path());
    for method in ["REGISTER", "OPTIONS"] {
        let numeric = run("svwar", target, &["-m", method, "-e100-200"]).await;
        assert_found_nothing(&format!("{method} -e100-200"), &numeric);
        assert!(numeric.1.contains("Ok SIP device found"), "svwar got answers:\n{}", numeric.1);
        let named = run("svwar", target, &["-m", method, "-d", &words]).await;
        assert_found_nothing(&format!("{method} -d"), &named);
    }
    // INVITE scans ring real calls (short ones, within sip.max_calls). Answered at once,
    // with no 180, every call is answered, whatever the user: svwar's CANCEL (sent on
    // 180) never races the answer. svwar ACKs and BYEs each 200.
    invite_scans_learn_nothing(target).await;
    let calls = scan_calls(&server, &mut ended).await;
    // Its bad-user probe and each user, in both scans.
    assert_eq!(calls.len(), (1 + 5) + (1 + DICTIONARY.len()), "{calls:?}");
    for summary in calls {
        assert!(summary.answered, "every scan call is answered: {summary:?}");
    }
}

/// With a ringing time (`sip.answer_delay_ms`), the endpoint sends 180; svwar CANCELs on
/// it, and the CANCEL, in well before the answer, wins every time: 487 for every user.
/// (svwar has no verdict for a user answered 487 like its bad-user probe: it calls that
/// "an unknown response" and ends the scan, having found nothing.)
#[tokio::test(flavor = "multi_thread")]
async fn svwar_invite_scans_cancelling_a_ringing_call_learn_nothing() {
    let mut config = open_config();
    config.sip.answer_delay_ms = 1_000;
    let server = start(config).await;
    let mut ended = server.subscribe();
    invite_scans_learn_nothing(server.sip_addr()).await;
    let calls = scan_calls(&server, &mut ended).await;
    assert!(calls.len() >= 2 * 2, "a probe and a user at least, in both scans: {calls:?}");
    for summary in calls {
        assert!(!summary.answered, "no scan call is answered: {summary:?}");
        assert_eq!(summary.end, Some(EndReason::Cancelled), "{summary:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn scanners_get_nothing_and_are_logged_once_for_fail2ban() {
    let mut ivr = IvrProcess::start(&[]).await;
    let (_, map) = run("svmap", ivr.sip, &[]).await;
    assert!(!map.contains(&ivr.sip.to_string()), "svmap got an answer:\n{map}");
    ivr.wait_for(
        "SECURITY scanner src=127.0.0.1 detail=\"User-Agent friendly-scanner\"",
        Duration::from_secs(10),
    )
    .await;
    let war = run("svwar", ivr.sip, &["-e100-110"]).await;
    assert_found_nothing("REGISTER -e100-110", &war);
    assert!(!war.1.contains("Ok SIP device found"), "svwar got an answer:\n{}", war.1);
    let dropped = ivr.counter("sip_requests_rejected_total{reason=\"scanner\"}").await;
    assert!(dropped >= 2, "svmap's and svwar's requests were counted: {dropped}");
    let lines = ivr.drain_log().iter().filter(|l| l.contains("SECURITY scanner")).count();
    assert_eq!(lines, 1, "one line per source and minute");
    ivr.stop().await;
}

/// The same request to different users gets the same answer: the status line and the
/// header names (values such as tags differ by nature).
#[tokio::test(flavor = "multi_thread")]
async fn the_answer_does_not_depend_on_the_user() {
    let server = start(test_config()).await;
    let ivr = server.sip_addr();
    let users = ["100", "ivr", "alice", "9999999", "no-such-user", "admin"];
    for method in ["REGISTER", "OPTIONS", "INVITE"] {
        let mut shapes = Vec::new();
        for user in users {
            let mut phone = Phone::new(ivr, &format!("enum-{:016x}", rand_u64())).await;
            let template = request(method, user);
            let request = phone.fill(&template);
            phone.send(&request).await;
            let reply = phone.final_reply(method, Duration::from_secs(10)).await;
            let mut names: Vec<String> = reply
                .text
                .split("\r\n\r\n")
                .next()
                .unwrap_or_default()
                .lines()
                .skip(1)
                .filter_map(|l| l.split_once(':').map(|(n, _)| n.trim().to_ascii_lowercase()))
                .collect();
            names.sort();
            let first = reply.text.lines().next().unwrap_or_default().to_string();
            let statuses: Vec<String> = phone
                .received
                .iter()
                .map(|m| m.lines().next().unwrap_or_default().to_string())
                .collect();
            if reply.status == 200 && method == "INVITE" {
                let ack = phone.in_dialog(&request, &reply, "ACK", 1);
                phone.send(&ack).await;
                let bye = phone.in_dialog(&request, &reply, "BYE", 2);
                phone.send(&bye).await;
                phone.final_reply("BYE", Duration::from_secs(10)).await;
            }
            shapes.push((user, first, statuses, names));
        }
        for shape in &shapes[1..] {
            assert_eq!(
                (&shape.1, &shape.2, &shape.3),
                (&shapes[0].1, &shapes[0].2, &shapes[0].3),
                "{method} to {:?} and to {:?} are answered differently",
                shape.0,
                shapes[0].0
            );
        }
    }
}

fn request(method: &str, user: &str) -> String {
    let body = if method == "INVITE" {
        "v=0\no=- 1 1 IN IP4 {ip}\ns=-\nc=IN IP4 {ip}\nt=0 0\nm=audio {rtp} RTP/AVP 0\n\
         a=rtpmap:0 PCMU/8000\n"
    } else {
        ""
    };
    let content_type = if body.is_empty() { "" } else { "Content-Type: application/sdp\n" };
    format!(
        "{method} sip:{user}@{{ivr}} SIP/2.0\n\
         Via: SIP/2.0/UDP {{ip}}:{{port}};branch={{branch}};rport\n\
         From: <sip:{user}@{{ip}}>;tag=scan{user}\n\
         To: <sip:{user}@{{ivr}}>\n\
         Call-ID: {{call_id}}\n\
         CSeq: 1 {method}\n\
         Contact: <sip:{user}@{{ip}}:{{port}}>\n\
         Max-Forwards: 70\n\
         {content_type}Content-Length: {{len}}\n\n{body}"
    )
}

/// The same timing too: REGISTER and OPTIONS to a user that "exists" (the IVR's own
/// contact user) and to ones that do not, interleaved, answered in the same median time
/// (on loopback about 0.5 ms; the bound leaves room for a loaded machine, and would still
/// show a per-user lookup).
#[tokio::test(flavor = "multi_thread")]
async fn the_answer_takes_the_same_time_whatever_the_user() {
    let mut config = test_config();
    // 240 requests in a second or two from one address: over the default limit.
    config.sip.rate_limit_requests_per_s = 0;
    let server = start(config).await;
    let ivr = server.sip_addr();
    let users = ["ivr", "100", "no-such-user"];
    let mut phone = Phone::new(ivr, "timing").await;
    for method in ["REGISTER", "OPTIONS"] {
        let mut times: Vec<Vec<Duration>> = vec![Vec::new(); users.len()];
        for round in 0..40 {
            // Each user in every position in turn, so that no user pays for its place.
            for i in (0..users.len()).map(|k| (k + round) % users.len()) {
                let user = users[i];
                phone.vars.insert("call_id", format!("timing-{method}-{round}-{i}"));
                let request = phone.fill(&request(method, user));
                let sent = tokio::time::Instant::now();
                phone.send(&request).await;
                phone.final_reply(method, Duration::from_secs(5)).await;
                times[i].push(sent.elapsed());
            }
        }
        let medians: Vec<Duration> = times
            .iter_mut()
            .map(|t| {
                t.sort();
                t[t.len() / 2]
            })
            .collect();
        let (low, high) = (medians.iter().min().unwrap(), medians.iter().max().unwrap());
        assert!(
            *high - *low < Duration::from_millis(5),
            "{method}: median answer times differ by user: {:?}",
            users.iter().zip(&medians).collect::<Vec<_>>()
        );
    }
}
