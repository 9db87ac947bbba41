//! Tables an earlier version created, brought to this version's design in place: what
//! `init-warehouse` changes without asking, because it keeps every row as it is.

use super::super::connection::{ConnectError, TdsClient};
use super::super::statement::REJECTS_TABLE;

/// The rejects' hub columns, which an earlier version's table lacks, as the DDL declares them.
const HUB_COLUMNS: [(&str, &str); 2] = [
    ("event_hub_namespace", "varchar(256) NULL"),
    ("event_hub_name", "varchar(256) NULL"),
];

/// A rejects table of an earlier version (keyed on partition and sequence number alone) gets the
/// hub's columns: nullable, so its rows stay as they are ("ALTER TABLE (Transact-SQL)" adds
/// columns on every engine the writer serves). Says what it added, if anything.
pub async fn rejects_keyed_on_hub(client: &mut TdsClient) -> Result<Option<String>, ConnectError> {
    let mut added = Vec::new();
    for (column, definition) in HUB_COLUMNS {
        let has = format!(
            "SELECT CAST(COUNT(*) AS int) FROM sys.columns WHERE object_id = OBJECT_ID(N'{REJECTS_TABLE}') AND name = N'{column}'"
        );
        let row = client.simple_query(has).await?.into_row().await?;
        if row.and_then(|row| row.get::<i32, _>(0)) == Some(0) {
            let alter = format!("ALTER TABLE {REJECTS_TABLE} ADD [{column}] {definition};");
            client.simple_query(alter).await?.into_results().await?;
            added.push(column);
        }
    }
    Ok((!added.is_empty()).then(|| {
        format!(
            "Added {} to {REJECTS_TABLE}: rejects are now told apart by their hub too, so a recreated or a second hub's poison events are stored (rejects stored earlier keep NULL there).",
            added.join(" and ")
        )
    }))
}
