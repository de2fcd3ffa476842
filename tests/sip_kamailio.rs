//! Calls through Kamailio (dispatcher, Record-Route): in-dialog requests from both sides
//! follow the route set.

mod common;

use common::kamailio::Kamailio;
use std::net::SocketAddr;
use std::time::Duration;

use common::{next_summary, sipp, start, test_config, wait_for_line};
use zendesk_ivr::sip::dialog::EndReason;

#[tokio::test(flavor = "multi_thread")]
async fn call_through_kamailio_caller_hangs_up() {
    let server = start(test_config()).await;
    let mut ended = server.subscribe();
    let proxy = Kamailio::start(&[server.sip_addr()]).await;
    let run = sipp("uac_bye.xml", proxy.addr, "u1", &[]).await;
    run.assert_ok();
    assert!(
        run.count_received("SIP/2.0 200", "Record-Route:") >= 1,
        "the 200 echoes Kamailio's Record-Route:\n{}",
        run.messages
    );
    let summary = next_summary(&mut ended).await;
    assert_eq!(summary.end, Some(EndReason::RemoteBye), "{summary:?}");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn endpoint_bye_follows_the_route_set() {
    let mut config = test_config();
    config.sip.max_call_s = 1;
    let server = start(config).await;
    let mut ended = server.subscribe();
    let proxy = Kamailio::start(&[server.sip_addr()]).await;
    let run = sipp("uac_remote_bye.xml", proxy.addr, "u1", &[]).await;
    run.assert_ok();
    let via_proxy = format!("Via: SIP/2.0/UDP {}", proxy.addr);
    assert_eq!(
        run.count_received("BYE ", &via_proxy),
        1,
        "our BYE reached the caller through Kamailio:\n{}",
        run.messages
    );
    let summary = next_summary(&mut ended).await;
    assert_eq!(summary.end, Some(EndReason::LocalBye), "{summary:?}");
    proxy.stop().await;
}

/// Calls hash over the replicas by Call-ID: a batch of calls reaches both.
#[tokio::test(flavor = "multi_thread")]
async fn calls_are_spread_over_both_replicas() {
    let first = start(test_config()).await;
    let second = start(test_config()).await;
    let mut on_first = first.subscribe();
    let mut on_second = second.subscribe();
    let proxy = Kamailio::start(&[first.sip_addr(), second.sip_addr()]).await;
    // 16 calls: all on one replica by chance would be 1 in 2^15.
    let calls = 16;
    let run = sipp("uac_bye.xml", proxy.addr, "u1", &["-m", &calls.to_string()]).await;
    run.assert_ok();
    let (mut a, mut b) = (0, 0);
    while a + b < calls {
        let summary = tokio::time::timeout(Duration::from_secs(10), async {
            tokio::select! {
                s = on_first.recv() => { a += 1; s }
                s = on_second.recv() => { b += 1; s }
            }
        })
        .await
        .expect("every call ends on a replica")
        .expect("summary");
        assert!(summary.answered, "{summary:?}");
    }
    assert!(a > 0 && b > 0, "calls reached both replicas: {a} and {b}");
    proxy.stop().await;
}

/// A replica killed with SIGKILL stops answering Kamailio's OPTIONS probe; once the probe
/// has marked it down, every new call succeeds on the other replica.
#[tokio::test(flavor = "multi_thread")]
async fn after_a_replica_is_killed_new_calls_succeed_on_the_other() {
    let survivor = start(test_config()).await;
    let mut served = survivor.subscribe();
    let victim_port = common::free_sip_port();
    let victim_addr: SocketAddr = format!("127.0.0.1:{victim_port}").parse().unwrap();
    let mut victim =
        common::run_command(&test_config(), victim_port).spawn().expect("replica runs");
    let mut victim_lines = common::output_lines(&mut victim);
    let mut victim_log = Vec::new();
    let within = Duration::from_secs(20);
    wait_for_line(&mut victim_lines, &mut victim_log, "replica", "SIP endpoint listening", within)
        .await;
    let mut proxy = Kamailio::start(&[victim_addr, survivor.sip_addr()]).await;
    victim.kill().await.expect("SIGKILL the replica");
    let down = format!("replica down: sip:{victim_addr}");
    proxy.wait_for_log(&down, within).await;
    let calls = 8;
    let run = sipp("uac_bye.xml", proxy.addr, "u1", &["-m", &calls.to_string()]).await;
    run.assert_ok();
    for _ in 0..calls {
        let summary = next_summary(&mut served).await;
        assert!(summary.answered, "{summary:?}");
    }
    assert!(
        proxy.log_lines("replica failed:").is_empty(),
        "no call was tried on the dead replica once it was down: {:?}",
        proxy.log_lines("replica failed:")
    );
    proxy.stop().await;
}

/// A draining replica answers Kamailio's probe and new INVITEs with 503: Kamailio asks it,
/// learns it is draining, and sends every new call to the other replica.
#[tokio::test(flavor = "multi_thread")]
async fn a_draining_replica_is_skipped() {
    let draining = start(test_config()).await;
    let serving = start(test_config()).await;
    let mut served = serving.subscribe();
    let mut drained = draining.subscribe();
    let mut proxy = Kamailio::start(&[draining.sip_addr(), serving.sip_addr()]).await;
    assert_eq!(draining.drain(Duration::from_millis(10)).await, 0);
    // The draining replica was asked: its 503 to the OPTIONS probe takes it out.
    let down = format!("replica down: sip:{}", draining.sip_addr());
    proxy.wait_for_log(&down, Duration::from_secs(10)).await;
    let calls = 8;
    let run = sipp("uac_bye.xml", proxy.addr, "u1", &["-m", &calls.to_string()]).await;
    run.assert_ok();
    for _ in 0..calls {
        let summary = next_summary(&mut served).await;
        assert!(summary.answered, "{summary:?}");
    }
    assert!(drained.try_recv().is_err(), "the draining replica took no call");
    proxy.stop().await;
}

/// Calls placed before the probe notices a drain (here the probe is slowed to a minute):
/// the draining replica answers the INVITEs it gets with 503, and Kamailio moves each such
/// call to the other replica.
#[tokio::test(flavor = "multi_thread")]
async fn calls_reaching_a_draining_replica_move_to_the_other() {
    let draining = start(test_config()).await;
    let serving = start(test_config()).await;
    let mut served = serving.subscribe();
    let mut drained = draining.subscribe();
    let replicas = [draining.sip_addr(), serving.sip_addr()];
    let mut proxy = Kamailio::start_with(&replicas, &[("PING_INTERVAL", "60")]).await;
    assert_eq!(draining.drain(Duration::from_millis(10)).await, 0);
    let calls = 16;
    let run = sipp("uac_bye.xml", proxy.addr, "u1", &["-m", &calls.to_string()]).await;
    run.assert_ok();
    for _ in 0..calls {
        let summary = next_summary(&mut served).await;
        assert!(summary.answered, "{summary:?}");
    }
    assert!(drained.try_recv().is_err(), "the draining replica took no call");
    // 16 calls hashed over two replicas: none on the draining one would be 1 in 2^16.
    let asked = proxy.log_lines(&format!("replica failed: sip:{}", draining.sip_addr()));
    assert!(!asked.is_empty(), "Kamailio asked the draining replica, which answered 503");
    proxy.stop().await;
}
