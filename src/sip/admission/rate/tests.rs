//! The per-source tiers in virtual time.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use super::*;

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn per_second(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap()
}

/// A spoofed source: `n` spread over many /24s when `spread`, else over 10.0.0.0/16.
fn spoofed(n: u32, spread: bool) -> IpAddr {
    let n = if spread { n << 8 } else { n };
    IpAddr::from((0x0a00_0000 + n).to_be_bytes())
}

/// Runs a flood of one request every 100 µs from `count` addresses for `count` steps,
/// offering a request from `legit` once a second, half-way between two of the full
/// tables' sweeps; returns how many of those passed, how many were offered, and the tier
/// that held `legit`'s bucket at each.
fn flood_with_probe(
    rate: &mut PerSourceRate,
    start: Instant,
    count: u32,
    spread: bool,
    legit: IpAddr,
    class: SourceClass,
) -> (u32, u32, Vec<Tier>) {
    let (mut passed, mut offered, mut tiers) = (0, 0, Vec::new());
    for n in 0..count {
        let now = start + Duration::from_micros(u64::from(n) * 100);
        let _ = rate.check(now, spoofed(n, spread), SourceClass::Other);
        // The legitimate source sends once a second: well within its rate.
        if n % 10_000 == 5_000 {
            offered += 1;
            if rate.check(now, legit, class).is_ok() {
                passed += 1;
            }
            tiers.push(rate.tier_of(legit));
        }
        assert!(rate.len() <= 3 * 50 + 1, "bounded: {}", rate.len());
    }
    (passed, offered, tiers)
}

#[test]
fn the_burst_then_the_rate() {
    let t0 = Instant::now();
    let mut rate = PerSourceRate::new(per_second(5), 10, t0);
    let source = ip("192.0.2.1");
    let taken = (0..20).filter(|_| rate.check(t0, source, SourceClass::Other).is_ok()).count();
    assert_eq!(taken, 5);
    let Err(limited) = rate.check(t0, source, SourceClass::Other) else { panic!("limited") };
    assert_eq!(limited.wait, Duration::from_millis(200));
    assert!(rate.check(t0 + Duration::from_millis(200), source, SourceClass::Other).is_ok());
    // A privileged source is limited too, in its own bucket.
    let peer = ip("192.0.2.2");
    let taken = (0..20).filter(|_| rate.check(t0, peer, SourceClass::Privileged).is_ok()).count();
    assert_eq!(taken, 5);
}

#[test]
fn past_the_address_table_a_flood_is_held_per_network_and_a_new_caller_gets_in() {
    let t0 = Instant::now();
    let mut rate = PerSourceRate::new(per_second(2), 50, t0);
    // 100,000 addresses in 10.0.0.0/16 (391 /24s, more than the table's 50 networks).
    // A caller from elsewhere: its own network has a bucket, or once the prefix table is
    // full too, it still passes whenever the shared bucket has a cell.
    let caller = ip("192.0.2.7");
    let (passed, offered, tiers) =
        flood_with_probe(&mut rate, t0, 100_000, false, caller, SourceClass::Other);
    assert_eq!(offered, 10);
    assert!(passed >= 1, "{passed} of {offered}");
    assert!(!tiers.contains(&Tier::Address), "the address table was full: {tiers:?}");

    // A flood from few networks (one /24 per 256 addresses, 40 networks): the address
    // table is full when the caller comes, and the new caller elsewhere gets a bucket for
    // its network, so it is not refused.
    let t1 = t0 + Duration::from_secs(60);
    let mut rate = PerSourceRate::new(per_second(2), 50, t1);
    let (passed, offered, tiers) =
        flood_with_probe(&mut rate, t1, 10_240, false, caller, SourceClass::Other);
    assert_eq!((passed, offered), (1, 1));
    assert_eq!(tiers, vec![Tier::Network]);
}

#[test]
fn a_flood_over_more_networks_than_the_tables_hold_never_starves_a_privileged_source() {
    let t0 = Instant::now();
    let mut rate = PerSourceRate::new(per_second(2), 50, t0);
    let trunk = ip("192.0.2.50");
    // Each flood address in a /24 of its own: both tables fill, the rest share one bucket.
    let (passed, offered, tiers) =
        flood_with_probe(&mut rate, t0, 100_000, true, trunk, SourceClass::Privileged);
    assert_eq!(passed, offered, "the trunk is never refused");
    assert_eq!(tiers, vec![Tier::Privileged; 10]);
    // While an unprivileged newcomer shares the flood's bucket.
    let now = t0 + Duration::from_millis(9_999);
    let refused = (0..10)
        .filter(|i| rate.check(now, ip(&format!("198.51.{i}.1")), SourceClass::Other).is_err())
        .count();
    assert!(refused >= 8, "{refused} of 10 refused");
}

#[test]
fn a_full_privileged_table_evicts_rather_than_shares() {
    let t0 = Instant::now();
    let mut rate = PerSourceRate::new(per_second(2), 10, t0);
    // A flood spoofing addresses inside a trusted range fills the privileged table.
    for n in 0..1_000 {
        let _ = rate.check(t0, spoofed(n, false), SourceClass::Privileged);
        assert!(rate.len() <= 10);
    }
    // The real trunk in that range still gets a bucket of its own, and keeps it.
    let trunk = ip("10.200.0.1");
    assert!(rate.check(t0, trunk, SourceClass::Privileged).is_ok());
    assert!(rate.check(t0, trunk, SourceClass::Privileged).is_ok());
    assert!(rate.check(t0, trunk, SourceClass::Privileged).is_err(), "held to its own rate");
}

#[test]
fn the_tables_empty_once_the_flood_is_over() {
    let t0 = Instant::now();
    let mut rate = PerSourceRate::new(per_second(2), 50, t0);
    for n in 0..10_000 {
        let _ = rate.check(t0, spoofed(n, true), SourceClass::Other);
    }
    assert_eq!(rate.len(), 100);
    let later = t0 + Duration::from_secs(30);
    assert!(rate.check(later, ip("192.0.2.1"), SourceClass::Other).is_ok());
    assert_eq!(rate.len(), 1, "swept");
}

#[test]
fn networks_are_ipv4_slash_24_and_ipv6_slash_56() {
    assert_eq!(prefix(ip("192.0.2.77")), ip("192.0.2.0"));
    assert_eq!(prefix(ip("2001:db8:1:2345:6789::1")), ip("2001:db8:1:2300::"));
}
