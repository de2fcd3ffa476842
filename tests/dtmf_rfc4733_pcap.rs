//! The RFC 4733 receiver driven by the real telephone-event packets SIPp ships
//! (`/usr/share/sip-tester/dtmf_2833_*.pcap`, payload type 101), read from the captures.

use std::fs::File;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use pcap_file::DataLink;
use pcap_file::pcap::PcapReader;
use zendesk_ivr::media::dtmf::{DigitSource, Rfc4733Receiver};

const PCAP_DIR: &str = "/usr/share/sip-tester";

/// (file stem, digit) for every capture.
const CAPTURES: [(&str, char); 12] = [
    ("0", '0'),
    ("1", '1'),
    ("2", '2'),
    ("3", '3'),
    ("4", '4'),
    ("5", '5'),
    ("6", '6'),
    ("7", '7'),
    ("8", '8'),
    ("9", '9'),
    ("star", '*'),
    ("pound", '#'),
];

/// One captured RTP packet and its capture time relative to the first packet.
#[derive(Clone)]
struct Captured {
    at: Duration,
    rtp: Vec<u8>,
}

/// Strips Ethernet, IPv4 and UDP headers; `None` for anything else.
fn udp_payload(frame: &[u8]) -> Option<&[u8]> {
    let ethertype = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
    if ethertype != 0x0800 {
        return None;
    }
    let ip = frame.get(14..)?;
    let ihl = usize::from(ip.first()? & 0x0F) * 4;
    if *ip.get(9)? != 17 {
        return None;
    }
    let total = usize::from(u16::from_be_bytes([*ip.get(2)?, *ip.get(3)?]));
    let udp = ip.get(ihl..total.min(ip.len()))?;
    udp.get(8..)
}

fn read_capture(stem: &str) -> Vec<Captured> {
    let path = PathBuf::from(PCAP_DIR).join(format!("dtmf_2833_{stem}.pcap"));
    let file = File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut reader = PcapReader::new(file).expect("pcap header");
    assert_eq!(reader.header().datalink, DataLink::ETHERNET);
    let mut packets = Vec::new();
    let mut first = None;
    while let Some(pkt) = reader.next_packet() {
        let pkt = pkt.expect("pcap packet");
        let start = *first.get_or_insert(pkt.timestamp);
        let rtp = udp_payload(&pkt.data).expect("UDP/IPv4 packet").to_vec();
        packets.push(Captured { at: pkt.timestamp - start, rtp });
    }
    assert!(packets.len() >= 4, "{stem}: {} packets", packets.len());
    packets
}

/// Feeds packets in capture order at their capture times (offset by `start`), with the
/// receiver's timeout handled before each packet, and returns the digits.
fn feed(rx: &mut Rfc4733Receiver, t0: Instant, start: Duration, packets: &[Captured]) -> String {
    let mut digits = String::new();
    for p in packets {
        let now = t0 + start + p.at;
        rx.handle_timeout(now);
        if let Some(ev) = rx.handle_rtp(now, &p.rtp) {
            assert_eq!(ev.source, DigitSource::Rfc4733);
            digits.push(ev.digit);
        }
    }
    digits
}

fn set_ssrc(rtp: &mut [u8], ssrc: u32) {
    rtp[8..12].copy_from_slice(&ssrc.to_be_bytes());
}

fn set_timestamp(rtp: &mut [u8], ts: u32) {
    rtp[4..8].copy_from_slice(&ts.to_be_bytes());
}

fn is_end(rtp: &[u8]) -> bool {
    rtp[12 + 1] & 0x80 != 0
}

#[test]
fn each_capture_yields_its_digit_once() {
    for (stem, digit) in CAPTURES {
        let packets = read_capture(stem);
        // The three end packets share one sequence number in these captures.
        let ends: Vec<&Captured> = packets.iter().filter(|p| is_end(&p.rtp)).collect();
        assert_eq!(ends.len(), 3, "{stem}");
        assert!(ends.iter().all(|p| p.rtp[2..4] == ends[0].rtp[2..4]));
        let mut rx = Rfc4733Receiver::new(101, 8000);
        let t0 = Instant::now();
        assert_eq!(feed(&mut rx, t0, Duration::ZERO, &packets), digit.to_string(), "{stem}");
        assert_eq!(rx.active_digit(), None, "{stem}: closed by its end packet");
    }
}

#[test]
fn all_captures_in_a_row_yield_every_digit_in_order() {
    let mut rx = Rfc4733Receiver::new(101, 8000);
    let t0 = Instant::now();
    let mut got = String::new();
    for (i, (stem, _)) in CAPTURES.iter().enumerate() {
        got += &feed(&mut rx, t0, Duration::from_secs(i as u64), &read_capture(stem));
    }
    assert_eq!(got, "0123456789*#");
}

#[test]
fn lost_end_packets_close_on_timeout() {
    let t0 = Instant::now();
    let mut rx = Rfc4733Receiver::new(101, 8000);
    let mut got = String::new();
    for (i, (stem, _)) in CAPTURES.iter().enumerate() {
        let packets: Vec<Captured> =
            read_capture(stem).into_iter().filter(|p| !is_end(&p.rtp)).collect();
        let start = Duration::from_secs(i as u64);
        got += &feed(&mut rx, t0, start, &packets);
        let last = t0 + start + packets.last().unwrap().at;
        let deadline = rx.poll_timeout().expect("digit held open without its end");
        assert!(deadline > last && deadline <= last + Duration::from_millis(500));
        rx.handle_timeout(deadline);
        assert_eq!(rx.active_digit(), None);
    }
    assert_eq!(got, "0123456789*#");
}

#[test]
fn duplicated_and_replayed_packets_do_not_repeat_a_digit() {
    let t0 = Instant::now();
    let mut rx = Rfc4733Receiver::new(101, 8000);
    let packets = read_capture("7");
    let mut doubled = Vec::new();
    for p in &packets {
        doubled.push(p.clone());
        if is_end(&p.rtp) {
            doubled.push(p.clone());
            doubled.push(p.clone());
        }
    }
    assert_eq!(feed(&mut rx, t0, Duration::ZERO, &doubled), "7");
    // The whole press arriving again (a late duplicate burst) is the same key.
    assert_eq!(feed(&mut rx, t0, Duration::from_millis(400), &packets), "");
    // The same key again a second later is a new press, and is reported.
    let again: Vec<Captured> = packets
        .iter()
        .cloned()
        .map(|mut p| {
            set_timestamp(&mut p.rtp, 99_999);
            p
        })
        .collect();
    assert_eq!(feed(&mut rx, t0, Duration::from_secs(1), &again), "7");
}

#[test]
fn ssrc_change_mid_call() {
    let t0 = Instant::now();
    let mut rx = Rfc4733Receiver::new(101, 8000);
    // Digit 1 from the first SSRC, cut off half way (no end packets).
    let first: Vec<Captured> = read_capture("1").into_iter().take(4).collect();
    assert_eq!(feed(&mut rx, t0, Duration::ZERO, &first), "1");
    assert_eq!(rx.active_digit(), Some('1'));
    // The sender switches SSRC and sends digit 1 again with the same timestamp:
    // a new stream, a new press.
    let second: Vec<Captured> = read_capture("1")
        .into_iter()
        .map(|mut p| {
            set_ssrc(&mut p.rtp, 0xDEAD_BEEF);
            p
        })
        .collect();
    assert_eq!(feed(&mut rx, t0, Duration::from_millis(100), &second), "1");
    // Stragglers from the old SSRC are recognised, not reported.
    assert_eq!(feed(&mut rx, t0, Duration::from_millis(400), &first), "");
    assert_eq!(feed(&mut rx, t0, Duration::from_secs(1), &read_capture("2")), "2");
}

#[test]
fn negotiated_payload_type_is_used() {
    let t0 = Instant::now();
    let packets: Vec<Captured> = read_capture("9")
        .into_iter()
        .map(|mut p| {
            p.rtp[1] = (p.rtp[1] & 0x80) | 96;
            p
        })
        .collect();
    let mut rx = Rfc4733Receiver::new(96, 8000);
    assert_eq!(rx.payload_type(), 96);
    assert_eq!(feed(&mut rx, t0, Duration::ZERO, &packets), "9");
    let mut rx101 = Rfc4733Receiver::new(101, 8000);
    assert_eq!(
        feed(&mut rx101, t0, Duration::ZERO, &packets),
        "",
        "PT 96 is not telephone-event here"
    );
    // And the original PT 101 packets are ignored by a receiver negotiated at 96.
    let mut rx96 = Rfc4733Receiver::new(96, 8000);
    assert_eq!(feed(&mut rx96, t0, Duration::ZERO, &read_capture("9")), "");
}
