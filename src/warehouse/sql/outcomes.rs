//! Transactions whose writes no answer has counted yet, by the batch they belong to: those whose
//! outcome is unknown (no reply in time, a connection lost twice) and those that committed in a
//! write that failed later. When the same batch comes again (the retry policy redelivers it to
//! the same instance), its first transaction looks them up in the journal, so the counters of
//! the invocation that succeeds say what was written, once.

use std::collections::VecDeque;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;

use crate::warehouse::Batch;

/// Batches remembered at most; the oldest is forgotten first (its batch went elsewhere).
const BATCHES: usize = 64;

#[derive(Default)]
pub struct Unsettled(Mutex<VecDeque<(u64, Vec<String>)>>);

impl Unsettled {
    /// The transactions to look up before writing the batch of `fingerprint`.
    pub fn take(&self, fingerprint: u64) -> Vec<String> {
        let mut batches = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match batches.iter().position(|(f, _)| *f == fingerprint) {
            Some(at) => batches.remove(at).map(|(_, ids)| ids).unwrap_or_default(),
            None => Vec::new(),
        }
    }

    /// Keeps `ids` to look up when the batch of `fingerprint` comes again.
    pub fn keep(&self, fingerprint: u64, ids: Vec<String>) {
        if ids.is_empty() {
            return;
        }
        let mut batches = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if batches.len() == BATCHES {
            batches.pop_front();
        }
        batches.push_back((fingerprint, ids));
    }
}

/// What makes a batch the same batch again: its rows' keys and its rejects' coordinates, in order.
pub fn fingerprint(batch: &Batch) -> u64 {
    let mut hasher = DefaultHasher::new();
    for row in &batch.rows {
        row.id.as_str().hash(&mut hasher);
        row.runtime_timestamp.epoch_ms().hash(&mut hasher);
    }
    for reject in &batch.rejects {
        let at = &reject.coordinates;
        (at.partition_id.as_deref(), at.sequence_number).hash(&mut hasher);
        (at.namespace.as_deref(), at.event_hub.as_deref()).hash(&mut hasher);
        reject.raw_body.len().hash(&mut hasher);
    }
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_given_back_once_for_their_batch_and_the_oldest_forgotten_first() {
        let unsettled = Unsettled::default();
        unsettled.keep(1, vec!["a".into()]);
        unsettled.keep(2, Vec::new());
        assert_eq!(unsettled.take(2), Vec::<String>::new(), "nothing kept");
        assert_eq!(unsettled.take(1), ["a"]);
        assert_eq!(unsettled.take(1), Vec::<String>::new(), "given once");
        for batch in 0..=BATCHES as u64 {
            unsettled.keep(batch, vec![batch.to_string()]);
        }
        assert_eq!(unsettled.take(0), Vec::<String>::new(), "forgotten");
        assert_eq!(unsettled.take(BATCHES as u64), [BATCHES.to_string()]);
    }

    #[test]
    fn the_same_batch_has_the_same_fingerprint_and_another_batch_another() {
        let batch = |ids: &[&str]| {
            let bodies = ids
                .iter()
                .map(|id| format!(r#"{{"id":"{id}","timestamp":1747000000000}}"#));
            let mapped = crate::domain::map_events(
                bodies.map(|b| (b, crate::domain::EventCoordinates::default())),
            );
            Batch {
                rows: mapped.rows,
                rejects: mapped.rejects,
            }
        };
        assert_eq!(
            fingerprint(&batch(&["a", "b"])),
            fingerprint(&batch(&["a", "b"]))
        );
        assert_ne!(
            fingerprint(&batch(&["a", "b"])),
            fingerprint(&batch(&["a", "c"]))
        );
    }
}
