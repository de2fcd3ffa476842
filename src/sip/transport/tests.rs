//! The connection map against real loopback sockets.

use std::time::Duration;

use bytes::Bytes;
use tokio::io::AsyncReadExt;
use tokio::net::TcpSocket;
use tokio::sync::mpsc;

use super::{Transports, failure::SendReport};
use crate::sip::message::{Limits, Transport};
use crate::sip::tcp_guard::TcpLimits;
use crate::sip::transaction::{Peer, TransactionId};

/// A connection whose writer gave up (the peer stopped reading) leaves the connection
/// map, so the next message to that peer opens a new connection instead of failing on the
/// dead one for ever.
#[tokio::test]
async fn a_connection_whose_writer_gave_up_is_replaced() {
    let (inbound, _inbound_rx) = mpsc::channel(16);
    let limits = TcpLimits { write_timeout: Duration::from_millis(300), ..TcpLimits::default() };
    let local = "127.0.0.1:0".parse().expect("address");
    let transports =
        Transports::bind_with(local, None, Limits::default(), limits, inbound).await.expect("bind");

    // A peer that accepts and never reads, with a small receive buffer.
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    socket.bind("127.0.0.1:0".parse().expect("address")).expect("bind");
    let listener = socket.listen(4).expect("listen");
    let peer = Peer { addr: listener.local_addr().expect("addr"), transport: Transport::Tcp };

    let (failures_tx, mut failures) = mpsc::unbounded_channel();
    let chunk = Bytes::from(vec![b'x'; 60_000]);
    let report = |n: u32| {
        let id = TransactionId(format!("c{n}:OPTIONS z9hG4bK{n}"));
        Some(SendReport::new(id, failures_tx.clone()))
    };
    transports.send_reporting(peer, chunk.clone(), report(0)).await;
    let (mut stuck, _) = listener.accept().await.expect("first connection");
    // The first message arrived: the connection is in the map. From now on, no reading.
    let mut first = vec![0u8; chunk.len()];
    stuck.read_exact(&mut first).await.expect("the first message");
    // Fill the peer's buffer and ours until a write cannot finish.
    for n in 1..200 {
        transports.send_reporting(peer, chunk.clone(), report(n)).await;
    }
    let failure = tokio::time::timeout(Duration::from_secs(30), failures.recv())
        .await
        .expect("the stuck writer gives up")
        .expect("a failure report");
    assert!(failure.reason.contains("not reading"), "{}", failure.reason);

    // Every later message goes to a new connection (not failed on the dead queue).
    let fresh = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            transports.send(peer, Bytes::from_static(b"OPTIONS probe\r\n")).await;
            tokio::select! {
                accepted = listener.accept() => break accepted.expect("second connection"),
                () = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
    })
    .await
    .expect("a new connection is opened to the peer");
    drop(fresh);
}

/// Messages sent to a peer while its connection is still being opened queue on that one
/// connection, in order: a burst does not open a connection per message.
#[tokio::test]
async fn messages_sent_while_connecting_share_one_connection() {
    let (inbound, _inbound_rx) = mpsc::channel(16);
    let local = "127.0.0.1:0".parse().expect("address");
    let transports = Transports::bind(local, Limits::default(), inbound).await.expect("bind");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("listen");
    let peer = Peer { addr: listener.local_addr().expect("addr"), transport: Transport::Tcp };
    let mut expected = Vec::new();
    for n in 0..20 {
        let message = format!("message {n:02}\r\n");
        expected.extend_from_slice(message.as_bytes());
        transports.send(peer, Bytes::from(message)).await;
    }
    let (mut stream, _) = listener.accept().await.expect("a connection");
    let mut got = vec![0u8; expected.len()];
    tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut got))
        .await
        .expect("all twenty arrive on the first connection")
        .expect("read");
    assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(&expected));
}
