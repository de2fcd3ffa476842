//! The replay window of RFC 3711 §3.3.2: the highest index seen and a bitmask of the 64
//! indices below it.

/// Width of the window, in packets.
pub(super) const WINDOW: u64 = 64;

#[derive(Debug, Clone, Copy, Default)]
pub(super) struct ReplayWindow {
    /// Highest authenticated index, once one was.
    highest: Option<u64>,
    /// Bit `n` set: index `highest - n` was seen.
    seen: u64,
}

impl ReplayWindow {
    /// Whether `index` may be accepted (not seen, not older than the window).
    pub fn check(&self, index: u64) -> bool {
        match self.highest {
            None => true,
            Some(high) if index > high => true,
            Some(high) => {
                let behind = high - index;
                behind < WINDOW && self.seen & (1 << behind) == 0
            }
        }
    }

    /// Records `index` as seen; call only after its packet authenticated.
    pub fn accept(&mut self, index: u64) {
        match self.highest {
            None => {
                self.highest = Some(index);
                self.seen = 1;
            }
            Some(high) if index > high => {
                let ahead = index - high;
                self.seen = if ahead >= WINDOW { 0 } else { self.seen << ahead };
                self.seen |= 1;
                self.highest = Some(index);
            }
            Some(high) => {
                let behind = high - index;
                if behind < WINDOW {
                    self.seen |= 1 << behind;
                }
            }
        }
    }
}
