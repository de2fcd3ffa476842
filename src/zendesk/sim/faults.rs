//! Fault injection for the simulator, per endpoint and optionally for the next N requests.
//!
//! Written as `ENDPOINT:KIND[:ARG][@COUNT]`, e.g. `search:latency:3000` (3 s more on every
//! search), `search:429:5@1` (the next search gets 429 with `Retry-After: 5`),
//! `tickets:500@2`, `comments:malformed`, `any:drop@1` (the connection is cut),
//! `tickets:stall@1` (the next ticket request takes effect but is never answered),
//! `tickets:stall:2000` (answers come never within 2 s, then the connection is cut).

use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Which requests a fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Endpoint {
    /// `GET /api/v2/search`
    Search,
    /// `GET|PUT /api/v2/tickets/{id}`, `POST /api/v2/tickets`
    Tickets,
    /// `GET /api/v2/tickets/{id}/comments`
    Comments,
    /// `GET /api/v2/users/{id}`
    Users,
    Any,
}

impl Endpoint {
    pub fn covers(self, other: Endpoint) -> bool {
        self == Endpoint::Any || self == other
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultKind {
    /// Answer this much later (adds up with other latency faults).
    Latency { ms: u64 },
    /// 429 Too Many Requests with `Retry-After: secs`.
    RateLimit { retry_after_s: u64 },
    /// This 5xx status with a Zendesk error body.
    ServerError { status: u16 },
    /// 200 with a body that is not JSON.
    MalformedJson,
    /// Close the connection without an answer.
    Drop,
    /// Carry the request out (a comment is added), then send no answer: hold the
    /// connection open for `ms` milliseconds (`None`: until the client gives up or the
    /// simulator stops) and cut it. Models a write that landed while its response was lost.
    Stall {
        #[serde(default)]
        ms: Option<u64>,
    },
}

impl FaultKind {
    /// Whether the request is still carried out (the fault only hides the answer).
    pub fn applies_request(self) -> bool {
        matches!(self, FaultKind::Stall { .. })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    pub endpoint: Endpoint,
    #[serde(flatten)]
    pub kind: FaultKind,
    /// How many more requests it applies to; `None`: all of them.
    #[serde(default)]
    pub remaining: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad fault {spec:?}: {reason} (want ENDPOINT:KIND[:ARG][@COUNT], e.g. search:429:5@1)")]
pub struct FaultSpecError {
    spec: String,
    reason: &'static str,
}

impl FromStr for Fault {
    type Err = FaultSpecError;

    fn from_str(spec: &str) -> Result<Fault, FaultSpecError> {
        let err = |reason| FaultSpecError { spec: spec.to_string(), reason };
        let (body, remaining) = match spec.trim().split_once('@') {
            Some((body, count)) => {
                (body, Some(count.parse::<u32>().map_err(|_| err("COUNT is not a number"))?))
            }
            None => (spec.trim(), None),
        };
        let mut parts = body.split(':');
        let endpoint = match parts.next().unwrap_or("").to_ascii_lowercase().as_str() {
            "search" => Endpoint::Search,
            "tickets" | "ticket" => Endpoint::Tickets,
            "comments" => Endpoint::Comments,
            "users" | "user" => Endpoint::Users,
            "any" | "all" | "*" => Endpoint::Any,
            _ => return Err(err("unknown endpoint (search, tickets, comments, users, any)")),
        };
        let kind = parts.next().unwrap_or("").to_ascii_lowercase();
        let arg = parts.next();
        if parts.next().is_some() {
            return Err(err("too many parts"));
        }
        let number = |default: Option<u64>| -> Result<u64, FaultSpecError> {
            match arg {
                Some(a) => a.parse().map_err(|_| err("ARG is not a number")),
                None => default.ok_or_else(|| err("ARG is needed")),
            }
        };
        let kind = match kind.as_str() {
            "latency" | "delay" => FaultKind::Latency { ms: number(None)? },
            "429" | "ratelimit" => FaultKind::RateLimit { retry_after_s: number(Some(1))? },
            "500" | "502" | "503" | "504" => {
                FaultKind::ServerError { status: kind.parse().map_err(|_| err("bad status"))? }
            }
            "malformed" => FaultKind::MalformedJson,
            "drop" => FaultKind::Drop,
            "stall" | "hang" => FaultKind::Stall { ms: arg.map(|_| number(None)).transpose()? },
            _ => {
                return Err(err(
                    "unknown kind (latency, 429, 500, 502, 503, 504, malformed, drop, stall)",
                ));
            }
        };
        Ok(Fault { endpoint, kind, remaining })
    }
}

/// What to do with one request, from all the faults that apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Decision {
    pub latency: Duration,
    /// The first non-latency fault, if any.
    pub failure: Option<FaultKind>,
}

/// Applies the active faults to a request to `endpoint`, using up counted ones.
pub fn decide(faults: &mut Vec<Fault>, endpoint: Endpoint) -> Decision {
    let mut decision = Decision::default();
    for fault in faults.iter_mut() {
        if !fault.endpoint.covers(endpoint) || fault.remaining == Some(0) {
            continue;
        }
        let used = match fault.kind {
            FaultKind::Latency { ms } => {
                decision.latency += Duration::from_millis(ms);
                true
            }
            other if decision.failure.is_none() => {
                decision.failure = Some(other);
                true
            }
            _ => false,
        };
        if used && let Some(n) = fault.remaining.as_mut() {
            *n -= 1;
        }
    }
    faults.retain(|f| f.remaining != Some(0));
    decision
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse() {
        assert_eq!(
            "search:429:5@1".parse::<Fault>().unwrap(),
            Fault {
                endpoint: Endpoint::Search,
                kind: FaultKind::RateLimit { retry_after_s: 5 },
                remaining: Some(1)
            }
        );
        assert_eq!(
            "any:latency:3000".parse::<Fault>().unwrap().kind,
            FaultKind::Latency { ms: 3000 }
        );
        assert_eq!(
            "tickets:500".parse::<Fault>().unwrap().kind,
            FaultKind::ServerError { status: 500 }
        );
        assert_eq!("comments:drop@2".parse::<Fault>().unwrap().remaining, Some(2));
        assert_eq!(
            "tickets:stall@1".parse::<Fault>().unwrap(),
            Fault {
                endpoint: Endpoint::Tickets,
                kind: FaultKind::Stall { ms: None },
                remaining: Some(1)
            }
        );
        assert_eq!(
            "tickets:stall:250".parse::<Fault>().unwrap().kind,
            FaultKind::Stall { ms: Some(250) }
        );
        for bad in [
            "",
            "nowhere:500",
            "search:latency",
            "search:418",
            "search:500@x",
            "a:b:c:d",
            "tickets:stall:soon",
        ] {
            assert!(bad.parse::<Fault>().is_err(), "{bad}");
        }
    }

    #[test]
    fn counted_faults_run_out_and_latency_adds_up() {
        let mut faults: Vec<Fault> = ["search:500@1", "any:latency:10", "search:latency:5@1"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let first = decide(&mut faults, Endpoint::Search);
        assert_eq!(first.failure, Some(FaultKind::ServerError { status: 500 }));
        assert_eq!(first.latency, Duration::from_millis(15));
        let second = decide(&mut faults, Endpoint::Search);
        assert_eq!(second, Decision { latency: Duration::from_millis(10), failure: None });
        assert_eq!(faults.len(), 1);
        let other = decide(&mut faults, Endpoint::Comments);
        assert_eq!(other.latency, Duration::from_millis(10));
    }

    #[test]
    fn a_stall_is_a_failure_that_still_applies_the_request() {
        let mut faults: Vec<Fault> =
            ["tickets:stall@1", "tickets:500@1"].iter().map(|s| s.parse().unwrap()).collect();
        let first = decide(&mut faults, Endpoint::Tickets);
        assert_eq!(first.failure, Some(FaultKind::Stall { ms: None }));
        assert!(first.failure.is_some_and(FaultKind::applies_request));
        let second = decide(&mut faults, Endpoint::Tickets);
        assert_eq!(second.failure, Some(FaultKind::ServerError { status: 500 }));
        assert!(!FaultKind::ServerError { status: 500 }.applies_request());
        assert!(!FaultKind::Drop.applies_request());
        assert!(faults.is_empty());
    }

    #[test]
    fn faults_read_from_json() {
        let fault: Fault =
            serde_json::from_str(r#"{"endpoint":"search","kind":"latency","ms":30}"#).unwrap();
        assert_eq!(fault.kind, FaultKind::Latency { ms: 30 });
        assert_eq!(fault.remaining, None);
        let stall: Fault =
            serde_json::from_str(r#"{"endpoint":"tickets","kind":"stall","remaining":1}"#).unwrap();
        assert_eq!(stall.kind, FaultKind::Stall { ms: None });
        let back: Fault = serde_json::from_value(serde_json::to_value(stall).unwrap()).unwrap();
        assert_eq!(back, stall);
    }
}
