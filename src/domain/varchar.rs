//! `Varchar255`: text that fits a `(n)varchar(255)` column.

use super::RejectReason;

/// Text that fits a `(n)varchar(255)` column: at most 255 UTF-16 code units (what `nvarchar`
/// counts; a character outside the BMP takes two), no NUL.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Varchar255(String);

impl Varchar255 {
    pub const MAX_CHARS: usize = 255;

    /// `field` names the event field in the reason when `text` does not fit.
    pub fn parse(field: &'static str, text: &str) -> Result<Self, RejectReason> {
        if text.as_bytes().contains(&0) {
            return Err(RejectReason::ContainsNul { field });
        }
        // A character never takes more UTF-16 code units than UTF-8 bytes, so short text fits
        // without counting.
        if text.len() > Self::MAX_CHARS {
            let chars = text.encode_utf16().count();
            if chars > Self::MAX_CHARS {
                return Err(RejectReason::TooLong { field, chars });
            }
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_hundred_fifty_five_code_units_fit_and_one_more_does_not() {
        assert!(Varchar255::parse("name", &"é".repeat(255)).is_ok());
        assert_eq!(
            Varchar255::parse("name", &"é".repeat(256)),
            Err(RejectReason::TooLong {
                field: "name",
                chars: 256
            })
        );
        // Outside the BMP a character takes two code units in nvarchar.
        assert_eq!(
            Varchar255::parse("name", &"🚀".repeat(128)),
            Err(RejectReason::TooLong {
                field: "name",
                chars: 256
            })
        );
        assert!(Varchar255::parse("name", &"🚀".repeat(127)).is_ok());
    }

    #[test]
    fn a_nul_character_does_not_fit() {
        assert_eq!(
            Varchar255::parse("symbol", "B\0TC"),
            Err(RejectReason::ContainsNul { field: "symbol" })
        );
    }

    proptest::proptest! {
        #[test]
        fn the_short_cut_agrees_with_counting(text in ".{0,300}") {
            let counted = text.encode_utf16().count();
            let fits = Varchar255::parse("name", &text).is_ok();
            proptest::prop_assert_eq!(fits, counted <= Varchar255::MAX_CHARS && !text.contains('\0'));
        }
    }
}
