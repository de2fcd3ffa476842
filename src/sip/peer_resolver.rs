//! Looks up the peers the endpoint names by host name (runtime layer): queue targets and
//! registrars. Their addresses are admitted when `sip.allow` is set and get rate buckets
//! of their own (see [`crate::sip::admission`]). Looked up at start, before the endpoint
//! serves, and again every interval (the target prober's, `routing.probe_interval_s`,
//! when set); a change goes to the endpoint's admission. The policy for failed or
//! changed look-ups is [`PeerAddresses`]'.

use std::time::Duration;

use tracing::{info, warn};

use crate::config::Config;
use crate::sip::admission::{PeerAddresses, peer_uris};
use crate::sip::endpoint::{Command, EndpointHandle, lookup_target};
use crate::sip::header_text;

/// Re-resolution interval when the target prober is off.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);

/// The peers' URIs whose host is a name (IP literals are admitted from config), one per
/// host name: the addresses depend on the name alone.
pub fn named_peers(config: &Config) -> Vec<String> {
    let mut named: Vec<String> = peer_uris(config)
        .filter(|uri| header_text::ip_host(uri).is_none())
        .map(str::to_string)
        .collect();
    named.sort();
    let mut hosts = std::collections::HashSet::new();
    named.retain(|uri| {
        let host = header_text::host_port(uri).map(|(host, _)| host.to_ascii_lowercase());
        hosts.insert(host.unwrap_or_else(|| uri.clone()))
    });
    named
}

/// Looks every name up once (side by side) and records the answers in `peers`; true
/// when the addresses may have changed.
pub async fn resolve_all(names: &[String], peers: &mut PeerAddresses) -> bool {
    let mut lookups = tokio::task::JoinSet::new();
    for name in names.iter().cloned() {
        lookups.spawn(async move {
            let found = lookup_target(&name).await;
            (name, found)
        });
    }
    let mut changed = false;
    while let Some(joined) = lookups.join_next().await {
        let (name, found) = match joined {
            Ok(answer) => answer,
            Err(err) => {
                warn!(%err, "a peer look-up failed to finish; the others go on");
                continue;
            }
        };
        let addresses = match found {
            Ok(found) => found.map(|all| all.iter().map(|a| a.ip()).collect()),
            Err(err) => {
                warn!(%err, peer = name.as_str(), "cannot resolve a peer; its last addresses stay allowed");
                None
            }
        };
        if peers.update(&name, addresses) {
            info!(peer = name.as_str(), "peer addresses (re)resolved");
            changed = true;
        }
    }
    changed
}

/// Re-resolves `names` every `interval` until the endpoint stops, and hands a changed
/// set to the endpoint.
pub async fn run(
    endpoint: EndpointHandle,
    names: Vec<String>,
    mut peers: PeerAddresses,
    interval: Duration,
) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if endpoint.is_stopped() {
            return;
        }
        if resolve_all(&names, &mut peers).await
            && !endpoint.send(Command::SetResolvedPeers(peers.addresses()))
        {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;

    #[test]
    fn only_peers_named_by_host_name_are_looked_up() {
        let mut config = Config::default();
        config.routing.default_queue = "sip:agent@agents.example.com:5070".into();
        config.routing.priority_queue = "sip:vip@192.0.2.50".into();
        config.routing.queues.insert(
            "sales".into(),
            crate::config::QueueConfig {
                targets: vec!["sip:a@agents.example.com:5070".into(), "sip:b@[2001:db8::1]".into()],
                priority: None,
            },
        );
        assert_eq!(named_peers(&config), vec!["sip:a@agents.example.com:5070"], "one per host");
    }

    #[tokio::test]
    async fn localhost_resolves_and_a_failed_name_keeps_nothing_it_never_had() {
        let names = vec!["sip:agent@localhost:5070".to_string(), "sip:x@nowhere.invalid".into()];
        let mut peers = PeerAddresses::default();
        assert!(resolve_all(&names, &mut peers).await);
        let loopback: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(peers.addresses().contains(&loopback), "{:?}", peers.addresses());
        assert!(peers.addresses().iter().all(|ip| ip.is_loopback()), "{:?}", peers.addresses());
        assert!(!resolve_all(&names, &mut peers).await, "the same answer is no change");
    }
}
