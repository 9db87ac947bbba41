//! The history table's columns, once: each column's name, its type in each SQL dialect, and how to
//! read its value from an [`AssetRow`]. SQLite's schema and insert and the SQL writer's column list and
//! row `SELECT` are all built from [`HISTORY_COLUMNS`]; a test holds the list against
//! `sql/asset_statistics_history_v3.sql`, and another against the event's table of wire keys
//! ([`WireKey`]): a new CoinCap field is one key there, its [`AssetRow`] field, one entry here
//! and the DDL, and the tests fail until all four agree.

use crate::domain::{AssetRow, Finite, Varchar255, WarehouseTime, WireKey};

/// What a column holds; each kind has one type per dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Text of at most 255 UTF-16 code units, no NUL ([`Varchar255`]).
    Text,
    BigInt,
    /// A finite float ([`Finite`]).
    Float,
    /// A millisecond UTC instant inside `datetime`'s range ([`WarehouseTime`]).
    Time,
}

impl Kind {
    pub const fn sqlite(self) -> &'static str {
        match self {
            Self::Text | Self::Time => "TEXT",
            Self::BigInt => "INTEGER",
            Self::Float => "REAL",
        }
    }

    /// The T-SQL type in our DDL, and what a T-SQL literal is cast to (the key's text
    /// column is cast to the table's own type instead, read from the catalog).
    pub const fn sql_type(self) -> &'static str {
        match self {
            Self::Text => "nvarchar(255)",
            Self::BigInt => "bigint",
            Self::Float => "float",
            Self::Time => "datetime",
        }
    }
}

/// One column's value in one row, borrowed from it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Text(Option<&'a str>),
    BigInt(Option<i64>),
    Float(Option<f64>),
    Time(WarehouseTime),
}

/// One column of `asset_statistics_history_v3` (the identity column is the warehouse's business
/// and is not listed).
pub struct Column {
    pub name: &'static str,
    /// The event field the column is read from.
    pub source: WireKey,
    pub kind: Kind,
    /// Part of the natural key `(id, runtime_timestamp)`; key columns are NOT NULL.
    pub key: bool,
    pub value: for<'a> fn(&'a AssetRow) -> Value<'a>,
}

impl Column {
    /// A column named after its event field, as most of the seed's are.
    const fn new(
        source: WireKey,
        kind: Kind,
        value: for<'a> fn(&'a AssetRow) -> Value<'a>,
    ) -> Self {
        Self {
            name: source.as_str(),
            source,
            kind,
            key: false,
            value,
        }
    }

    /// The column under the seed's own name for it.
    const fn named(self, name: &'static str) -> Self {
        Self { name, ..self }
    }

    const fn key(self) -> Self {
        Self { key: true, ..self }
    }
}

fn text(value: &Option<Varchar255>) -> Value<'_> {
    Value::Text(value.as_ref().map(Varchar255::as_str))
}

fn float(value: Option<Finite>) -> Value<'static> {
    Value::Float(value.map(Finite::get))
}

/// The seed's 13 columns, in the seed's order.
pub const HISTORY_COLUMNS: [Column; 13] = [
    Column::new(WireKey::Id, Kind::Text, |r| {
        Value::Text(Some(r.id.as_str()))
    })
    .key(),
    Column::new(WireKey::Rank, Kind::BigInt, |r| Value::BigInt(r.asset_rank)).named("asset_rank"),
    Column::new(WireKey::Symbol, Kind::Text, |r| text(&r.symbol)),
    Column::new(WireKey::Name, Kind::Text, |r| text(&r.asset_name)).named("asset_name"),
    Column::new(WireKey::Supply, Kind::Float, |r| float(r.supply)),
    Column::new(WireKey::MaxSupply, Kind::Float, |r| float(r.max_supply)),
    Column::new(WireKey::MarketCapUsd, Kind::Float, |r| {
        float(r.market_cap_usd)
    }),
    Column::new(WireKey::VolumeUsd24Hr, Kind::Float, |r| {
        float(r.volume_usd_24_hr)
    }),
    Column::new(WireKey::PriceUsd, Kind::Float, |r| float(r.price_usd)),
    Column::new(WireKey::ChangePercent24Hr, Kind::Float, |r| {
        float(r.change_percent_24_hr)
    }),
    Column::new(WireKey::Vwap24Hr, Kind::Float, |r| float(r.vwap_24_hr)),
    Column::new(WireKey::Explorer, Kind::Text, |r| text(&r.explorer)),
    Column::new(WireKey::Timestamp, Kind::Time, |r| {
        Value::Time(r.runtime_timestamp)
    })
    .named("runtime_timestamp")
    .key(),
];

/// `id, asset_rank, ..., runtime_timestamp`: the insert's column list.
pub fn names(separator: &str) -> String {
    HISTORY_COLUMNS
        .iter()
        .map(|c| c.name)
        .collect::<Vec<_>>()
        .join(separator)
}

/// The key columns, in order: `["id", "runtime_timestamp"]`.
pub fn key_names() -> Vec<&'static str> {
    HISTORY_COLUMNS
        .iter()
        .filter(|c| c.key)
        .map(|c| c.name)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::map_events;

    const DDL: &str = include_str!("../../sql/asset_statistics_history_v3.sql");

    /// `(name, type)` of every bracketed column between the `CREATE TABLE`'s first `(` and its
    /// matching `)`, comments removed; a column is the first `[name]` of an item at depth one.
    fn ddl_columns(ddl: &str) -> Vec<(String, String)> {
        let code: String = ddl
            .lines()
            .map(|line| line.split_once("--").map_or(line, |(code, _)| code))
            .collect::<Vec<_>>()
            .join("\n");
        let open = code.find('(').expect("a column list");
        let mut depth = 0;
        let mut items = vec![String::new()];
        for c in code[open + 1..].chars() {
            match c {
                '(' => depth += 1,
                ')' if depth == 0 => break,
                ')' => depth -= 1,
                ',' if depth == 0 => {
                    items.push(String::new());
                    continue;
                }
                _ => {}
            }
            items.last_mut().unwrap().push(c);
        }
        items
            .iter()
            .filter_map(|item| {
                let item = item.trim();
                let rest = item.strip_prefix('[')?;
                let (name, definition) = rest.split_once(']')?;
                Some((name.to_owned(), sql_type(definition)))
            })
            .collect()
    }

    /// The type at the start of a column definition, lower case, spaces inside its parentheses
    /// dropped: `decimal(10, 2) NOT NULL` -> `decimal(10,2)`.
    fn sql_type(definition: &str) -> String {
        let mut depth = 0;
        let mut out = String::new();
        for c in definition.trim_start().chars() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                c if c.is_whitespace() && depth == 0 => break,
                c if c.is_whitespace() => continue,
                _ => {}
            }
            out.push(c.to_ascii_lowercase());
        }
        out
    }

    #[test]
    fn the_ddl_declares_exactly_the_listed_columns_in_order_with_their_types() {
        let declared: Vec<(String, String)> = ddl_columns(DDL)
            .into_iter()
            .filter(|(name, _)| name != "id_asset_statistics_history")
            .collect();
        let listed: Vec<(String, String)> = HISTORY_COLUMNS
            .iter()
            .map(|c| (c.name.to_owned(), c.kind.sql_type().to_owned()))
            .collect();
        assert_eq!(declared, listed);
    }

    #[test]
    fn the_ddl_parser_reads_through_comments_and_nested_parentheses() {
        let ddl = "-- a (comment\nCREATE TABLE t -- (x\n(\n  [a] nvarchar(255) NOT NULL, -- [b] int,\n  [c] decimal(10, 2),\n  CONSTRAINT k PRIMARY KEY ([a])\n)\nWITH (DISTRIBUTION = HASH([a]), CLUSTERED INDEX ([c]));";
        assert_eq!(
            ddl_columns(ddl),
            [
                ("a".to_owned(), "nvarchar(255)".to_owned()),
                ("c".to_owned(), "decimal(10,2)".to_owned())
            ]
        );
    }

    #[test]
    fn the_key_is_id_and_runtime_timestamp() {
        assert_eq!(key_names(), ["id", "runtime_timestamp"]);
        assert_eq!(
            names(", "),
            "id, asset_rank, symbol, asset_name, supply, maxSupply, marketCapUsd, volumeUsd24Hr, priceUsd, changePercent24Hr, vwap24Hr, explorer, runtime_timestamp"
        );
    }

    #[test]
    fn every_event_field_has_exactly_one_column_in_the_order_of_the_wire_keys() {
        let sources: Vec<WireKey> = HISTORY_COLUMNS.iter().map(|c| c.source).collect();
        assert_eq!(
            sources,
            WireKey::ALL,
            "a field added to the table of wire keys needs its column here (and in the DDL)"
        );
    }

    #[test]
    fn every_column_reads_its_own_field() {
        let body = r#"{"id":"bitcoin","rank":"1","symbol":"BTC","name":"Bitcoin","supply":"2","maxSupply":"3","marketCapUsd":"4","volumeUsd24Hr":"5","priceUsd":"6","changePercent24Hr":"7","vwap24Hr":"8","explorer":"https://x","timestamp":1680191532104}"#;
        let row = map_events([(body.to_owned(), crate::domain::EventCoordinates::default())])
            .rows
            .remove(0);
        let values: Vec<Value<'_>> = HISTORY_COLUMNS.iter().map(|c| (c.value)(&row)).collect();
        assert_eq!(
            values,
            [
                Value::Text(Some("bitcoin")),
                Value::BigInt(Some(1)),
                Value::Text(Some("BTC")),
                Value::Text(Some("Bitcoin")),
                Value::Float(Some(2.0)),
                Value::Float(Some(3.0)),
                Value::Float(Some(4.0)),
                Value::Float(Some(5.0)),
                Value::Float(Some(6.0)),
                Value::Float(Some(7.0)),
                Value::Float(Some(8.0)),
                Value::Text(Some("https://x")),
                Value::Time(row.runtime_timestamp),
            ]
        );
        for column in &HISTORY_COLUMNS {
            let value = (column.value)(&row);
            let kind = match value {
                Value::Text(_) => Kind::Text,
                Value::BigInt(_) => Kind::BigInt,
                Value::Float(_) => Kind::Float,
                Value::Time(_) => Kind::Time,
            };
            assert_eq!(kind, column.kind, "{}", column.name);
        }
    }
}
