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

/// Maps every event of a batch; never fails: an event that cannot become a row becomes a reject.
pub fn map_events<'a, B: Into<EventBody<'a>>>(
    events: impl IntoIterator<Item = (B, EventCoordinates)>,
) -> MappedBatch {
    let events = events.into_iter();
    let mut batch = MappedBatch {
        rows: Vec::with_capacity(events.size_hint().0),
        ..MappedBatch::default()
    };
    let mut seen = HashSet::with_capacity(events.size_hint().0);
    for (body, coordinates) in events {
        let body = body.into();
        match body.to_row() {
            Ok(row) => {
                if seen.insert((row.id.clone(), row.runtime_timestamp)) {
                    batch.rows.push(row);
                } else {
                    batch.duplicates_in_batch += 1;
                }
            }
            Err(reason) => batch.rejects.push(Reject {
                raw_body: body.into_text(),
                reason,
                coordinates,
            }),
        }
    }
    batch
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
}
