//! SIP over TLS: a rustls client and a real softphone (baresip) reach the endpoint on
//! `sip.tls_listen`, with a CA made at test time; Via and Contact say TLS; the certificate
//! is read again on SIGHUP, and a bad one is refused while the old one stays.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use zendesk_ivr::config::Config;
use zendesk_ivr::sip::dialog::EndReason;

use common::baresip::Baresip;
use common::sip_phone::{header, rand_u64};
use common::tls::{Issued, TestCa, TlsClient, first_cert};
use common::{free_sip_port, next_summary, start, test_config};

const WAIT: Duration = Duration::from_secs(20);

/// `test_config` with TLS on a free port, using `issued`.
fn tls_config(issued: &Issued) -> (Config, SocketAddr) {
    let mut config = test_config();
    let tls: SocketAddr = SocketAddr::from(([127, 0, 0, 1], free_sip_port()));
    config.sip.tls_listen = Some(tls);
    config.sip.tls_cert = Some(issued.cert.clone());
    config.sip.tls_key = Some(issued.key.clone());
    (config, tls)
}

/// A request from the client: `Via` says TLS and the client's own address.
fn request(
    client: &TlsClient,
    line: &str,
    call_id: &str,
    cseq: &str,
    rest: &str,
    body: &str,
) -> String {
    let local = client.local;
    format!(
        "{line} SIP/2.0\r\n\
         Via: SIP/2.0/TLS {local};branch=z9hG4bK{:016x};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:+4791234567@127.0.0.1>;tag=tlsclient\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {cseq}\r\n\
         {rest}\
         Content-Length: {}\r\n\r\n{body}",
        rand_u64(),
        body.len()
    )
}

fn sdp(rtp: u16) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {rtp} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
    )
}

/// Sends an INVITE and ACKs its 200; returns the 200.
async fn call(client: &mut TlsClient, tls: SocketAddr, call_id: &str) -> String {
    let local = client.local;
    let contact = format!("Contact: <sip:tester@{local};transport=tls>\r\n");
    let invite = request(
        client,
        &format!("INVITE sip:ivr@{tls};transport=tls"),
        call_id,
        "1 INVITE",
        &format!("To: <sip:ivr@{tls}>\r\n{contact}Content-Type: application/sdp\r\n"),
        &sdp(common::free_port_pair()),
    );
    client.send(&invite).await;
    let ok = client.final_response("INVITE", WAIT).await;
    assert!(ok.starts_with("SIP/2.0 200"), "INVITE answered: {ok}");
    let to = header(&ok, &["To", "t"]).expect("To");
    let ack = request(
        client,
        &format!("ACK sip:ivr@{tls};transport=tls"),
        call_id,
        "1 ACK",
        &format!("To: {to}\r\n"),
        "",
    );
    client.send(&ack).await;
    ok
}

/// OPTIONS and a whole call (INVITE, ACK, the caller's BYE) over one TLS connection,
/// verified against the test CA; the endpoint's Contact says `;transport=tls` with the
/// TLS port, and its responses come back on the same connection.
#[tokio::test(flavor = "multi_thread")]
async fn a_rustls_client_sends_options_and_a_call_over_tls() {
    let ca = TestCa::new("zendesk-ivr test CA");
    let (config, tls) = tls_config(&ca.issue("server", 4097));
    let server = start(config).await;
    let mut ended = server.subscribe();
    let mut client = TlsClient::connect(tls, &ca.cert()).await.expect("TLS handshake");

    let options = request(
        &client,
        &format!("OPTIONS sip:ivr@{tls};transport=tls"),
        "tls-options-1",
        "1 OPTIONS",
        &format!("To: <sip:ivr@{tls}>\r\n"),
        "",
    );
    client.send(&options).await;
    let reply = client.final_response("OPTIONS", WAIT).await;
    assert!(reply.starts_with("SIP/2.0 200"), "OPTIONS answered: {reply}");
    let via = header(&reply, &["Via", "v"]).expect("Via");
    assert!(via.starts_with("SIP/2.0/TLS "), "our Via comes back: {via}");

    let ok = call(&mut client, tls, "tls-call-1").await;
    let contact = header(&ok, &["Contact", "m"]).expect("200 has a Contact");
    assert!(
        contact.contains(&format!("@127.0.0.1:{};transport=tls", tls.port())),
        "Contact names the TLS port and transport: {contact}"
    );
    server.wait_for_call("tls-call-1").await;
    let to = header(&ok, &["To", "t"]).expect("To");
    let bye = request(
        &client,
        &format!("BYE sip:ivr@{tls};transport=tls"),
        "tls-call-1",
        "2 BYE",
        &format!("To: {to}\r\n"),
        "",
    );
    client.send(&bye).await;
    let reply = client.final_response("BYE", WAIT).await;
    assert!(reply.starts_with("SIP/2.0 200"), "BYE answered: {reply}");
    let summary = next_summary(&mut ended).await;
    assert!(summary.answered);
    assert_eq!(summary.end, Some(EndReason::RemoteBye), "{summary:?}");
}

/// The endpoint's own request in a call that came over TLS (its BYE at
/// `sip.max_call_s`) goes back over the caller's connection, with a TLS Via naming the
/// TLS port.
#[tokio::test(flavor = "multi_thread")]
async fn the_endpoint_hangs_up_over_the_callers_tls_connection() {
    let ca = TestCa::new("zendesk-ivr test CA");
    let (mut config, tls) = tls_config(&ca.issue("server", 4098));
    config.sip.max_call_s = 1;
    let server = start(config).await;
    let mut ended = server.subscribe();
    let mut client = TlsClient::connect(tls, &ca.cert()).await.expect("TLS handshake");
    call(&mut client, tls, "tls-call-2").await;
    let bye = loop {
        let message = client.recv(WAIT).await;
        if message.starts_with("BYE ") {
            break message;
        }
    };
    let via = header(&bye, &["Via", "v"]).expect("Via");
    assert!(via.starts_with(&format!("SIP/2.0/TLS 127.0.0.1:{};", tls.port())), "{via}");
    let ok = format!(
        "SIP/2.0 200 OK\r\nVia: {via}\r\nFrom: {}\r\nTo: {}\r\nCall-ID: tls-call-2\r\n\
         CSeq: {}\r\nContent-Length: 0\r\n\r\n",
        header(&bye, &["From", "f"]).expect("From"),
        header(&bye, &["To", "t"]).expect("To"),
        header(&bye, &["CSeq"]).expect("CSeq"),
    );
    client.send(&ok).await;
    let summary = next_summary(&mut ended).await;
    assert_eq!(summary.end, Some(EndReason::LocalBye), "{summary:?}");
}

/// A client that trusts another CA gets no connection.
#[tokio::test(flavor = "multi_thread")]
async fn a_client_with_another_ca_cannot_connect() {
    let ca = TestCa::new("zendesk-ivr test CA");
    let other = TestCa::new("some other CA");
    let (config, tls) = tls_config(&ca.issue("server", 4099));
    let _server = start(config).await;
    let refused = TlsClient::connect(tls, &other.cert()).await;
    let err = refused.err().expect("the handshake fails");
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");
}

/// baresip calls `sip:ivr@…;transport=tls` (the only transport on that port); the call
/// is answered, and the endpoint's BYE reaches it over the same connection. baresip 1.0
/// loads the test CA (`sip_cafile`) but does not check the server's certificate: it never
/// turns on libre's server verification, so this test shows interworking, and the rustls
/// tests show verification.
#[tokio::test(flavor = "multi_thread")]
async fn baresip_calls_over_tls() {
    let ca = TestCa::new("zendesk-ivr test CA");
    let (mut config, tls) = tls_config(&ca.issue("server", 4100));
    config.sip.max_call_s = 2;
    let server = start(config).await;
    let mut ended = server.subscribe();
    let source = tempfile::NamedTempFile::with_suffix(".wav").expect("temp wav");
    let status = std::process::Command::new("sox")
        .args(["-n", "-r", "8000", "-c", "1", "-b", "16"])
        .arg(source.path())
        .args(["synth", "1", "sine", "440"])
        .status()
        .expect("sox runs");
    assert!(status.success());
    let uri = format!("sip:ivr@{tls};transport=tls");
    let extra = format!("sip_cafile {}\n", ca.cert().display());
    let mut phone = Baresip::start_with(source.path(), Some(&uri), &extra).await;
    phone.wait_for("Call established", Duration::from_secs(20)).await;
    let summary = next_summary(&mut ended).await;
    assert!(summary.answered, "{summary:?}");
    assert_eq!(summary.end, Some(EndReason::LocalBye), "{summary:?}");
    phone.wait_for("terminated", WAIT).await;
    phone.stop().await;
}

/// The real binary reads the certificate again on SIGHUP: a new connection sees the new
/// certificate (another serial), one that cannot be used is refused with a log line and
/// the one in use stays.
#[tokio::test(flavor = "multi_thread")]
async fn sighup_reloads_the_certificate() {
    let ca = TestCa::new("zendesk-ivr test CA");
    let first = ca.issue("first", 0x1001);
    let second = ca.issue("second", 0x1002);
    let live = ca.issue("live", 0x1000);
    std::fs::copy(&first.cert, &live.cert).expect("copy");
    std::fs::copy(&first.key, &live.key).expect("copy");
    let config = test_config();
    let tls = SocketAddr::from(([127, 0, 0, 1], free_sip_port()));
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_zendesk-ivr"))
        .arg("run")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("ZENDESK_IVR_SIP__LISTEN", format!("127.0.0.1:{}", free_sip_port()))
        .env("ZENDESK_IVR_SIP__TLS_LISTEN", tls.to_string())
        .env("ZENDESK_IVR_SIP__TLS_CERT", &live.cert)
        .env("ZENDESK_IVR_SIP__TLS_KEY", &live.key)
        .env("ZENDESK_IVR_SIP__MAX_CALLS", config.sip.max_calls.to_string())
        .env("ZENDESK_IVR_MEDIA__RTP_PORTS", &config.media.rtp_ports)
        .env("ZENDESK_IVR_ZENDESK__ENABLED", "false")
        .env("ZENDESK_IVR_ADMIN__LISTEN", format!("127.0.0.1:{}", free_sip_port()))
        .env("ZENDESK_IVR_ROUTING__PROBE_INTERVAL_S", "0")
        .env("ZENDESK_IVR_TTS__CACHE_DIR", config.tts.cache_dir.clone().unwrap_or_default())
        .env("ZENDESK_IVR_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("zendesk-ivr runs");
    let pid = child.id().expect("pid") as i32;
    let mut lines = common::output_lines(&mut child);
    let mut log = Vec::new();
    common::wait_for_line(&mut lines, &mut log, "zendesk-ivr", "listening on TLS", WAIT).await;
    let before = TlsClient::connect(tls, &ca.cert()).await.expect("TLS handshake");
    assert_eq!(before.server_certificate(), first_cert(&first.cert));

    std::fs::copy(&second.cert, &live.cert).expect("copy");
    std::fs::copy(&second.key, &live.key).expect("copy");
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(pid, libc::SIGHUP) };
    common::wait_for_line(&mut lines, &mut log, "zendesk-ivr", "TLS certificate reloaded", WAIT)
        .await;
    let after = TlsClient::connect(tls, &ca.cert()).await.expect("TLS handshake");
    assert_eq!(after.server_certificate(), first_cert(&second.cert), "the new certificate");

    // A key that does not fit the certificate: refused, and the second one stays.
    std::fs::copy(&first.key, &live.key).expect("copy");
    unsafe { libc::kill(pid, libc::SIGHUP) };
    let line = common::wait_for_line(
        &mut lines,
        &mut log,
        "zendesk-ivr",
        "TLS certificate not reloaded",
        WAIT,
    )
    .await;
    assert!(line.contains("does not fit"), "{line}");
    let still = TlsClient::connect(tls, &ca.cert()).await.expect("TLS handshake");
    assert_eq!(still.server_certificate(), first_cert(&second.cert), "the old one stays");
    let _ = child.kill().await;
}

/// Dials `target` from `dialer` and waits for how the call went: `Established` (then
/// hung up) or the reason it ended.
async fn dial_over_tls(
    dialer: &zendesk_ivr::server::RunningServer,
    target: &str,
) -> Option<EndReason> {
    use zendesk_ivr::sip::dialog::CallEvent;
    use zendesk_ivr::sip::endpoint::Command;
    use zendesk_ivr::sip::message::Transport;
    let rtp = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind RTP");
    let local_rtp = rtp.local_addr().expect("address");
    let (call, mut events) = dialer
        .endpoint()
        .dial(target, "100", Transport::Tls, local_rtp)
        .await
        .expect("call placed");
    loop {
        let event = tokio::time::timeout(Duration::from_secs(20), events.recv())
            .await
            .expect("a call event in time")
            .expect("the event stream is open");
        match event {
            CallEvent::Established { .. } => {
                assert!(dialer.endpoint().send(Command::Hangup { call }));
                return None;
            }
            CallEvent::Terminated { reason, .. } => return Some(reason),
            _ => {}
        }
    }
}

/// An outgoing call to a `;transport=tls` target verifies the target's certificate
/// against `sip.tls_ca_file`: with the right CA it is answered, with another it never
/// leaves, and fails at once as a 503 (RFC 3261 §8.1.3.1), long before Timer B (32 s; the
/// event wait is 20 s).
#[tokio::test(flavor = "multi_thread")]
async fn an_outgoing_call_over_tls_verifies_the_target() {
    let ca = TestCa::new("zendesk-ivr test CA");
    let other = TestCa::new("some other CA");
    let (target_config, target_tls) = tls_config(&ca.issue("target", 4101));
    let target = start(target_config).await;
    let mut answered = target.subscribe();
    let uri = format!("sip:ivr@{target_tls};transport=tls");

    let (mut trusting, _) = tls_config(&ca.issue("dialer", 4102));
    trusting.sip.tls_ca_file = Some(ca.cert());
    let dialer = start(trusting).await;
    assert_eq!(dial_over_tls(&dialer, &uri).await, None, "the call is answered");
    let summary = next_summary(&mut answered).await;
    assert_eq!(summary.end, Some(EndReason::RemoteBye), "{summary:?}");

    let (mut wary, _) = tls_config(&ca.issue("wary", 4103));
    wary.sip.tls_ca_file = Some(other.cert());
    let dialer = start(wary).await;
    assert_eq!(dial_over_tls(&dialer, &uri).await, Some(EndReason::Failed(503)));
    assert_eq!(target.active_calls(), 0, "nothing reached the target");
}

/// A target dialled by host name is verified for that name: with a certificate that names
/// only `localhost`, `sip:ivr@localhost:…;transport=tls` is answered and the same target
/// by IP address is not reached.
#[tokio::test(flavor = "multi_thread")]
async fn a_target_dialled_by_name_is_verified_for_that_name() {
    let ca = TestCa::new("zendesk-ivr test CA");
    let (target_config, target_tls) = tls_config(&ca.issue_for("named", 4104, "DNS:localhost"));
    let target = start(target_config).await;
    let mut answered = target.subscribe();
    let (mut config, _) = tls_config(&ca.issue("dialer", 4105));
    config.sip.tls_ca_file = Some(ca.cert());
    let dialer = start(config).await;

    // By address first: an open connection to the address would be reused.
    let by_address = format!("sip:ivr@{target_tls};transport=tls");
    assert_eq!(dial_over_tls(&dialer, &by_address).await, Some(EndReason::Failed(503)));
    assert_eq!(target.active_calls(), 0, "nothing reached the target");

    let by_name = format!("sip:ivr@localhost:{};transport=tls", target_tls.port());
    assert_eq!(dial_over_tls(&dialer, &by_name).await, None, "the call is answered");
    let summary = next_summary(&mut answered).await;
    assert_eq!(summary.end, Some(EndReason::RemoteBye), "{summary:?}");
}

/// `check` loads the TLS files: a good pair passes, a key that does not fit fails the
/// check with the reason.
#[tokio::test(flavor = "multi_thread")]
async fn check_loads_the_tls_files() {
    let ca = TestCa::new("zendesk-ivr test CA");
    let (good, bad) = (ca.issue("good", 4106), ca.issue("bad", 4107));
    let (mut config, _) = tls_config(&good);
    let line = |report: &zendesk_ivr::check::CheckReport| {
        report.lines.iter().find(|l| l.what == "sip.tls_cert").cloned().expect("a TLS line")
    };
    let report = zendesk_ivr::check::check(&config).await;
    assert!(line(&report).ok, "{}", report.to_text());
    config.sip.tls_key = Some(bad.key);
    let report = zendesk_ivr::check::check(&config).await;
    let tls = line(&report);
    assert!(!tls.ok && tls.detail.contains("does not fit"), "{}", report.to_text());
}
