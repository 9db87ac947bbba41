//! `Reject` (a poison event, kept whole) and `RejectReason` (why it cannot become a row).

use super::{EventCoordinates, Varchar255};

/// Why an event cannot become a row. The text starts with a stable code (`not_json: ...`) so
/// rejects can be grouped by kind.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RejectReason {
    #[error("not_json: {0}")]
    NotJson(String),
    #[error("not_an_object: the event is a JSON {0}, not an object")]
    NotAnObject(&'static str),
    #[error("missing_field: {0} is missing, null or empty")]
    MissingField(&'static str),
    #[error("wrong_type: {field} must be {expected}")]
    WrongType {
        field: &'static str,
        expected: &'static str,
    },
    #[error("not_a_number: {field} = {text:?}")]
    NotANumber { field: &'static str, text: String },
    #[error("not_finite: {field} = {text:?}")]
    NotFinite { field: &'static str, text: String },
    #[error("too_long: {field} has {chars} UTF-16 code units (the column holds {max})", max = Varchar255::MAX_CHARS)]
    TooLong { field: &'static str, chars: usize },
    #[error("contains_nul: {field} contains a NUL character")]
    ContainsNul { field: &'static str },
    #[error(
        "out_of_range: timestamp {0} ms is outside datetime's range (1753-01-01 to 9999-12-31)"
    )]
    TimestampOutOfRange(i64),
}

impl RejectReason {
    /// The stable code at the start of the text (`not_json`, `too_long`, ...).
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotJson(_) => "not_json",
            Self::NotAnObject(_) => "not_an_object",
            Self::MissingField(_) => "missing_field",
            Self::WrongType { .. } => "wrong_type",
            Self::NotANumber { .. } => "not_a_number",
            Self::NotFinite { .. } => "not_finite",
            Self::TooLong { .. } => "too_long",
            Self::ContainsNul { .. } => "contains_nul",
            Self::TimestampOutOfRange(_) => "out_of_range",
        }
    }
}

/// A poison event: kept whole, with the reason and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Reject {
    pub raw_body: String,
    pub reason: RejectReason,
    pub coordinates: EventCoordinates,
}
