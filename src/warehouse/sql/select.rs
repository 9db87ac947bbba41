//! One row or reject as a `SELECT` of cast literals (with and without column aliases, and its
//! key), and what it costs against the statement limits; the reject body as stored is `body.rs`'s.
//! Pure; [`super::statement`] joins these into statements and transactions.

use std::sync::LazyLock;

use chrono::{DateTime, Datelike, Utc};

use super::body::{BodyForm, prefix_units, stored_body};
use super::keys::{KeyTypes, RejectKey, SHORT_TEXT};
use super::literal;
use crate::domain::{AssetRow, Reject, WarehouseTime};
use crate::text::Millis;
use crate::warehouse::columns::{HISTORY_COLUMNS, Kind, Value};

/// One rendered `SELECT` of a union, with what it costs against the limits.
pub(super) struct Rendered {
    /// The row's `SELECT` (written with column aliases when first of a chunk).
    pub(super) select: Select,
    /// `SELECT <key columns>` for the count of keys already stored.
    pub(super) key: Select,
    pub(super) literals: usize,
    /// The row's `runtime_timestamp` (the probe's lower bound is the chunk's earliest).
    pub(super) at: Option<WarehouseTime>,
}

/// The most columns a `SELECT` holds (the history table has 13, and the row's place in its batch
/// when the database picks one row per key; the rejects table 10).
const MAX_COLUMNS: usize = 16;
const _: () = assert!(HISTORY_COLUMNS.len() < MAX_COLUMNS);

/// A `SELECT` of `CAST(<literal> AS <type>)` columns, rendered once without aliases; where each
/// column ends, and the aliases (the same for every row of a table, so only referred to), so
/// the aliased form (only the first of a chunk needs it) is written from it. Small: a batch
/// holds a thousand.
pub(super) struct Select {
    bare: String,
    ends: [u32; MAX_COLUMNS],
    aliases: &'static [&'static str],
    columns: usize,
    /// What the aliases add: ` AS <alias>` per column.
    alias_bytes: usize,
}

impl Select {
    /// A `SELECT` of columns named `aliases`, in that order.
    fn with_capacity(bytes: usize, aliases: &'static [&'static str]) -> Self {
        let mut bare = String::with_capacity(bytes);
        bare.push_str("SELECT ");
        Self {
            bare,
            ends: [0; MAX_COLUMNS],
            aliases,
            columns: 0,
            alias_bytes: aliases.iter().map(|alias| " AS ".len() + alias.len()).sum(),
        }
    }

    /// Without column aliases.
    pub(super) fn bare(&self) -> &str {
        &self.bare
    }

    /// The length of the aliased form.
    pub(super) fn aliased_len(&self) -> usize {
        self.bare.len() + self.alias_bytes
    }

    /// Appends the form with column aliases to `out`.
    pub(super) fn write_aliased(&self, out: &mut String) {
        let mut from = 0;
        for (&end, alias) in self.ends[..self.columns].iter().zip(self.aliases) {
            let end = end as usize;
            out.push_str(&self.bare[from..end]);
            out.push_str(" AS ");
            out.push_str(alias);
            from = end;
        }
        out.push_str(&self.bare[from..]);
    }

    /// Starts a column: the separator, and where its value begins.
    fn open(&mut self) -> usize {
        if self.columns > 0 {
            self.bare.push_str(", ");
        }
        self.bare.len()
    }

    /// Ends the column opened last, which is `alias` (the next of the aliases).
    fn close(&mut self, alias: &'static str) {
        debug_assert_eq!(self.aliases.get(self.columns), Some(&alias));
        // A select of four gigabytes does not fit a statement (16 MiB at most).
        self.ends[self.columns] = u32::try_from(self.bare.len()).unwrap_or(u32::MAX);
        self.columns += 1;
    }

    /// A column whose value is already rendered.
    fn column(&mut self, value: &str, alias: &'static str) {
        self.open();
        self.bare.push_str(value);
        self.close(alias);
    }
}

/// Builds a row's or reject's [`Select`] (and a row's key), rendering each literal once,
/// straight into the select's text.
struct SelectBuilder {
    select: Select,
    literals: usize,
}

impl SelectBuilder {
    fn with_capacity(bytes: usize, aliases: &'static [&'static str]) -> Self {
        Self {
            select: Select::with_capacity(bytes, aliases),
            literals: 0,
        }
    }

    /// Adds one column's value under `alias`, cast by `CAST(<value>` and `cast` (` AS <type>)`),
    /// here and (for a key column) in `key` too, rendering it once.
    fn value(
        &mut self,
        key: Option<&mut SelectBuilder>,
        value: Value<'_>,
        cast: &str,
        alias: &'static str,
    ) {
        let start = self.select.open();
        let out = &mut self.select.bare;
        let literals = match value {
            // `CAST('...' AS <the column's time type>)` already.
            Value::Time(at) => {
                literal::time(out, at, cast);
                1
            }
            value => {
                out.push_str("CAST(");
                let literals = match value {
                    Value::Text(Some(text)) => {
                        literal::nstring(out, text);
                        1
                    }
                    Value::BigInt(Some(n)) => {
                        literal::integer(out, n);
                        0
                    }
                    Value::Float(Some(x)) => {
                        literal::float(out, x);
                        0
                    }
                    _ => {
                        out.push_str("NULL");
                        0
                    }
                };
                out.push_str(cast);
                literals
            }
        };
        self.select.close(alias);
        self.literals += literals;
        if let Some(key) = key {
            key.select.column(&self.select.bare[start..], alias);
            key.literals += literals;
        }
    }

    fn text(&mut self, value: Option<&str>, cast: &str, alias: &'static str) {
        self.value(None, Value::Text(value), cast, alias);
    }
}

fn cast(value: &str, sql_type: &str) -> String {
    format!("CAST({value} AS {sql_type})")
}

/// `CAST('...' AS datetime2(3))`, or NULL outside datetime2's years.
pub(super) fn datetime2(at: DateTime<Utc>) -> String {
    if (1..=9999).contains(&at.year()) {
        cast(&format!("'{}'", Millis(at)), "datetime2(3)")
    } else {
        cast("NULL", "datetime2(3)")
    }
}

/// The names of [`HISTORY_COLUMNS`], and of its key columns, in its order; then the same with
/// the row's place in its batch ([`ORDINAL`]).
static HISTORY_ALIASES: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| HISTORY_COLUMNS.iter().map(|column| column.name).collect());
static ORDERED_ALIASES: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    let mut aliases = HISTORY_ALIASES.clone();
    aliases.push(ORDINAL);
    aliases
});
/// The column that orders rows when the database picks one row per key: the first one wins.
pub(super) const ORDINAL: &str = "ordinal";
static KEY_ALIASES: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    HISTORY_COLUMNS
        .iter()
        .filter(|column| column.key)
        .map(|column| column.name)
        .collect()
});

/// The rejects table's columns, in the order a reject's `SELECT` holds them.
pub(super) const REJECT_ALIASES: [&str; 10] = [
    "received_at",
    "reason_code",
    "reason",
    "raw_body",
    "partition_id",
    "event_offset",
    "sequence_number",
    "enqueued_time",
    "event_hub_namespace",
    "event_hub_name",
];

/// A reject's key, in the order its `SELECT` holds them: where the event sat, in which hub.
pub(super) const REJECT_KEY_ALIASES: [&str; 5] = [
    "partition_id",
    "sequence_number",
    "enqueued_time",
    "event_hub_namespace",
    "event_hub_name",
];

/// ` AS <type>)` for each of [`HISTORY_COLUMNS`], in its order.
static HISTORY_CASTS: LazyLock<Vec<String>> = LazyLock::new(|| {
    HISTORY_COLUMNS
        .iter()
        .map(|column| format!(" AS {})", column.kind.sql_type()))
        .collect()
});

/// One history row as a `SELECT` of its columns in [`HISTORY_COLUMNS`]' order (the key columns
/// cast to the table's own types), and its key; with `ordinal`, also its place in the batch.
pub(super) fn render_row(row: &AssetRow, keys: &KeyTypes, ordinal: Option<usize>) -> Rendered {
    let aliases = match ordinal {
        Some(_) => &ORDERED_ALIASES,
        None => &HISTORY_ALIASES,
    };
    let mut select = SelectBuilder::with_capacity(640, aliases);
    let mut key = SelectBuilder::with_capacity(128, &KEY_ALIASES);
    for (column, cast) in HISTORY_COLUMNS.iter().zip(HISTORY_CASTS.iter()) {
        let cast = match column.kind {
            Kind::Text if column.key => &keys.id.cast,
            Kind::Time => keys.time_cast(),
            _ => cast,
        };
        let also = column.key.then_some(&mut key);
        select.value(also, (column.value)(row), cast, column.name);
    }
    if let Some(ordinal) = ordinal {
        let place = i64::try_from(ordinal).unwrap_or(i64::MAX);
        select.value(None, Value::BigInt(Some(place)), " AS bigint)", ORDINAL);
    }
    Rendered {
        literals: select.literals + key.literals,
        select: select.select,
        key: key.select,
        at: Some(row.runtime_timestamp),
    }
}

/// The `reason` column is `nvarchar(4000)`.
const REASON_UNITS: usize = 4000;

pub(super) fn render_reject(
    reject: &Reject,
    received_at: &str,
    max_body_units: usize,
    form: BodyForm<'_>,
) -> Rendered {
    let (body, note) = stored_body(&reject.raw_body, max_body_units, form);
    let mut reason = reject.reason.to_string();
    if !note.is_empty() {
        // The note must survive the column's length: the reason's own text gives way.
        let room = REASON_UNITS.saturating_sub(note.encode_utf16().count());
        let keep = prefix_units(&reason, room).0.len();
        reason.truncate(keep);
        reason.push_str(&note);
    }
    let mut select = SelectBuilder::with_capacity(256 + 4 * body.len(), &REJECT_ALIASES);
    let mut key = SelectBuilder::with_capacity(256, &REJECT_KEY_ALIASES);
    let at = RejectKey::of(&reject.coordinates);
    select.select.column(received_at, "received_at");
    select.literals += 1;
    select.text(
        Some(reject.reason.code()),
        " AS varchar(32))",
        "reason_code",
    );
    select.text(Some(&reason), " AS nvarchar(4000))", "reason");
    select.text(Some(&body), " AS nvarchar(max))", "raw_body");
    select.value(
        Some(&mut key),
        Value::Text(at.partition_id),
        " AS varchar(64))",
        "partition_id",
    );
    let offset = reject.coordinates.offset.as_deref();
    select.text(
        offset.filter(|o| o.chars().count() <= SHORT_TEXT),
        " AS varchar(64))",
        "event_offset",
    );
    select.value(
        Some(&mut key),
        Value::BigInt(at.sequence_number),
        " AS bigint)",
        "sequence_number",
    );
    let enqueued = at
        .enqueued_time
        .map_or_else(|| cast("NULL", "datetime2(3)"), datetime2);
    select.select.column(&enqueued, "enqueued_time");
    key.select.column(&enqueued, "enqueued_time");
    let dated = usize::from(at.enqueued_time.is_some());
    select.literals += dated;
    key.literals += dated;
    select.value(
        Some(&mut key),
        Value::Text(at.namespace),
        " AS varchar(256))",
        "event_hub_namespace",
    );
    select.value(
        Some(&mut key),
        Value::Text(at.event_hub),
        " AS varchar(256))",
        "event_hub_name",
    );
    Rendered {
        literals: select.literals + key.literals,
        select: select.select,
        key: key.select,
        at: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{EventCoordinates, RejectReason};

    fn aliased_text(select: &Select) -> String {
        let mut out = String::new();
        select.write_aliased(&mut out);
        out
    }

    fn reject(reason: RejectReason, body: &str) -> Reject {
        Reject {
            raw_body: body.to_owned(),
            reason,
            coordinates: EventCoordinates::default(),
        }
    }

    #[test]
    fn an_escaped_body_s_note_survives_a_huge_reason() {
        let reason = RejectReason::NotJson("y".repeat(5000));
        let form = BodyForm::Escaped {
            all: true,
            why: "the server said no",
        };
        let rendered = render_reject(
            &reject(reason, "z\0"),
            "CAST(NULL AS datetime2(3))",
            100,
            form,
        );
        let aliased = aliased_text(&rendered.select);
        assert!(
            aliased.contains(r#"CAST(N'"z\u0000"' AS nvarchar(max)) AS raw_body"#),
            "{aliased}"
        );
        assert!(aliased.contains("JSON-decode it to get the body]' AS nvarchar(4000)) AS reason"));
    }

    #[test]
    fn a_huge_reason_gives_way_to_the_truncation_note() {
        let reason = RejectReason::NotJson("y".repeat(5000));
        let rendered = render_reject(
            &reject(reason, &"z".repeat(200)),
            "CAST(NULL AS datetime2(3))",
            100,
            BodyForm::AsReceived,
        );
        let aliased = aliased_text(&rendered.select);
        let text = aliased
            .split("CAST(N'")
            .find(|s| s.contains("AS nvarchar(4000)) AS reason"))
            .unwrap()
            .split("' AS nvarchar(4000)")
            .next()
            .unwrap();
        assert_eq!(text.encode_utf16().count(), 4000, "cut to the column");
        assert!(text.starts_with("not_json: yyy"), "the code leads");
        assert!(
            text.ends_with(']') && text.contains("raw_body truncated: its first 100 of 200"),
            "{text}"
        );
    }

    #[test]
    fn a_row_renders_every_listed_column_once_and_its_key() {
        let body = r#"{"id":"btc","rank":"1","priceUsd":"2","timestamp":1680191532104}"#;
        let row = AssetRow::from_event_body(body).unwrap();
        let rendered = render_row(&row, &KeyTypes::default(), None);
        // No value here holds ", ": split the select into its columns and read their aliases.
        let aliased = aliased_text(&rendered.select);
        let aliases: Vec<&str> = aliased
            .strip_prefix("SELECT ")
            .unwrap()
            .split(", ")
            .map(|column| column.rsplit(" AS ").next().unwrap())
            .collect();
        let listed: Vec<&str> = HISTORY_COLUMNS.iter().map(|c| c.name).collect();
        assert_eq!(aliases, listed);
        assert_eq!(
            aliased_text(&rendered.key),
            "SELECT CAST(N'btc' AS nvarchar(255)) AS id, CAST('2023-03-30T15:52:12.104' AS datetime) AS runtime_timestamp"
        );
        assert_eq!(
            rendered.key.bare(),
            "SELECT CAST(N'btc' AS nvarchar(255)), CAST('2023-03-30T15:52:12.104' AS datetime)"
        );
        assert_eq!(
            rendered.literals,
            2 + 2,
            "id and timestamp, in the row and in its key"
        );
    }
}
