//! T-SQL literals: the injection boundary. Every value that reaches the SQL server is rendered here,
//! never bound as a parameter (a dedicated pool rejects tiberius' named `sp_executesql` parameters), so this module
//! is small, pure and property-tested: a rendered value parses back as exactly itself.

use std::fmt::Write as _;

use crate::domain::WarehouseTime;

/// Any text as ONE constant that every SQL Server-family target stores exactly, whatever its length and content:
/// - `N'...'` with every `'` doubled when it holds no NUL: one string literal, one character per
///   UTF-16 code unit on the wire (a constant longer than 4000 characters is `nvarchar(max)` by
///   itself, so nothing truncates it);
/// - `CAST(0x<UTF-16LE bytes> AS nvarchar(max))` when it holds a NUL, which cannot stand inside a
///   string literal. A binary constant is not a string literal and nests nothing, so neither the
///   20,000-literal limit nor expression depth grows with the NULs (a `+ NCHAR(0) +` chain did,
///   and silently truncated past 4000 characters when no piece was `max`).
///
/// Row columns cannot hold NUL (they reject it earlier); only reject bodies take the binary form,
/// which costs four characters per code unit instead of one, so it is kept for that case.
pub fn nstring(out: &mut String, value: &str) {
    if value.contains('\0') {
        utf16_constant(out, value);
    } else {
        quoted(out, value);
    }
}

fn quoted(out: &mut String, value: &str) {
    out.reserve(value.len() + 3);
    out.push_str("N'");
    let mut rest = value;
    // Copy runs between quotes whole: most text has none (and is short: a byte loop beats a
    // search's set-up).
    while let Some(at) = rest.bytes().position(|b| b == b'\'') {
        out.push_str(&rest[..=at]);
        out.push('\'');
        rest = &rest[at + 1..];
    }
    out.push_str(rest);
    out.push('\'');
}

/// `CAST(0x... AS nvarchar(max))`: the text's UTF-16LE code units in hex (how `nvarchar` stores
/// it, so the conversion is exact).
fn utf16_constant(out: &mut String, value: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.reserve(4 * value.len() + 32);
    out.push_str("CAST(0x");
    for unit in value.encode_utf16() {
        for byte in unit.to_le_bytes() {
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0x0F)]));
        }
    }
    out.push_str(" AS nvarchar(max))");
}

/// A finite float in its shortest form that reads back to the same bits (`1.5E0`, `-2.5E-7`):
/// exactly what `format!("{value:E}")` writes (property-tested), without the formatting
/// machinery (a row has seven floats, a batch thousands).
/// The exponent makes T-SQL read it as `float`, not `decimal` (which would round).
pub fn float(out: &mut String, value: f64) {
    debug_assert!(
        value.is_finite(),
        "NaN and infinities are impossible by type"
    );
    if may_tie(value) {
        // Writing into a String cannot fail.
        let _ = write!(out, "{value:E}");
        return;
    }
    let mut buffer = zmij::Buffer::new();
    scientific(out, buffer.format_finite(value));
}

/// Whether the exact value of `value` has at most 18 significant digits, so it could lie
/// exactly halfway between two shortest candidates: std then rounds the tie up and zmij may
/// not (`1658206780088562.25`). Such values (integers, few binary fraction digits) go
/// through std; a typical decimal from CoinCap has over 18 and does not.
fn may_tie(value: f64) -> bool {
    const MAX_EXACT: u128 = 1_000_000_000_000_000_000;
    let bits = value.abs().to_bits();
    let (exponent, fraction) = ((bits >> 52) as i32, bits & ((1 << 52) - 1));
    let (mut mantissa, mut power) = match exponent {
        0 => (fraction, -1074),
        _ => (fraction | (1 << 52), exponent - 1075),
    };
    if mantissa == 0 {
        return true;
    }
    let zeros = mantissa.trailing_zeros();
    mantissa >>= zeros;
    power += zeros as i32;
    if power >= 0 {
        // An integer: its digits are its significant digits (it is not a multiple of 10).
        return value.abs() < 1e18;
    }
    // mantissa / 2^-power = mantissa * 5^-power / 10^-power: as many digits as that odd
    // numerator, over 18 for sure once 5^-power alone is (5^26 > 10^18).
    if power < -26 {
        return false;
    }
    let mut exact = u128::from(mantissa);
    for _ in 0..-power {
        exact *= 5;
        if exact >= MAX_EXACT {
            return false;
        }
    }
    true
}

/// Rewrites a shortest decimal (`-0.00123`, `12.5`, `1.5e+20`, `5e-7`) as `d.dddE<exponent>`,
/// in one pass over it, appending slices of it (ASCII: nothing to validate again).
fn scientific(out: &mut String, text: &str) {
    if !fixed_point(out, text) {
        any_form(out, text);
    }
}

/// [`scientific`] for the usual form, `[-]digits.digits` without an exponent or a trailing zero
/// (every CoinCap decimal): its digits are copied in at most three slices. `false` (nothing
/// written) for any other form.
fn fixed_point(out: &mut String, text: &str) -> bool {
    let (sign, digits) = match text.strip_prefix('-') {
        Some(digits) => ("-", digits),
        None => ("", text),
    };
    // One look at each byte: where the point is, and that the rest are digits.
    let mut point = None;
    for (at, byte) in digits.bytes().enumerate() {
        match byte {
            b'0'..=b'9' => {}
            b'.' if point.is_none() => point = Some(at),
            _ => return false,
        }
    }
    let Some(point) = point else {
        return false;
    };
    let (whole, fraction) = (&digits[..point], &digits[point + 1..]);
    if whole.is_empty() || fraction.is_empty() || fraction.ends_with('0') {
        return false;
    }
    out.push_str(sign);
    if whole != "0" {
        if whole.starts_with('0') {
            return false;
        }
        out.push_str(&whole[..1]);
        out.push('.');
        out.push_str(&whole[1..]);
        out.push_str(fraction);
        out.push('E');
        integer(out, whole.len() as i64 - 1);
    } else {
        let zeros = fraction.bytes().take_while(|&b| b == b'0').count();
        out.push_str(&fraction[zeros..=zeros]);
        if zeros + 1 < fraction.len() {
            out.push('.');
            out.push_str(&fraction[zeros + 1..]);
        }
        out.push('E');
        integer(out, -(zeros as i64) - 1);
    }
    true
}

/// [`scientific`] for any form.
fn any_form(out: &mut String, text: &str) {
    let bytes = text.as_bytes();
    let negative = bytes.first() == Some(&b'-');
    // Where the significant digits start and end, where the point is, and the exponent.
    let (mut first, mut last, mut point) = (None, 0, None);
    let (mut whole_digits, mut leading_zeros, mut exponent) = (0i32, 0i32, 0i32);
    for (at, &byte) in bytes.iter().enumerate().skip(usize::from(negative)) {
        match byte {
            b'0'..=b'9' => {
                whole_digits += i32::from(point.is_none());
                if byte != b'0' {
                    first = first.or(Some(at));
                    last = at;
                } else if first.is_none() {
                    leading_zeros += 1;
                }
            }
            b'.' => point = Some(at),
            b'e' | b'E' => {
                let rest = &text[at + 1..];
                exponent = rest.strip_prefix('+').unwrap_or(rest).parse().unwrap_or(0);
                break;
            }
            _ => {}
        }
    }
    if negative {
        out.push('-');
    }
    let Some(first) = first else {
        out.push_str("0E0");
        return;
    };
    out.push_str(&text[first..=first]);
    if last > first {
        out.push('.');
        match point {
            Some(point) if point > first && point < last => {
                out.push_str(&text[first + 1..point]);
                out.push_str(&text[point + 1..=last]);
            }
            _ => out.push_str(&text[first + 1..=last]),
        }
    }
    out.push('E');
    integer(out, i64::from(exponent + whole_digits - 1 - leading_zeros));
}

pub fn integer(out: &mut String, value: i64) {
    out.push_str(itoa::Buffer::new().format(value));
}

/// `CAST('2026-05-01T12:00:00.123' AS datetime)`: ISO 8601 with `T` reads the same whatever the
/// session's language or DATEFORMAT.
pub fn datetime(out: &mut String, value: WarehouseTime) {
    time(out, value, " AS datetime)");
}

/// [`datetime`] cast to another time type: `cast` is ` AS <type>)`.
pub fn time(out: &mut String, value: WarehouseTime, cast: &str) {
    out.push_str("CAST('");
    crate::text::push_millis(out, value.get());
    out.push('\'');
    out.push_str(cast);
}

/// `[name]` with every `]` doubled, for identifiers that come from settings (a user name).
pub fn identifier(value: &str) -> String {
    format!("[{}]", value.replace(']', "]]"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use sqlparser::ast::{Expr, SelectItem, SetExpr, Statement, Value};
    use sqlparser::dialect::MsSqlDialect;
    use sqlparser::parser::Parser;

    fn render(f: impl FnOnce(&mut String)) -> String {
        let mut out = String::new();
        f(&mut out);
        out
    }

    /// Parses `SELECT <expr>` and returns the single projected expression.
    fn parse_expr(sql_expr: &str) -> Expr {
        let statements = Parser::parse_sql(&MsSqlDialect {}, &format!("SELECT {sql_expr}"))
            .unwrap_or_else(|e| panic!("{sql_expr:?} does not parse: {e}"));
        assert_eq!(statements.len(), 1, "{sql_expr:?} must be one statement");
        let Statement::Query(query) = &statements[0] else {
            panic!("not a query")
        };
        let SetExpr::Select(select) = query.body.as_ref() else {
            panic!("not a select")
        };
        assert_eq!(
            select.projection.len(),
            1,
            "{sql_expr:?} must be one expression"
        );
        let SelectItem::UnnamedExpr(expr) = &select.projection[0] else {
            panic!("aliased")
        };
        expr.clone()
    }

    fn as_national_string(expr: &Expr) -> String {
        match expr {
            Expr::Value(v) => match &v.value {
                Value::NationalStringLiteral(s) => s.clone(),
                other => panic!("not a national string literal: {other:?}"),
            },
            other => panic!("not a literal: {other:?}"),
        }
    }

    #[test]
    fn quotes_are_doubled() {
        assert_eq!(render(|o| nstring(o, "O'Neil")), "N'O''Neil'");
        assert_eq!(
            render(|o| nstring(o, "'; DROP TABLE x; --")),
            "N'''; DROP TABLE x; --'"
        );
    }

    #[test]
    fn text_with_a_nul_becomes_one_utf16_binary_constant() {
        assert_eq!(
            render(|o| nstring(o, "a\0\'b")),
            "CAST(0x6100000027006200 AS nvarchar(max))"
        );
        // A character outside the BMP is a surrogate pair, low byte first.
        assert_eq!(
            render(|o| nstring(o, "\0😀")),
            "CAST(0x00003DD800DE AS nvarchar(max))"
        );
    }

    #[test]
    fn floats_carry_an_exponent() {
        assert_eq!(render(|o| float(o, 1.5)), "1.5E0");
        assert_eq!(render(|o| float(o, -0.00000025)), "-2.5E-7");
        // The reference's example reads back to the same bits (its shortest form ends in 4).
        let from_reference: f64 = "1.9001234567800003E7".parse().unwrap();
        let rendered = render(|o| float(o, from_reference));
        assert_eq!(
            rendered.parse::<f64>().unwrap().to_bits(),
            from_reference.to_bits()
        );
        assert_eq!(render(|o| float(o, 0.0)), "0E0");
    }

    #[test]
    fn floats_read_as_std_writes_them() {
        for value in [
            0.0,
            -0.0,
            1.0,
            10.0,
            123.0,
            0.1,
            1e16,
            1e22,
            1e23,
            5e-324,
            f64::MAX,
            f64::MIN_POSITIVE,
            -1.234e-300,
            9_007_199_254_740_993.0,
            12.5,
            0.000_123,
            // Exactly halfway between two shortest candidates: std rounds up.
            1_658_206_780_088_562.2,
            2.5e-1,
            9.5,
        ] {
            assert_eq!(render(|o| float(o, value)), format!("{value:E}"));
        }
        // Decimals as CoinCap writes them (16 fractional digits), over the magnitudes it sends.
        let mut state = 0x2545_F491_4F6C_DD1D_u64;
        for i in 0..100_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let text = format!(
                "{}.{:016}",
                state % 10u64.pow(i % 14),
                state % 10u64.pow(16)
            );
            let value: f64 = text.parse().unwrap();
            for value in [value, -value, value / 1e9] {
                assert_eq!(render(|o| float(o, value)), format!("{value:E}"), "{text}");
            }
        }
        // Many bit patterns, spread over every exponent.
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        for _ in 0..200_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let value = f64::from_bits(state);
            if value.is_finite() {
                assert_eq!(render(|o| float(o, value)), format!("{value:E}"));
            }
        }
    }

    #[test]
    fn datetimes_have_milliseconds() {
        let at = WarehouseTime::from_epoch_ms(1_680_191_532_104).unwrap();
        assert_eq!(
            render(|o| datetime(o, at)),
            "CAST('2023-03-30T15:52:12.104' AS datetime)"
        );
    }

    #[test]
    fn identifiers_double_closing_brackets() {
        assert_eq!(identifier("coincap-func"), "[coincap-func]");
        assert_eq!(identifier("a]b"), "[a]]b]");
    }

    /// What the pool stores for a rendered text constant: a national string literal as it reads,
    /// or `CAST(0x.. AS nvarchar(max))` decoded as UTF-16LE. Anything else fails the test.
    fn stored_text(expr: &Expr) -> String {
        match expr {
            Expr::Cast {
                expr, data_type, ..
            } => {
                assert_eq!(data_type.to_string().to_ascii_lowercase(), "nvarchar(max)");
                let Expr::Value(v) = expr.as_ref() else {
                    panic!("not a constant: {expr:?}")
                };
                let Value::HexStringLiteral(hex) = &v.value else {
                    panic!("not a binary constant: {v:?}")
                };
                assert_eq!(hex.len() % 4, 0, "whole UTF-16 code units");
                let units: Vec<u16> = (0..hex.len())
                    .step_by(4)
                    .map(|i| {
                        let byte = |j: usize| u8::from_str_radix(&hex[j..j + 2], 16).unwrap();
                        u16::from_le_bytes([byte(i), byte(i + 2)])
                    })
                    .collect();
                String::from_utf16(&units).expect("valid UTF-16")
            }
            literal => as_national_string(literal),
        }
    }

    /// Text up to `max` characters, with NULs, quotes and characters outside the BMP likely.
    fn any_text(max: usize) -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![
                2 => Just('\0'),
                2 => Just('\''),
                1 => Just('😀'),
                1 => Just(']'),
                10 => any::<char>(),
            ],
            0..max,
        )
        .prop_map(|chars| chars.into_iter().collect())
    }

    #[test]
    fn long_text_with_and_without_nul_is_one_constant_of_the_same_value() {
        for length in [4000, 4001, 8000, 8001, 100_000] {
            for text in ["a".repeat(length), format!("{}\0", "é'".repeat(length / 2))] {
                let rendered = render(|o| nstring(o, &text));
                assert_eq!(stored_text(&parse_expr(&rendered)), text);
                assert!(!rendered.contains('+'), "no concatenation");
            }
        }
    }

    proptest! {
        #[test]
        fn any_string_without_nul_renders_as_exactly_one_literal_of_the_same_value(value in "[^\0]{0,64}") {
            let rendered = render(|o| nstring(o, &value));
            prop_assert_eq!(as_national_string(&parse_expr(&rendered)), value);
        }

        #[test]
        fn any_text_renders_as_one_expression_the_pool_stores_exactly(value in any_text(64)) {
            let rendered = render(|o| nstring(o, &value));
            prop_assert_eq!(stored_text(&parse_expr(&rendered)), value);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn any_text_longer_than_4000_and_8000_characters_is_stored_exactly(value in any_text(12_000)) {
            let rendered = render(|o| nstring(o, &value));
            prop_assert_eq!(stored_text(&parse_expr(&rendered)), value);
        }
    }

    proptest! {

        #[test]
        fn any_finite_float_round_trips_exactly(value in proptest::num::f64::ANY.prop_filter("finite", |v| v.is_finite())) {
            let rendered = render(|o| float(o, value));
            let parsed: f64 = rendered.parse().unwrap();
            prop_assert_eq!(parsed.to_bits(), value.to_bits());
            // A negative number reads as unary minus applied to a number literal.
            let expr = match parse_expr(&rendered) {
                Expr::UnaryOp { op: sqlparser::ast::UnaryOperator::Minus, expr } => *expr,
                expr => expr,
            };
            let Expr::Value(v) = expr else { panic!("not a literal: {rendered}") };
            prop_assert!(matches!(v.value, Value::Number(..)), "{}", rendered);
        }

        #[test]
        fn any_finite_float_renders_as_std_s_exponent_form(bits in any::<u64>()) {
            let value = f64::from_bits(bits);
            prop_assume!(value.is_finite());
            prop_assert_eq!(render(|o| float(o, value)), format!("{value:E}"));
        }

        #[test]
        fn any_decimal_float_renders_as_std_s_exponent_form(digits in 0u64..10_000_000_000_000_000, scale in -30i32..30) {
            let value: f64 = format!("{digits}e{scale}").parse().unwrap();
            prop_assert_eq!(render(|o| float(o, value)), format!("{value:E}"));
            prop_assert_eq!(render(|o| float(o, -value)), format!("{:E}", -value));
        }

        #[test]
        fn any_integer_renders_as_a_number(value in proptest::num::i64::ANY) {
            let rendered = render(|o| integer(o, value));
            prop_assert_eq!(rendered.parse::<i64>().unwrap(), value);
            parse_expr(&rendered);
        }

        #[test]
        fn any_identifier_stays_one_identifier(value in "[^\0]{1,32}") {
            let rendered = identifier(&value);
            let statements = Parser::parse_sql(&MsSqlDialect {}, &format!("SELECT 1 AS {rendered}")).unwrap();
            prop_assert_eq!(statements.len(), 1);
            let Statement::Query(query) = &statements[0] else { panic!("not a query") };
            let SetExpr::Select(select) = query.body.as_ref() else { panic!("not a select") };
            let SelectItem::ExprWithAlias { alias, .. } = &select.projection[0] else { panic!("no alias") };
            prop_assert_eq!(&alias.value, &value);
        }
    }
}
