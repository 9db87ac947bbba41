//! Transactions whose writes no reported count has counted yet, by the batch they belong to: every
//! transaction a write sent when the write failed (no reply in time, a connection lost twice, a
//! later part refused) or was cancelled (the host gave up on the invocation). When the same batch
//! comes again (the retry policy redelivers it to the same instance), its first transaction looks
//! them up in the journal, so the counters of the invocation that succeeds say what was written,
//! once: a transaction that rolled back is simply not found.

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

/// A write's transaction ids: the earlier ones still to look up, and every one it sent under.
#[derive(Debug, Default)]
pub struct Ids {
    pub earlier: Vec<String>,
    pub sent_as: Vec<String>,
}

/// The transactions of one write whose counts are not reported yet: the earlier ones it took to
/// look up, and every one it sent. Dropped before [`Unreported::reported`] (the write failed, or
/// the invocation was cancelled mid-write), they go back to [`Unsettled`] for the batch's next
/// delivery to look up.
pub struct Unreported<'a> {
    unsettled: &'a Unsettled,
    fingerprint: u64,
    taken: Vec<String>,
    pub ids: Ids,
    reported: bool,
}

impl<'a> Unreported<'a> {
    /// Takes the batch's unsettled transactions to look up first.
    pub fn take(unsettled: &'a Unsettled, fingerprint: u64) -> Self {
        let taken = unsettled.take(fingerprint);
        Self {
            unsettled,
            fingerprint,
            ids: Ids {
                earlier: taken.clone(),
                sent_as: Vec::new(),
            },
            taken,
            reported: false,
        }
    }

    /// The write's counts are reported: nothing is left to look up.
    pub fn reported(mut self) {
        self.reported = true;
    }
}

impl Drop for Unreported<'_> {
    fn drop(&mut self) {
        if !self.reported {
            let mut ids = std::mem::take(&mut self.taken);
            ids.append(&mut self.ids.sent_as);
            self.unsettled.keep(self.fingerprint, ids);
        }
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
    fn a_write_dropped_before_its_counts_are_reported_leaves_every_id_to_look_up() {
        let unsettled = Unsettled::default();
        unsettled.keep(7, vec!["earlier".into()]);
        {
            let mut write = Unreported::take(&unsettled, 7);
            assert_eq!(write.ids.earlier, ["earlier"]);
            write.ids.earlier.clear();
            write.ids.sent_as.push("sent".into());
        }
        assert_eq!(unsettled.take(7), ["earlier", "sent"], "a cancelled write");
        let mut write = Unreported::take(&unsettled, 7);
        write.ids.sent_as.push("sent".into());
        write.reported();
        assert_eq!(
            unsettled.take(7),
            Vec::<String>::new(),
            "counted once, where reported"
        );
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
