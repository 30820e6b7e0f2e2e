//! A map of per-key state (per client address or per account) whose size an attacker cannot
//! grow without bound: idle entries are pruned when the map reaches a size, then again at twice
//! what is left (O(1) per request amortised), and a flood of more live keys than a hard cap is
//! forgotten altogether.

use std::collections::HashMap;

/// Pruning starts at this many entries.
const PRUNE_FIRST: usize = 100_000;
/// More live entries than this are all forgotten.
const HARD_CAP: usize = 1_000_000;

/// Per-key state with bounded memory.
pub(crate) struct KeyedState<V> {
    map: HashMap<String, V>,
    prune_at: usize,
    what: &'static str,
}

impl<V> KeyedState<V> {
    /// An empty map; `what` names it in the log when it overflows.
    pub(crate) fn new(what: &'static str) -> Self {
        Self {
            map: HashMap::new(),
            prune_at: PRUNE_FIRST,
            what,
        }
    }

    /// The state for `key` (made by `make` if absent), after pruning the entries for which
    /// `live` is false when a prune is due.
    pub(crate) fn entry(
        &mut self,
        key: &str,
        live: impl FnMut(&V) -> bool,
        make: impl FnOnce() -> V,
    ) -> &mut V {
        if self.map.len() >= self.prune_at {
            let mut live = live;
            self.map.retain(|_, v| live(v));
            if self.map.len() > HARD_CAP {
                tracing::warn!(map = self.what, "too many live keys; forgetting them");
                self.map.clear();
            }
            self.prune_at = PRUNE_FIRST.max(2 * self.map.len());
        }
        self.map.entry(key.to_string()).or_insert_with(make)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_entries_are_pruned_once_the_map_is_large_and_live_ones_kept() {
        let mut m = KeyedState::<bool>::new("test");
        for i in 0..PRUNE_FIRST {
            // Every tenth entry is live.
            *m.entry(&i.to_string(), |_| true, || false) = i % 10 == 0;
        }
        assert_eq!(m.map.len(), PRUNE_FIRST);
        m.entry("new", |live| *live, || true);
        assert_eq!(m.map.len(), PRUNE_FIRST / 10 + 1, "idle entries went");
        assert_eq!(m.prune_at, PRUNE_FIRST, "next prune at the floor");
        assert!(m.map.contains_key("0") && !m.map.contains_key("1"));
    }
}
