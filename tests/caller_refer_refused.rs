//! No relay: a caller's REFER to the IVR is refused (603), whether its Refer-To names a
//! foreign host or one of the configured queue targets, and the IVR dials nothing.

mod common;

use std::net::UdpSocket;

use common::{next_summary, quick_ivr_config, sipp, start};

/// A UDP socket standing for a SIP target; it must receive nothing.
fn target() -> (UdpSocket, String) {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket.set_nonblocking(true).expect("non-blocking");
    let uri = format!("sip:agent@{}", socket.local_addr().expect("address"));
    (socket, uri)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_callers_refer_is_refused_and_nothing_is_dialled() {
    let (foreign, foreign_uri) = target();
    let (queue, queue_uri) = target();
    let mut config = quick_ivr_config();
    config.routing.default_queue = queue_uri.clone();
    config.routing.priority_queue = queue_uri.clone();
    let server = start(config).await;
    let mut summaries = server.subscribe();

    let extra = ["-key", "foreign", foreign_uri.as_str(), "-key", "queue", queue_uri.as_str()];
    let run = sipp("uac_refer_to_server.xml", server.sip_addr(), "u1", &extra).await;
    run.assert_ok();
    assert_eq!(run.count_received("SIP/2.0 603", "REFER"), 2, "{}", run.messages);

    // The call is over (its summary is out), so anything the REFERs set off was sent.
    let summary = next_summary(&mut summaries).await;
    assert_eq!(summary.digits, "");
    let mut buf = [0u8; 2048];
    for (name, socket) in [("foreign", &foreign), ("queue", &queue)] {
        match socket.recv_from(&mut buf) {
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
            Ok((n, from)) => panic!(
                "the {name} target got {n} bytes from {from}: {}",
                String::from_utf8_lossy(&buf[..n])
            ),
            Err(err) => panic!("{err}"),
        }
    }
}
