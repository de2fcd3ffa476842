//! The queue of one call's SIP events, from the endpoint task to the call's driver:
//! bounded, with a policy for a peer that floods the call.
//!
//! - INFO (DTMF or anything else) is rate-limited per call: past [`INFO_BURST`] at once
//!   or [`INFO_PER_SECOND`] sustained, INFOs are still answered 200 by the UA core but
//!   their content is dropped and counted. Keypads send at most about 10 digits a second.
//! - Every event waits in a queue of [`CALL_EVENT_QUEUE`]. When it is full, an INFO is
//!   dropped and counted; any other event (media change, progress) means the driver
//!   cannot keep up with the peer (re-INVITEs and UPDATEs have their own rate in the UA
//!   core, `sip::dialog::refresh_rate`, so they rarely get here), and the call is ended
//!   ([`Delivery::Overflow`]): the endpoint hangs it up and closes the queue, which the
//!   driver reads as a failed end.
//!
//! Drops count in `sip_call_events_dropped_total{reason="info_rate"|"queue_full"}` and
//! ended calls in `sip_call_event_overflows_total`.

use std::time::Instant;

use tokio::sync::mpsc;

use crate::sip::dialog::CallEvent;
use crate::sip::rate_budget::RateBudget;

/// Events queued for one call before the policy above applies.
pub const CALL_EVENT_QUEUE: usize = 64;
/// INFOs taken at once from a quiet call.
pub const INFO_BURST: u32 = 20;
/// INFOs taken per second, sustained.
pub const INFO_PER_SECOND: u32 = 20;

/// The driver's end of a call's event queue.
pub type CallEvents = mpsc::Receiver<CallEvent>;

/// What became of one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Queued,
    /// An INFO over its rate, or one that found the queue full.
    Dropped,
    /// Another event found the queue full: end the call.
    Overflow,
    /// The driver is gone.
    Closed,
}

/// The token bucket of one call's INFOs: [`INFO_BURST`], then [`INFO_PER_SECOND`].
pub fn info_budget(now: Instant) -> RateBudget {
    RateBudget::new(now, INFO_BURST, INFO_PER_SECOND)
}

/// The endpoint's end of a call's event queue.
#[derive(Debug)]
pub struct CallEventSender {
    tx: mpsc::Sender<CallEvent>,
    info: RateBudget,
}

impl CallEventSender {
    /// A new queue: the endpoint keeps the sender, the call's driver reads the other end.
    pub fn channel(now: Instant) -> (CallEventSender, CallEvents) {
        let (tx, rx) = mpsc::channel(CALL_EVENT_QUEUE);
        (CallEventSender { tx, info: info_budget(now) }, rx)
    }

    /// Queues `event` under the policy of this module.
    pub fn deliver(&mut self, now: Instant, event: CallEvent) -> Delivery {
        let info = matches!(event, CallEvent::Info { .. });
        if info && !self.info.take(now) {
            metrics::counter!("sip_call_events_dropped_total", "reason" => "info_rate")
                .increment(1);
            return Delivery::Dropped;
        }
        match self.tx.try_send(event) {
            Ok(()) => Delivery::Queued,
            Err(mpsc::error::TrySendError::Full(_)) if info => {
                metrics::counter!("sip_call_events_dropped_total", "reason" => "queue_full")
                    .increment(1);
                Delivery::Dropped
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                metrics::counter!("sip_call_event_overflows_total").increment(1);
                Delivery::Overflow
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Delivery::Closed,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::sip::dialog::CallHandle;

    fn info(call: CallHandle) -> CallEvent {
        CallEvent::Info {
            call,
            content_type: "application/dtmf-relay".into(),
            body: b"Signal=1".to_vec(),
        }
    }

    fn progress(call: CallHandle) -> CallEvent {
        CallEvent::Progress { call, status: 183 }
    }

    #[test]
    fn info_is_held_to_its_burst_and_rate() {
        let t0 = Instant::now();
        let mut budget = info_budget(t0);
        let taken = (0..100).filter(|_| budget.take(t0)).count();
        assert_eq!(taken, INFO_BURST as usize);
        // Ten seconds of a flood at 1000/s: the sustained rate, no more.
        let mut taken = 0;
        for ms in 1..=10_000u64 {
            if budget.take(t0 + Duration::from_millis(ms)) {
                taken += 1;
            }
        }
        assert_eq!(taken, 10 * INFO_PER_SECOND as usize);
        // A quiet call gets its burst back.
        let later = t0 + Duration::from_secs(60);
        assert_eq!((0..100).filter(|_| budget.take(later)).count(), INFO_BURST as usize);
    }

    #[test]
    fn a_full_queue_drops_info_and_overflows_on_other_events() {
        let t0 = Instant::now();
        let (mut tx, mut rx) = CallEventSender::channel(t0);
        let call = CallHandle(1);
        for i in 0..CALL_EVENT_QUEUE {
            // Spread in time so the INFO rate is not what refuses them.
            let now = t0 + Duration::from_secs(i as u64);
            assert_eq!(tx.deliver(now, progress(call)), Delivery::Queued);
        }
        let later = t0 + Duration::from_secs(1000);
        assert_eq!(tx.deliver(later, info(call)), Delivery::Dropped);
        assert_eq!(tx.deliver(later, progress(call)), Delivery::Overflow);
        assert!(rx.try_recv().is_ok());
        assert_eq!(tx.deliver(later, info(call)), Delivery::Queued);
        drop(rx);
        assert_eq!(tx.deliver(later, progress(call)), Delivery::Closed);
    }

    #[test]
    fn an_info_flood_reaches_the_driver_at_the_rate_only() {
        let t0 = Instant::now();
        let (mut tx, mut rx) = CallEventSender::channel(t0);
        let call = CallHandle(1);
        let mut received = 0;
        for ms in 0..5_000u64 {
            tx.deliver(t0 + Duration::from_millis(ms), info(call));
            while rx.try_recv().is_ok() {
                received += 1;
            }
        }
        let most = INFO_BURST as usize + 5 * INFO_PER_SECOND as usize;
        assert!(received <= most && received >= most - 1, "{received}");
    }
}
