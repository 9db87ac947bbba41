//! How the history table compares its key `(id, runtime_timestamp)`, read from its catalog: the
//! `id` column's type and collation, `runtime_timestamp`'s type. The writer casts its literals to
//! these types, and removes from a batch the rows the database would take for one key, keeping the
//! first ([`remove_equal_keys`]): two ids its collation calls equal (`BTC` and `btc` under a `_CI_`
//! collation), two timestamps its type stores as one (`datetime` keeps 1/300 s). Pure.

use std::borrow::Cow;
use std::collections::HashSet;

use icu_normalizer::{ComposingNormalizerBorrowed, DecomposingNormalizerBorrowed};
use icu_properties::CodePointMapData;
use icu_properties::props::GeneralCategory;

use chrono::{DateTime, Utc};

use crate::domain::{AssetRow, EventCoordinates, Reject, WarehouseTime};
use crate::warehouse::columns::Kind;

/// The SQL type of the history table's `id` column. The key literals (and the inserted id) are
/// cast to it, so the probe compares in the column's own type: against the seed's `varchar(255)`
/// an id outside the code page is stored as `?`, and only a `varchar` literal (converted the same
/// way) finds it again; an `nvarchar` literal would win by type precedence and never match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdType {
    name: String,
    /// ` AS <name>)`: what closes a cast to it.
    pub(super) cast: String,
}

impl IdType {
    fn new(name: String) -> Self {
        let cast = format!(" AS {name})");
        Self { name, cast }
    }

    /// From `TYPE_NAME(user_type_id)` and `sys.columns.max_length` (bytes; -1 for `max`). `None`
    /// for a type a text key cannot be compared in.
    pub fn from_catalog(type_name: &str, max_length: i32) -> Option<Self> {
        let name = type_name.to_ascii_lowercase();
        let units = match name.as_str() {
            "nvarchar" | "nchar" => max_length / 2,
            "varchar" | "char" => max_length,
            _ => return None,
        };
        Some(match max_length {
            -1 => Self::new(format!("{name}(max)")),
            1.. => Self::new(format!("{name}({units})")),
            _ => return None,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.name
    }
}

impl Default for IdType {
    /// Our DDL's `nvarchar(255)`.
    fn default() -> Self {
        Self::new(Kind::Text.sql_type().to_owned())
    }
}

/// How a collation compares text, from its name (SQL Server's collation names spell it:
/// `_CI`/`_CS` case, `_AI`/`_AS` accents, `_KS` kana, `_WS` width, `_BIN`/`_BIN2` code points;
/// "Collation and Unicode support" in the SQL Server documentation). Every collation ignores
/// trailing spaces when it compares for equality.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collation {
    /// The name as the catalog gives it; `None` when unknown (then no `COLLATE` is written).
    name: Option<String>,
    case: bool,
    accents: bool,
    kana: bool,
    width: bool,
}

impl Default for Collation {
    /// Unknown: compares code points (nothing folded), and no `COLLATE` clause.
    fn default() -> Self {
        Self {
            name: None,
            case: true,
            accents: true,
            kana: true,
            width: true,
        }
    }
}

impl Collation {
    /// From `sys.columns.collation_name`; `None` for a name that is not a plain identifier (it is
    /// written into `COLLATE` as it is).
    pub fn from_name(name: &str) -> Option<Self> {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return None;
        }
        let parts: Vec<String> = name.split('_').map(str::to_ascii_lowercase).collect();
        let has = |part: &str| parts.iter().any(|p| p == part);
        let binary = has("bin") || has("bin2");
        Some(Self {
            name: Some(name.to_owned()),
            case: binary || !has("ci"),
            accents: binary || !has("ai"),
            kana: binary || has("ks"),
            width: binary || has("ws"),
        })
    }

    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// ` COLLATE <name>`, to compare in this collation whatever the expression's own; empty when
    /// the name is not known.
    pub fn clause(&self) -> String {
        self.name()
            .map(|name| format!(" COLLATE {name}"))
            .unwrap_or_default()
    }

    /// `case-insensitive, accent-sensitive, ...`: what the name says, for the report.
    pub fn describe(&self) -> String {
        let word = |sensitive: bool, what: &str| {
            format!(
                "{what}-{}",
                if sensitive {
                    "sensitive"
                } else {
                    "insensitive"
                }
            )
        };
        [
            word(self.case, "case"),
            word(self.accents, "accent"),
            word(self.kana, "kana"),
            word(self.width, "width"),
        ]
        .join(", ")
    }

    /// The text this collation compares `id` as: trailing spaces dropped, then case, accents,
    /// kana and width folded where it ignores them. Two ids fold alike when the collation calls
    /// them equal; other linguistic equivalences of some collations (`ß` and `ss`, ligatures)
    /// are not folded, and the database's unique index, where there is one, still catches them.
    pub fn fold<'a>(&self, id: &'a str) -> Cow<'a, str> {
        let id = id.trim_end_matches(' ');
        if self.case && self.accents && self.kana && self.width {
            return Cow::Borrowed(id);
        }
        let mut text: String = id.chars().map(|c| self.fold_char(c)).collect();
        if !self.accents {
            let decomposed = DecomposingNormalizerBorrowed::new_nfd().normalize(&text);
            let marks = CodePointMapData::<GeneralCategory>::new();
            text = decomposed
                .chars()
                .filter(|&c| marks.get(c) != GeneralCategory::NonspacingMark)
                .collect();
            text = ComposingNormalizerBorrowed::new_nfc()
                .normalize(&text)
                .into_owned();
        }
        if !self.case {
            text = text.to_lowercase();
        }
        Cow::Owned(text)
    }

    fn fold_char(&self, c: char) -> char {
        let mut c = c;
        if !self.width {
            c = narrow(c);
        }
        if !self.kana && ('\u{3041}'..='\u{3096}').contains(&c) {
            // Hiragana as its katakana: the two blocks run in the same order, 0x60 apart.
            c = char::from_u32(c as u32 + 0x60).unwrap_or(c);
        }
        c
    }
}

/// A full-width form as its ordinary character (`Ａ` as `A`, the ideographic space as a space).
fn narrow(c: char) -> char {
    match c {
        '\u{3000}' => ' ',
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        _ => c,
    }
}

/// The SQL type of `runtime_timestamp`, and the instant it stores for a millisecond.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeType {
    /// 1/300 s: `.000`, `.003`, `.007` ("datetime (Transact-SQL)").
    DateTime,
    /// `datetime2(p)`: 10^-p s, rounded half up from the milliseconds written.
    DateTime2(u8),
}

impl Default for TimeType {
    /// Our DDL's (and the seed's) `datetime`.
    fn default() -> Self {
        Self::DateTime
    }
}

impl TimeType {
    /// From `TYPE_NAME(system_type_id)` and `sys.columns.scale`; `None` for any other type (a
    /// `smalldatetime` cannot hold every timestamp the writer accepts).
    pub fn from_catalog(type_name: &str, scale: i32) -> Option<Self> {
        match type_name.to_ascii_lowercase().as_str() {
            "datetime" => Some(Self::DateTime),
            "datetime2" => u8::try_from(scale)
                .ok()
                .filter(|p| *p <= 7)
                .map(Self::DateTime2),
            _ => None,
        }
    }

    /// `datetime`, `datetime2(3)`.
    pub fn sql(self) -> String {
        match self {
            Self::DateTime => "datetime".into(),
            Self::DateTime2(scale) => format!("datetime2({scale})"),
        }
    }

    /// What two timestamps 1 ms apart become in this type, for the report.
    pub fn describe(self) -> &'static str {
        match self {
            Self::DateTime => {
                "rounds to .000, .003 or .007 s: two timestamps 1 ms apart can be one key"
            }
            Self::DateTime2(3..) => "keeps every millisecond",
            Self::DateTime2(_) => "rounds below the millisecond's precision",
        }
    }

    /// The instant the column stores for `at`, in the type's own units: two timestamps are one
    /// key exactly when these are equal.
    pub fn stored(self, at: WarehouseTime) -> i64 {
        let ms = at.epoch_ms();
        let (seconds, millis) = (ms.div_euclid(1000), ms.rem_euclid(1000));
        match self {
            // Ticks of 1/300 s, the milliseconds rounded to the nearest tick (.005 up).
            Self::DateTime => seconds * 300 + (millis * 3 + 5) / 10,
            Self::DateTime2(3..) => ms,
            Self::DateTime2(scale) => {
                let step = 10_i64.pow(3 - u32::from(scale));
                (ms + step / 2).div_euclid(step)
            }
        }
    }
}

/// How the history table compares its key: what the writer casts to and folds by.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyTypes {
    pub id: IdType,
    pub collation: Collation,
    pub time: TimeType,
}

impl KeyTypes {
    /// ` AS datetime)`: what closes a cast of a timestamp literal (a constant: it is written once
    /// per row).
    pub fn time_cast(&self) -> &'static str {
        const DATETIME2: [&str; 8] = [
            " AS datetime2(0))",
            " AS datetime2(1))",
            " AS datetime2(2))",
            " AS datetime2(3))",
            " AS datetime2(4))",
            " AS datetime2(5))",
            " AS datetime2(6))",
            " AS datetime2(7))",
        ];
        match self.time {
            TimeType::DateTime => " AS datetime)",
            // `from_catalog` takes scales 0 to 7 only, which is all `datetime2` has.
            TimeType::DateTime2(scale) => DATETIME2[usize::from(scale.min(7))],
        }
    }
}

/// Removes each row whose key the database would take for an earlier row's, keeping the first
/// (batch order is the order events sat in their partition), and says how many.
pub fn remove_equal_keys(rows: &mut Vec<AssetRow>, keys: &KeyTypes) -> usize {
    let mut seen = HashSet::with_capacity(rows.len());
    let before = rows.len();
    rows.retain(|row| {
        let id = keys.collation.fold(row.id.as_str()).into_owned();
        seen.insert((id, keys.time.stored(row.runtime_timestamp)))
    });
    before - rows.len()
}

/// `varchar(64)` of `partition_id` and `event_offset`, `varchar(256)` of the hub's names: a
/// coordinate longer than its column is stored as NULL (the reject is then always stored), never
/// cut, which would make the insert fail on every delivery.
pub(super) const SHORT_TEXT: usize = 64;
const NAME_TEXT: usize = 256;

/// A reject's coordinates as its key columns hold them: each text within its column, else none.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct RejectKey<'a> {
    pub(super) partition_id: Option<&'a str>,
    pub(super) sequence_number: Option<i64>,
    pub(super) enqueued_time: Option<DateTime<Utc>>,
    pub(super) namespace: Option<&'a str>,
    pub(super) event_hub: Option<&'a str>,
}

impl<'a> RejectKey<'a> {
    pub(super) fn of(at: &'a EventCoordinates) -> Self {
        let within = |text: &'a Option<std::sync::Arc<str>>, max: usize| {
            text.as_deref().filter(|text| text.chars().count() <= max)
        };
        Self {
            partition_id: within(&at.partition_id, SHORT_TEXT),
            sequence_number: at.sequence_number,
            // datetime2(3): what the column keeps.
            enqueued_time: at
                .enqueued_time
                .map(|t| DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)),
            namespace: within(&at.namespace, NAME_TEXT),
            event_hub: within(&at.event_hub, NAME_TEXT),
        }
    }

    /// Whether every part is known: only then can a stored reject be this one again.
    pub(super) fn is_complete(&self) -> bool {
        self.partition_id.is_some()
            && self.sequence_number.is_some()
            && self.enqueued_time.is_some()
            && self.namespace.is_some()
            && self.event_hub.is_some()
    }
}

/// Removes each reject whose complete key an earlier reject of the batch has (one event delivered
/// twice in a batch), keeping the first, and says how many: the database would store both.
pub fn remove_repeated_rejects(rejects: &mut Vec<Reject>) -> usize {
    let before = rejects.len();
    let mut seen = HashSet::with_capacity(rejects.len());
    let keep: Vec<bool> = rejects
        .iter()
        .map(|reject| {
            let key = RejectKey::of(&reject.coordinates);
            !key.is_complete() || seen.insert(key)
        })
        .collect();
    let mut keep = keep.into_iter();
    rejects.retain(|_| keep.next().unwrap_or(true));
    before - rejects.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collation(name: &str) -> Collation {
        Collation::from_name(name).unwrap()
    }

    #[test]
    fn a_timestamp_is_cast_to_the_column_s_own_time_type() {
        let types = std::iter::once(TimeType::DateTime).chain((0..=7).map(TimeType::DateTime2));
        for time in types {
            let keys = KeyTypes {
                id: IdType::from_catalog("nvarchar", 510).unwrap(),
                collation: Collation::default(),
                time,
            };
            assert_eq!(keys.time_cast(), format!(" AS {})", time.sql()));
        }
    }

    fn row(id: &str, ms: i64) -> AssetRow {
        AssetRow::from_event_body(&format!(r#"{{"id":"{id}","timestamp":{ms}}}"#)).unwrap()
    }

    #[test]
    fn catalog_types_read_as_sql_types_and_others_are_refused() {
        assert_eq!(
            IdType::from_catalog("NVARCHAR", -1).unwrap().as_str(),
            "nvarchar(max)"
        );
        assert_eq!(
            IdType::from_catalog("char", 32).unwrap().as_str(),
            "char(32)"
        );
        assert_eq!(
            IdType::from_catalog("nchar", 20).unwrap().as_str(),
            "nchar(10)"
        );
        assert_eq!(IdType::from_catalog("int", 4), None);
        assert_eq!(IdType::from_catalog("varchar", 0), None);
        assert_eq!(
            TimeType::from_catalog("datetime", 3),
            Some(TimeType::DateTime)
        );
        assert_eq!(
            TimeType::from_catalog("DATETIME2", 3),
            Some(TimeType::DateTime2(3))
        );
        assert_eq!(TimeType::from_catalog("smalldatetime", 0), None);
        assert_eq!(TimeType::from_catalog("datetime2", 9), None);
    }

    #[test]
    fn the_collation_s_name_says_what_it_ignores() {
        let default = collation("SQL_Latin1_General_CP1_CI_AS");
        assert_eq!(
            default.describe(),
            "case-insensitive, accent-sensitive, kana-insensitive, width-insensitive"
        );
        let strict = collation("Latin1_General_100_CS_AS_KS_WS");
        assert_eq!(
            strict.describe(),
            "case-sensitive, accent-sensitive, kana-sensitive, width-sensitive"
        );
        let binary = collation("Latin1_General_BIN2");
        assert_eq!(binary.fold("BTC "), "BTC");
        assert_eq!(collation("bbf_unicode_cp1_ci_as").fold("BTC"), "btc");
        assert_eq!(Collation::from_name("x; DROP TABLE y"), None);
        assert_eq!(Collation::from_name(""), None);
    }

    #[test]
    fn ids_fold_as_the_collation_compares_them() {
        let ci_as = collation("SQL_Latin1_General_CP1_CI_AS");
        assert_eq!(
            ci_as.fold("Bitcoin  "),
            "bitcoin",
            "case and trailing spaces"
        );
        assert_ne!(ci_as.fold("café"), ci_as.fold("cafe"), "accents count");
        assert_eq!(ci_as.fold("ＢＴＣ"), "btc", "width ignored");
        assert_eq!(
            ci_as.fold("ビットコイン"),
            ci_as.fold("びっとこいん"),
            "kana ignored"
        );
        let ci_ai = collation("Latin1_General_100_CI_AI");
        assert_eq!(ci_ai.fold("Café"), "cafe");
        assert_eq!(ci_ai.fold("Ærø"), ci_ai.fold("ærø"));
        let cs = collation("Latin1_General_CS_AS");
        assert_ne!(cs.fold("BTC"), cs.fold("btc"));
        assert_eq!(cs.fold("btc "), "btc", "trailing spaces never count");
        assert_eq!(
            Collation::default().fold(" a "),
            " a",
            "leading spaces count"
        );
    }

    #[test]
    fn datetime_stores_three_hundredths_of_a_second_and_datetime2_what_its_scale_keeps() {
        // "datetime (Transact-SQL)": rounded to increments of .000, .003, or .007 seconds.
        let at = |ms: i64| WarehouseTime::from_epoch_ms(1_747_000_000_000 + ms).unwrap();
        let stored = |t: TimeType, ms| t.stored(at(ms));
        let dt = TimeType::DateTime;
        assert_eq!(stored(dt, 0), stored(dt, 1), ".000 and .001 are .000");
        assert_eq!(stored(dt, 2), stored(dt, 4), ".002 to .004 are .003");
        assert_eq!(stored(dt, 5), stored(dt, 8), ".005 to .008 are .007");
        assert_eq!(stored(dt, 9), stored(dt, 10), ".009 is .010");
        assert_ne!(stored(dt, 1), stored(dt, 2));
        assert_eq!(stored(dt, 999), stored(dt, 1000), ".999 is the next second");
        let exact = TimeType::DateTime2(3);
        assert_ne!(stored(exact, 0), stored(exact, 1));
        let tenths = TimeType::DateTime2(1);
        assert_eq!(
            stored(tenths, 150),
            stored(tenths, 249),
            ".15 rounds up to .2"
        );
        assert_ne!(stored(tenths, 149), stored(tenths, 150));
        // Before 1970 too (datetime starts in 1753).
        let early = WarehouseTime::from_epoch_ms(-6_847_804_800_000 + 999).unwrap();
        let next = WarehouseTime::from_epoch_ms(-6_847_804_799_000).unwrap();
        assert_eq!(dt.stored(early), dt.stored(next));
    }

    #[test]
    fn rows_equal_to_the_database_are_removed_and_the_first_kept() {
        let keys = KeyTypes {
            collation: collation("SQL_Latin1_General_CP1_CI_AS"),
            ..KeyTypes::default()
        };
        let mut rows = vec![
            row("BTC", 1_747_000_000_000),
            row("btc", 1_747_000_000_001),
            row("eth", 1_747_000_000_000),
            row("btc", 1_747_000_000_002),
        ];
        assert_eq!(remove_equal_keys(&mut rows, &keys), 1);
        let kept: Vec<(&str, i64)> = rows
            .iter()
            .map(|r| (r.id.as_str(), r.runtime_timestamp.epoch_ms()))
            .collect();
        assert_eq!(
            kept,
            [
                ("BTC", 1_747_000_000_000),
                ("eth", 1_747_000_000_000),
                ("btc", 1_747_000_000_002)
            ]
        );
        let exact = KeyTypes {
            time: TimeType::DateTime2(3),
            collation: collation("Latin1_General_BIN2"),
            ..KeyTypes::default()
        };
        let mut rows = vec![row("BTC", 1_747_000_000_000), row("btc", 1_747_000_000_000)];
        assert_eq!(remove_equal_keys(&mut rows, &exact), 0);
    }
}
