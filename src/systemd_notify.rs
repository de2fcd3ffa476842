//! Tells systemd (a `Type=notify` unit) where the service is: ready once the SIP and
//! admin listeners are bound, stopping when the drain starts. Without `$NOTIFY_SOCKET`
//! (not run by systemd) this does nothing.

use sd_notify::NotifyState;

/// `READY=1` with a status line.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// `STOPPING=1` with a status line.
pub fn stopping(status: &str) {
    send(&[NotifyState::Stopping, NotifyState::Status(status)]);
}

fn send(states: &[NotifyState]) {
    if let Err(err) = sd_notify::notify(states) {
        tracing::warn!(%err, "cannot notify the service manager (NOTIFY_SOCKET)");
    }
}
