//! Transferring a call to an agent queue (runtime layer).
//!
//! Two ways, chosen by `transfer.mode`:
//! - **REFER**: we ask the caller's phone to call the target (RFC 3515) and follow the
//!   progress NOTIFYs. A 2xx sipfrag means the caller reached the target: we hang up and
//!   the call counts as transferred. A failure (or no final NOTIFY within
//!   [`REFER_WAIT`]) keeps the caller with us, on hold music. See [`ReferWatch`].
//! - **Bridge**: we call the target ourselves while the caller hears hold music, then
//!   relay RTP between the two legs until either hangs up. See [`bridge`].
//!
//! Requests reach a running call through its control channel, registered by Call-ID in
//! a [`CallRegistry`] once the call is established.

pub mod bridge;

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};

use crate::config::TransferMode;
use crate::sip::refer::{self, TargetError};

/// How long a REFER may go without a final NOTIFY before we give up on it and keep the
/// caller (64·T1 with the default T1, as for a transaction).
pub const REFER_WAIT: Duration = Duration::from_secs(32);

/// Requests queued for one call before more are refused.
pub const CONTROL_QUEUE: usize = 8;

/// A request to a running call.
#[derive(Debug)]
pub enum CallControl {
    /// Transfer the caller to `target` (a SIP URI); the reply says whether the transfer
    /// started (its outcome goes to the call summary).
    Transfer { target: String, reply: oneshot::Sender<Result<(), TransferError>> },
}

/// Why a transfer did not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransferError {
    #[error("no established call with this Call-ID")]
    UnknownCall,
    #[error("a transfer of this call is already in progress")]
    InProgress,
    #[error("the call is busy with other requests")]
    Busy,
    #[error("the call ended")]
    CallEnded,
    #[error(transparent)]
    Target(#[from] TargetError),
}

/// How a transfer attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferResult {
    /// REFER: the caller reached the target. Bridge: the agent answered and was bridged.
    Transferred,
    /// The target (or, for REFER, the caller's phone) refused with this status.
    Refused(u16),
    /// No answer or no final progress in time.
    TimedOut,
    /// The caller hung up before the transfer completed.
    CallerHungUp,
    /// Anything else (no RTP port, an endpoint error, media that cannot be bridged).
    Failed(String),
}

/// One transfer attempt, for the call summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferRecord {
    pub target: String,
    pub mode: TransferMode,
    pub result: TransferResult,
}

impl TransferRecord {
    /// The caller went to the target.
    pub fn succeeded(&self) -> bool {
        self.result == TransferResult::Transferred
    }
}

/// What a REFER in progress should lead to next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReferStep {
    /// Still going (100 Trying, 180 Ringing, ...).
    Wait,
    /// Final: hang up when [`TransferResult::Transferred`], else keep the caller.
    Done(TransferResult),
}

/// Follows one REFER to its end (sans-IO: the deadline is the caller's to watch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferWatch {
    pub target: String,
    pub deadline: tokio::time::Instant,
}

impl ReferWatch {
    /// A NOTIFY sipfrag status, or the REFER's own failure status.
    pub fn progress(&self, status: u16) -> ReferStep {
        match status {
            100..=199 => ReferStep::Wait,
            200..=299 => ReferStep::Done(TransferResult::Transferred),
            _ => ReferStep::Done(TransferResult::Refused(status)),
        }
    }
}

/// Checks a transfer target before anything is sent (the same rule as Refer-To).
pub fn check_target(target: &str) -> Result<(), TransferError> {
    refer::refer_to(target)?;
    Ok(())
}

type Controls = HashMap<String, mpsc::Sender<CallControl>>;

/// The established calls' control channels, by Call-ID; cheap to clone.
#[derive(Clone)]
pub struct CallRegistry {
    calls: watch::Sender<Controls>,
}

impl Default for CallRegistry {
    fn default() -> Self {
        CallRegistry { calls: watch::Sender::new(HashMap::new()) }
    }
}

/// Keeps a call registered; dropping it removes the call (if it is still this one).
pub struct Registration {
    registry: CallRegistry,
    call_id: String,
    control: mpsc::Sender<CallControl>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.registry.calls.send_if_modified(|calls| {
            let ours = calls.get(&self.call_id).is_some_and(|tx| tx.same_channel(&self.control));
            if ours {
                calls.remove(&self.call_id);
            }
            ours
        });
    }
}

impl CallRegistry {
    /// Registers a call's control channel under its Call-ID (a later call with the same
    /// Call-ID replaces it).
    pub fn register(&self, call_id: &str, control: mpsc::Sender<CallControl>) -> Registration {
        self.calls.send_modify(|calls| {
            calls.insert(call_id.to_string(), control.clone());
        });
        Registration { registry: self.clone(), call_id: call_id.to_string(), control }
    }

    /// Call-IDs of the established calls.
    pub fn call_ids(&self) -> Vec<String> {
        self.calls.borrow().keys().cloned().collect()
    }

    /// Waits until a call with this Call-ID is established (bound it with a timeout).
    pub async fn wait_for(&self, call_id: &str) {
        let mut rx = self.calls.subscribe();
        let _ = rx.wait_for(|calls| calls.contains_key(call_id)).await;
    }

    /// Asks the call to transfer the caller to `target`; returns once the call has
    /// started the transfer (or refused to).
    pub async fn transfer(&self, call_id: &str, target: &str) -> Result<(), TransferError> {
        check_target(target)?;
        let control = self.calls.borrow().get(call_id).cloned();
        let control = control.ok_or(TransferError::UnknownCall)?;
        let (reply, answer) = oneshot::channel();
        control
            .try_send(CallControl::Transfer { target: target.trim().to_string(), reply })
            .map_err(|err| match err {
                mpsc::error::TrySendError::Full(_) => TransferError::Busy,
                mpsc::error::TrySendError::Closed(_) => TransferError::CallEnded,
            })?;
        answer.await.map_err(|_| TransferError::CallEnded)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watch() -> ReferWatch {
        ReferWatch { target: "sip:a@b".into(), deadline: tokio::time::Instant::now() }
    }

    #[test]
    fn refer_progress_steps() {
        let w = watch();
        assert_eq!(w.progress(100), ReferStep::Wait);
        assert_eq!(w.progress(180), ReferStep::Wait);
        assert_eq!(w.progress(200), ReferStep::Done(TransferResult::Transferred));
        assert_eq!(w.progress(202), ReferStep::Done(TransferResult::Transferred));
        assert_eq!(w.progress(486), ReferStep::Done(TransferResult::Refused(486)));
        assert_eq!(w.progress(603), ReferStep::Done(TransferResult::Refused(603)));
    }

    #[tokio::test]
    async fn registry_routes_by_call_id_and_forgets_ended_calls() {
        let registry = CallRegistry::default();
        assert_eq!(
            registry.transfer("nope", "sip:agent@127.0.0.1").await,
            Err(TransferError::UnknownCall)
        );
        assert!(matches!(
            registry.transfer("nope", "http://x").await,
            Err(TransferError::Target(TargetError::Scheme))
        ));
        let (tx, mut rx) = mpsc::channel(CONTROL_QUEUE);
        let registration = registry.register("abc@host", tx);
        registry.wait_for("abc@host").await;
        let asker = {
            let registry = registry.clone();
            tokio::spawn(async move { registry.transfer("abc@host", " sip:q@10.0.0.1 ").await })
        };
        let Some(CallControl::Transfer { target, reply }) = rx.recv().await else {
            panic!("no request")
        };
        assert_eq!(target, "sip:q@10.0.0.1");
        reply.send(Err(TransferError::InProgress)).unwrap();
        assert_eq!(asker.await.unwrap(), Err(TransferError::InProgress));

        // A newer call with the same Call-ID is not removed by the older one's end.
        let (tx2, _rx2) = mpsc::channel(CONTROL_QUEUE);
        let newer = registry.register("abc@host", tx2);
        drop(registration);
        assert_eq!(registry.call_ids(), vec!["abc@host".to_string()]);
        drop(newer);
        assert!(registry.call_ids().is_empty());
    }
}
