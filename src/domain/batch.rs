//! `map_events`: a batch of event bodies into rows and rejects (`MappedBatch`).

use std::collections::HashSet;

use super::{AssetRow, EventBody, EventCoordinates, Reject};

/// A batch of event bodies turned into rows and rejects, duplicates inside the batch removed.
#[derive(Debug, Default)]
pub struct MappedBatch {
    pub rows: Vec<AssetRow>,
    pub rejects: Vec<Reject>,
    /// Events that repeated an earlier event's `(id, runtime_timestamp)` in the same batch.
    pub duplicates_in_batch: usize,
}

/// Maps every event of a batch; never fails: an event that cannot become a row becomes a reject
/// (its coordinates made [`EventCoordinates`] then only).
pub fn map_events<'a, B: Into<EventBody<'a>>, C: Into<EventCoordinates>>(
    events: impl IntoIterator<Item = (B, C)>,
) -> MappedBatch {
    let events = events.into_iter();
    let mut batch = MappedBatch {
        rows: Vec::with_capacity(events.size_hint().0),
        ..MappedBatch::default()
    };
    for (body, coordinates) in events {
        let body = body.into();
        match body.to_row() {
            Ok(row) => batch.rows.push(row),
            Err(reason) => batch.rejects.push(Reject {
                raw_body: body.into_text(),
                reason,
                coordinates: coordinates.into(),
            }),
        }
    }
    batch.duplicates_in_batch = remove_repeated_keys(&mut batch.rows);
    batch
}

/// Removes each row whose `(id, runtime_timestamp)` an earlier row has, keeping the order, and
/// says how many. The keys are borrowed from the rows (no copy per row), and the set is sized
/// once.
fn remove_repeated_keys(rows: &mut Vec<AssetRow>) -> usize {
    let mut seen = HashSet::with_capacity(rows.len());
    let repeated: Vec<bool> = rows
        .iter()
        .map(|row| !seen.insert((row.id.as_str(), row.runtime_timestamp)))
        .collect();
    let count = repeated.iter().filter(|&&r| r).count();
    if count > 0 {
        let mut repeated = repeated.into_iter();
        rows.retain(|_| !repeated.next().unwrap_or(false));
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    const BITCOIN: &str = r#"{"id":"bitcoin","rank":"1","priceUsd":"28305.0289009148763385","timestamp":1680191532104}"#;

    #[test]
    fn duplicates_inside_a_batch_are_removed_and_counted() {
        let other = BITCOIN.replace("bitcoin", "ethereum");
        let later = BITCOIN.replace("1680191532104", "1680191532105");
        let batch = map_events(
            [BITCOIN, &other, BITCOIN, "garbage", &later]
                .into_iter()
                .map(|b| (b.to_owned(), EventCoordinates::default())),
        );
        assert_eq!(batch.rows.len(), 3);
        assert_eq!(batch.duplicates_in_batch, 1);
        assert_eq!(batch.rejects.len(), 1);
        assert_eq!(batch.rejects[0].raw_body, "garbage");
        assert_eq!(batch.rejects[0].reason.code(), "not_json");
    }

    proptest::proptest! {
        #[test]
        fn the_first_row_of_each_key_is_kept_in_order(
            keys in proptest::collection::vec((0..4u8, 0..3i64), 0..40),
        ) {
            let ms = |at: i64| 1_680_191_532_104 + at;
            let bodies = keys
                .iter()
                .map(|(id, at)| format!(r#"{{"id":"a{id}","timestamp":{}}}"#, ms(*at)));
            let batch = map_events(bodies.map(|b| (b, EventCoordinates::default())));
            let mut seen = std::collections::HashSet::new();
            let first: Vec<(String, i64)> = keys
                .iter()
                .filter(|key| seen.insert(**key))
                .map(|(id, at)| (format!("a{id}"), ms(*at)))
                .collect();
            let rows: Vec<(String, i64)> = batch
                .rows
                .iter()
                .map(|row| (row.id.as_str().to_owned(), row.runtime_timestamp.epoch_ms()))
                .collect();
            proptest::prop_assert_eq!(batch.duplicates_in_batch, keys.len() - first.len());
            proptest::prop_assert_eq!(rows, first);
        }
    }
}
