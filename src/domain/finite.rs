//! `Finite`: a float a SQL `float` column accepts.

/// A finite `float` (NaN and the infinities have no place in a SQL `float` column).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Finite(f64);

impl Finite {
    /// `None` for NaN and the infinities.
    pub fn new(value: f64) -> Option<Self> {
        value.is_finite().then_some(Self(value))
    }

    pub fn get(self) -> f64 {
        self.0
    }
}

/// A decimal string as a float (surrounding spaces allowed; empty is not a number).
pub(crate) fn decimal(text: &str) -> Option<f64> {
    let text = trimmed(text);
    if text.is_empty() {
        return None;
    }
    text.parse().ok()
}

/// `text` without surrounding whitespace, as `str::trim` takes it off; the trim is skipped when
/// both ends are ASCII other than space and control (no whitespace there), as a number's are.
pub(crate) fn trimmed(text: &str) -> &str {
    let plain = |b: &u8| *b > b' ' && *b < 0x80;
    let bytes = text.as_bytes();
    if bytes.first().is_some_and(plain) && bytes.last().is_some_and(plain) {
        text
    } else {
        text.trim()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nan_and_the_infinities_are_not_finite() {
        for value in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(Finite::new(value), None);
        }
        assert_eq!(Finite::new(-0.5).map(Finite::get), Some(-0.5));
    }

    #[test]
    fn decimals_may_have_spaces_around_but_not_be_empty() {
        assert_eq!(decimal(" 12.5 "), Some(12.5));
        assert_eq!(decimal("  "), None);
        assert_eq!(decimal("12,5"), None);
    }

    proptest::proptest! {
        #[test]
        fn trimmed_is_trim(text in "[ \t\u{a0}\u{2003}a1.\n-]{0,6}") {
            proptest::prop_assert_eq!(trimmed(&text), text.trim());
        }
    }
}
