//! T-SQL literals: the injection boundary. Every value that reaches Synapse is rendered here, never
//! bound as a parameter (Synapse rejects tiberius' named `sp_executesql` parameters), so this module
//! is small, pure and property-tested: a rendered value parses back as exactly itself.

use std::fmt::Write as _;

use crate::domain::WarehouseTime;

/// `N'...'` with every `'` doubled. A NUL character cannot stand inside a literal, so a string
/// holding one is rendered as a concatenation with `NCHAR(0)` (only reject bodies can hold NUL:
/// row columns reject it earlier).
pub fn nstring(out: &mut String, value: &str) {
    let mut parts = value.split('\0');
    // `split` always yields at least one part.
    let first = parts.next().unwrap_or_default();
    quoted(out, first);
    for part in parts {
        out.push_str(" + NCHAR(0) + ");
        quoted(out, part);
    }
}

fn quoted(out: &mut String, value: &str) {
    out.reserve(value.len() + 3);
    out.push_str("N'");
    for c in value.chars() {
        if c == '\'' {
            out.push('\'');
        }
        out.push(c);
    }
    out.push('\'');
}

/// A finite float in its shortest form that reads back to the same bits (`1.5E0`, `-2.5E-7`).
/// The exponent makes T-SQL read it as `float`, not `decimal` (which would round).
pub fn float(out: &mut String, value: f64) {
    debug_assert!(
        value.is_finite(),
        "NaN and infinities are impossible by type"
    );
    // Writing into a String cannot fail.
    let _ = write!(out, "{value:E}");
}

pub fn integer(out: &mut String, value: i64) {
    let _ = write!(out, "{value}");
}

/// `CAST('2026-05-01T12:00:00.123' AS datetime)`: ISO 8601 with `T` reads the same whatever the
/// session's language or DATEFORMAT.
pub fn datetime(out: &mut String, value: WarehouseTime) {
    let _ = write!(out, "CAST('{value}' AS datetime)");
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
    fn nul_becomes_a_concatenation() {
        assert_eq!(render(|o| nstring(o, "a\0b")), "N'a' + NCHAR(0) + N'b'");
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

    proptest! {
        #[test]
        fn any_string_without_nul_renders_as_exactly_one_literal_of_the_same_value(value in "[^\0]{0,64}") {
            let rendered = render(|o| nstring(o, &value));
            prop_assert_eq!(as_national_string(&parse_expr(&rendered)), value);
        }

        #[test]
        fn any_string_with_nul_renders_as_pieces_of_the_same_value(value in "[a-z'\0]{0,16}") {
            let rendered = render(|o| nstring(o, &value));
            // Reassemble: every N'..' piece, joined by the NUL it stands for.
            let mut pieces = Vec::new();
            fn walk(expr: &Expr, pieces: &mut Vec<String>) {
                match expr {
                    Expr::BinaryOp { left, right, .. } => { walk(left, pieces); walk(right, pieces); }
                    Expr::Function(_) => {}
                    literal => pieces.push(as_national_string(literal)),
                }
            }
            walk(&parse_expr(&rendered), &mut pieces);
            prop_assert_eq!(pieces.join("\0"), value);
        }

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
