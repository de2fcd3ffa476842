//! What the transaction layer may hold: a count of live transactions and a byte budget
//! for the messages they keep (the request, the last response sent, the ACK sent), so a
//! flood of large requests cannot hold gigabytes while staying under the count.
//!
//! Past either bound, new server transactions get a stateless 503 (no state is kept for
//! them) and new client transactions fail with `TransactionError::Overloaded` or
//! `OverBudget`; each
//! refusal counts in `sip_transactions_rejected_total{reason="count"|"bytes"}`.
//! Transactions already live may always answer and retransmit.

use std::fmt::{self, Write};

/// Default cap on live transactions. At the default `max_stored_bytes` the byte budget
/// is reached first for any request larger than about 600 bytes.
pub const DEFAULT_MAX_TRANSACTIONS: usize = 100_000;

/// Default byte budget: 64 MiB of wire bytes. Parsed messages and the indexes cost about
/// three times their wire size on the heap, so the layer stays well under 256 MiB; at 50
/// new calls a second, each INVITE transaction (about 4 kB with its 200) lives 32 s, which
/// needs under 7 MiB.
pub const DEFAULT_MAX_STORED_BYTES: usize = 64 * 1024 * 1024;

/// Charged per transaction on top of its messages: ids, keys, timers and map entries.
pub const PER_TRANSACTION_BYTES: usize = 512;

/// The transaction layer's bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransactionLimits {
    pub max_transactions: usize,
    pub max_stored_bytes: usize,
}

impl Default for TransactionLimits {
    fn default() -> Self {
        TransactionLimits {
            max_transactions: DEFAULT_MAX_TRANSACTIONS,
            max_stored_bytes: DEFAULT_MAX_STORED_BYTES,
        }
    }
}

/// Which bound refused a new transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Bound {
    Count,
    Bytes,
}

impl Bound {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Bound::Count => "count",
            Bound::Bytes => "bytes",
        }
    }
}

/// Counts the bytes a value's `Display` writes, without keeping them.
struct Counter(usize);

impl Write for Counter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0 += s.len();
        Ok(())
    }
}

/// The wire size of a message (its `Display` form), computed without allocating.
pub(super) fn wire_size(message: &impl fmt::Display) -> usize {
    let mut counter = Counter(0);
    let _ = write!(counter, "{message}");
    counter.0
}

/// What a transaction holding these messages is charged.
pub(super) fn charge(
    request: &rsip::Request,
    response: Option<&rsip::Response>,
    ack: Option<&rsip::Request>,
) -> usize {
    PER_TRANSACTION_BYTES
        + wire_size(request)
        + response.map_or(0, wire_size)
        + ack.map_or(0, wire_size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_size_matches_the_serialised_form() {
        let text = "OPTIONS sip:a@192.0.2.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.2;branch=z9hG4bK1\r\n\
                    Content-Length: 5\r\n\r\nhello";
        let request = rsip::Request::try_from(text).expect("request");
        assert_eq!(wire_size(&request), request.to_string().len());
        assert_eq!(charge(&request, None, None), PER_TRANSACTION_BYTES + request.to_string().len());
    }
}
