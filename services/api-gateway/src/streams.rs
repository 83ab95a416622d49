//! The events streams open on this API replica, counted against
//! `EVENTS_STREAMS_PER_TOKEN` and `EVENTS_STREAMS_TOTAL` (a leaf: the state
//! holds it, the events route takes places from it).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The open streams of one API replica, by token (its hash) and in all.
/// A stream holds a [`StreamSlot`]; dropping it (the stream ended or the
/// client went away) gives the place back.
#[derive(Debug, Default)]
pub struct StreamSlots {
    open: Mutex<OpenStreams>,
}

#[derive(Debug, Default)]
struct OpenStreams {
    total: usize,
    by_token: HashMap<Vec<u8>, usize>,
}

impl StreamSlots {
    /// A place for one more stream of `token`, or `None` past a cap.
    pub fn acquire(self: &Arc<Self>, token: Vec<u8>, per_token: usize, total: usize) -> Option<StreamSlot> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let mine = open.by_token.get(&token).copied().unwrap_or(0);
        if open.total >= total || mine >= per_token {
            return None;
        }
        open.total += 1;
        open.by_token.insert(token.clone(), mine + 1);
        Some(StreamSlot {
            slots: Arc::clone(self),
            token,
        })
    }
}

/// One open stream's place, given back on drop.
pub struct StreamSlot {
    slots: Arc<StreamSlots>,
    token: Vec<u8>,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.slots.open.lock().unwrap_or_else(|p| p.into_inner());
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.by_token.get_mut(&self.token) {
            *n -= 1;
            if *n == 0 {
                open.by_token.remove(&self.token);
            }
        }
    }
}
