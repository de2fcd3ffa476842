//! Every RFC 4475 / RFC 5118 torture message is sent over UDP to a running endpoint; each
//! gets the disposition the corpus README gives, and the endpoint still answers a normal
//! call afterwards.
//!
//! The messages carry foreign addresses (192.0.2.x, example domains). A correct endpoint
//! answers to the packet's source, but requests it may send later (a BYE after a missing
//! ACK) go to those addresses; so the test runs in a network namespace of its own with
//! only loopback up, where such packets cannot leave the machine. Creating the namespace
//! needs root (CI runs as root).

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use common::{shared_dir, sipp, start, test_config};
use tokio::net::UdpSocket;

/// What the endpoint must answer to a message.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// A valid request: some final response, never 400.
    Answered,
    /// An invalid request that a response can be built for: rejected with this final status.
    Rejected(u16),
    /// Dropped with no answer: a response that matches nothing (RFC 3261 §18.1.2), or a
    /// message no response can be built for.
    Dropped,
    /// This final status (or the alternative).
    Status(u16, u16),
}

fn expectations() -> BTreeMap<&'static str, Expect> {
    use Expect::*;
    let mut map = BTreeMap::new();
    // RFC 4475 §3.1.1: valid messages.
    for name in [
        "wsinv",
        "intmeth",
        "esc01",
        "escnull",
        "esc02",
        "lwsdisp",
        "longreq",
        "dblreq",
        "semiuri",
        "transports",
        "mpart01",
    ] {
        map.insert(name, Answered);
    }
    map.insert("unreason", Dropped);
    map.insert("noreason", Dropped);
    // §3.1.2: invalid messages.
    for name in [
        "badinv01",
        "clerr",
        "ncl",
        "scalar02",
        "quotbal",
        "ltgtruri",
        "lwsruri",
        "lwsstart",
        "trws",
        "escruri",
        "baddate",
        "regbadct",
        "badaspec",
        "baddn",
        "mismatch01",
        "mismatch02",
    ] {
        map.insert(name, Rejected(400));
    }
    map.insert("badvers", Rejected(505));
    // Two invalid responses: dropped (they also match no transaction).
    map.insert("scalarlg", Dropped);
    map.insert("bigcode", Dropped);
    // Two of §3.3 break framing or single-value rules: RFC 4475 asks for an error (400).
    map.insert("mcl01", Status(400, 400));
    map.insert("multi01", Status(400, 400));
    // A stray response (to a broadcast Via) is dropped.
    map.insert("bcast", Dropped);
    // §3.2 and §3.3.
    // An RFC 2543-style branch: matched by the old rules and answered.
    map.insert("badbranch", Answered);
    map.insert("insuf", Status(400, 400));
    map.insert("unkscm", Status(416, 416));
    map.insert("bext01", Status(420, 420));
    map.insert("invut", Status(415, 415));
    map.insert("zeromf", Status(483, 200));
    map.insert("sdp01", Status(406, 488));
    for name in ["novelsc", "unksm2", "regaut01", "cparam01", "cparam02", "regescrt"] {
        map.insert(name, Answered);
    }
    map.insert("inv2543", Answered);
    // RFC 5118.
    for name in [
        "ipv4-mapped-ipv6",
        "ipv6-correct-abnf-2-colons",
        "ipv6-good",
        "ipv6-in-sdp",
        "mult-ip-in-header",
        "mult-ip-in-sdp",
        "port-ambiguous",
        "port-unambiguous",
        "via-received-param-no-delim",
        "via-received-param-with-delim",
    ] {
        map.insert(name, Answered);
    }
    map.insert("ipv6-bad", Rejected(400));
    // RFC 5118 §4.10: the three-colon form is wrong but must be tolerated.
    map.insert("ipv6-bug-abnf-3-colons", Answered);
    map
}

fn corpus_files() -> Vec<(String, PathBuf)> {
    let root = shared_dir().join("corpus/sip-torture");
    let mut files = Vec::new();
    for sub in ["rfc4475", "rfc5118"] {
        let dir = root.join(sub);
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| {
            panic!("torture corpus at {} ({e}); set ZENDESK_IVR_SHARED", dir.display())
        });
        for entry in entries.flatten() {
            let path = entry.path();
            let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
            if name != "README" {
                files.push((name, path));
            }
        }
    }
    files.sort();
    files
}

/// Final status codes (and provisional ones) received until `quiet` passes with nothing.
async fn responses(socket: &UdpSocket, quiet: Duration) -> Vec<u16> {
    let mut codes = Vec::new();
    let mut buf = vec![0u8; 65_536];
    while let Ok(Ok(n)) = tokio::time::timeout(quiet, socket.recv(&mut buf)).await {
        let text = String::from_utf8_lossy(&buf[..n]);
        let status = text.strip_prefix("SIP/2.0 ").and_then(|r| r.get(..3));
        if let Some(code) = status.and_then(|c| c.parse::<u16>().ok()) {
            codes.push(code);
            if code >= 200 {
                break;
            }
        }
    }
    codes
}

fn enter_private_network() -> bool {
    // SAFETY: unshare only changes this thread's namespaces; no memory is touched.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        return false;
    }
    std::process::Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

#[test]
fn torture_corpus_gets_its_dispositions_and_the_endpoint_survives() {
    // A replay that cannot run fails: it never passes without having run.
    assert!(
        enter_private_network(),
        "the torture replay needs a network namespace of its own (root, or CAP_SYS_ADMIN \
         and the `ip` tool): its messages carry foreign addresses that must not leave the \
         machine. Run the suite as root, as CI does."
    );
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let mut config = test_config();
        config.sip.t1_ms = 50; // calls opened by valid INVITEs time out quickly without ACK
        let expectations = expectations();
        let mut failures = Vec::new();
        let files = corpus_files();
        // Several files share a transaction key (same branch, sent-by and method), so one
        // endpoint would rightly treat the later ones as retransmissions: each file gets a
        // fresh endpoint for its disposition.
        for (name, path) in &files {
            let server = start(config.clone()).await;
            let Some(expect) = expectations.get(name.as_str()).copied() else {
                failures.push(format!("{name}: no disposition in the test table"));
                continue;
            };
            let bytes = std::fs::read(path).unwrap();
            let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            socket.send_to(&bytes, server.sip_addr()).await.unwrap();
            let codes = responses(&socket, Duration::from_millis(400)).await;
            let last = codes.iter().copied().rfind(|c| *c >= 200);
            let ok = match expect {
                Expect::Answered => last.is_some_and(|c| c != 400),
                Expect::Rejected(code) => last == Some(code),
                Expect::Dropped => codes.is_empty(),
                Expect::Status(a, b) => last.is_some_and(|c| c == a || c == b),
            };
            if !ok {
                failures.push(format!("{name}: expected {expect:?}, got {codes:?}"));
            }
        }
        assert!(failures.is_empty(), "dispositions:\n{}", failures.join("\n"));
        // The whole corpus into one endpoint, back to back; then it still answers a call.
        let server = start(config.clone()).await;
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        for (_, path) in &files {
            socket.send_to(&std::fs::read(path).unwrap(), server.sip_addr()).await.unwrap();
        }
        sipp("uac_bye.xml", server.sip_addr(), "u1", &[]).await.assert_ok();
    });
}
