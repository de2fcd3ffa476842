//! Slowloris over TCP: many connections from one source trickle a message that never
//! ends. The per-source cap holds (the excess is closed at once and logged once), the
//! held ones are cut off at the message deadline (logged as a slow sender), their places
//! are freed, and a legitimate caller completes a TCP call (SIPp) meanwhile.

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc;

use common::{next_summary, sipp, start, test_config, wait_for_line};

/// Log output as lines on a channel.
#[derive(Clone)]
struct LineSink {
    tx: mpsc::UnboundedSender<String>,
    partial: Arc<Mutex<Vec<u8>>>,
}

impl Write for LineSink {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let mut partial = self.partial.lock().unwrap_or_else(|e| e.into_inner());
        partial.extend_from_slice(data);
        while let Some(end) = partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = partial.drain(..=end).collect();
            let _ = self.tx.send(String::from_utf8_lossy(&line).trim_end().to_string());
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() -> mpsc::UnboundedReceiver<String> {
    let (tx, rx) = mpsc::unbounded_channel();
    let sink = LineSink { tx, partial: Arc::default() };
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
    rx
}

/// A connection to `server` from `source` (any port).
async fn connect_from(source: &str, server: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.bind(format!("{source}:0").parse().expect("address")).expect("bind the source");
    socket.connect(server).await.expect("the kernel accepts the connection")
}

/// True if the server closed `stream` within `within` (EOF or reset), false if it is still
/// open then.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 512];
    loop {
        match tokio::time::timeout(within, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

const SLOW: &str = "127.0.0.2";
const ATTEMPTS: usize = 40;
const PER_IP: usize = 8;

#[tokio::test(flavor = "multi_thread")]
async fn slow_connections_are_capped_and_cut_off_while_a_tcp_call_completes() {
    let mut logs = capture_logs();
    let mut log = Vec::new();
    let mut config = test_config();
    config.sip.tcp_max_connections_per_ip = PER_IP;
    config.sip.tcp_max_connections = 64;
    config.sip.tcp_message_timeout_ms = 3000;
    let server = start(config).await;
    let addr = server.sip_addr();
    let mut ended = server.subscribe();

    // Many connections from one source, each starting a message it never finishes.
    let mut slow = Vec::new();
    for _ in 0..ATTEMPTS {
        let mut stream = connect_from(SLOW, addr).await;
        let _ = stream.write_all(b"OPTIONS sip:ivr@127.0.0.1 SIP/2.0\r\nVia: ").await;
        slow.push(stream);
    }
    let refused = format!("SECURITY connection-limit src={SLOW} ");
    wait_for_line(&mut logs, &mut log, "endpoint", &refused, Duration::from_secs(10)).await;

    // The excess was closed at once; the cap's worth is held open.
    let mut held = Vec::new();
    let mut closed = 0;
    let checks: Vec<_> = slow
        .into_iter()
        .map(|mut s| {
            tokio::spawn(
                async move { (closed_within(&mut s, Duration::from_millis(1500)).await, s) },
            )
        })
        .collect();
    for check in checks {
        let (was_closed, stream) = check.await.expect("check ran");
        if was_closed {
            closed += 1;
        } else {
            held.push(stream);
        }
    }
    assert_eq!(held.len(), PER_IP, "connections held from one source");
    assert_eq!(closed, ATTEMPTS - PER_IP);

    // The held ones trickle a byte every 300 ms: never idle, never finished.
    let trickle = tokio::spawn(async move {
        let mut open = held;
        for _ in 0..40 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let mut still = Vec::new();
            for mut stream in open {
                if stream.write_all(b"x").await.is_ok() {
                    still.push(stream);
                }
            }
            open = still;
        }
        open
    });

    // A legitimate caller from another source completes a TCP call meanwhile.
    let run = sipp("uac_bye.xml", addr, "t1", &[]).await;
    run.assert_ok();
    let summary = next_summary(&mut ended).await;
    assert!(summary.answered, "{summary:?}");

    // The trickling senders are cut off at the message deadline.
    let cut = format!("SECURITY slow-sender src={SLOW} ");
    wait_for_line(&mut logs, &mut log, "endpoint", &cut, Duration::from_secs(10)).await;
    let mut remaining = trickle.await.expect("trickle ran");
    for stream in remaining.iter_mut() {
        assert!(closed_within(stream, Duration::from_secs(5)).await, "a slow sender stays open");
    }

    // Their places are free again: the same source is served.
    let mut stream = connect_from(SLOW, addr).await;
    let options = format!(
        "OPTIONS sip:ivr@{addr} SIP/2.0\r\nVia: SIP/2.0/TCP {SLOW}:5060;branch=z9hG4bKslow1\r\n\
         Max-Forwards: 70\r\nFrom: <sip:probe@{SLOW}>;tag=1\r\nTo: <sip:ivr@{addr}>\r\n\
         Call-ID: slowloris-after@{SLOW}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    );
    stream.write_all(options.as_bytes()).await.expect("send");
    let mut answer = Vec::new();
    let mut buf = [0u8; 2048];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .expect("an answer within 5 s")
            .expect("read");
        assert!(n > 0, "closed without an answer");
        answer.extend_from_slice(&buf[..n]);
    }
    assert!(answer.starts_with(b"SIP/2.0 200"), "{}", String::from_utf8_lossy(&answer));

    // Each source is reported once per interval, however many times it was refused.
    while let Ok(line) = logs.try_recv() {
        log.push(line);
    }
    let reports = log.iter().filter(|l| l.contains(&refused)).count();
    assert_eq!(reports, 1, "{}", log.join("\n"));
    assert_eq!(log.iter().filter(|l| l.contains(&cut)).count(), 1, "{}", log.join("\n"));
}
