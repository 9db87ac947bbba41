//! monitoring/queries.kql, monitoring/workbook.json and the template's alert rules read keys out of
//! the handler's log lines: each key they read must be one the handler really writes.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::common::coincap::{CoinCap, Reply, page, realistic_assets};
use crate::common::run::Binary;
use crate::common::{app_root, sink_payload, timer_payload};

/// The keys the issue promises in every operator's queries.
const STABLE_KEYS: [&str; 9] = [
    "function",
    "events_in",
    "rows_written",
    "duplicates",
    "rejects",
    "lag_ms",
    "elapsed_ms",
    "coincap_status",
    "retries",
];

fn read(path: &str) -> String {
    std::fs::read_to_string(app_root().join(path)).unwrap()
}

/// Keys a query reads: every `\bkey=` (the pattern the queries use in `extract`).
fn keys_read(text: &str) -> BTreeSet<String> {
    text.match_indices("\\b")
        .filter_map(|(at, _)| {
            let rest = &text[at + 2..];
            let end = rest.find(|c: char| !(c.is_ascii_lowercase() || c == '_'))?;
            (end > 0 && rest[end..].starts_with('=')).then(|| rest[..end].to_owned())
        })
        .collect()
}

fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|i| strings(i, out)),
        Value::Object(map) => map.values().for_each(|i| strings(i, out)),
        _ => {}
    }
}

/// Every string of a JSON file (the workbook's and the alert rules' queries among them).
fn json_strings(path: &str) -> String {
    let mut out = Vec::new();
    strings(&serde_json::from_str(&read(path)).unwrap(), &mut out);
    out.join("\n")
}

/// The queries of queries.kql, by title (`// ==== <title>` opens each).
fn kql_queries() -> Vec<(String, String)> {
    let text = read("monitoring/queries.kql");
    text.split("// ==== ")
        .skip(1)
        .map(|section| {
            let (title, body) = section.split_once('\n').unwrap();
            (title.trim().to_owned(), body.trim().to_owned())
        })
        .collect()
}

fn squeeze(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// What the real binary writes where Application Insights picks it up: the `Logs` of successful
/// invocations and stderr (failed invocations), for a fetch, a batch with a poison event, a fetch
/// refused because the credits are spent, and a fetch that fails after a retry.
async fn handler_output() -> String {
    let coincap = CoinCap::start(
        vec![
            Reply::ok(page(1_747_000_000_000, &realistic_assets())),
            Reply::status(402, r#"{"error":"Out of credits"}"#),
        ],
        Reply::status(503, "unavailable"),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut handler = Binary::serve()
        .coincap(&coincap)
        .sqlite(&dir.path().join("w.db"))
        .env("COINCAP_MAX_RETRIES", "1")
        .start()
        .await;
    let mut logs = Vec::new();

    let fetched = handler
        .post("TimerFetch", timer_payload().to_string())
        .await;
    assert_eq!(fetched.status, 200);
    logs.extend(fetched.logs());
    let mut events = fetched.events();
    events.push("not json".into());

    let sunk = handler
        .post("EventHubSink", sink_payload(&events, 7).to_string())
        .await;
    assert_eq!(sunk.status, 200);
    logs.extend(sunk.logs());

    let spent = handler
        .post("TimerFetch", timer_payload().to_string())
        .await;
    assert_eq!(spent.status, 502);

    let failed = handler
        .post("TimerFetch", timer_payload().to_string())
        .await;
    assert_eq!(failed.status, 502);

    let stderr = handler.stop("-TERM").await.stderr;
    assert!(
        stderr.contains("Invocation failed. function=TimerFetch coincap_status=503 retries=1"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "Invocation failed. function=TimerFetch coincap_status=402 retries=0 limit=coincap_credits"
        ),
        "{stderr}"
    );
    logs.push(stderr);
    logs.join("\n")
}

fn writes(output: &str, key: &str) -> bool {
    let pair = format!("{key}=");
    output
        .lines()
        .flat_map(|line| line.split_whitespace())
        .any(|word| word.starts_with(&pair))
}

#[test]
fn the_key_reader_finds_the_keys_in_an_extract_pattern() {
    let keys = keys_read(
        r#"| extend x = extract(@"\brows_written=(\d+)", 1, message) // \d+ \bnot a key"#,
    );
    assert_eq!(keys, BTreeSet::from(["rows_written".to_owned()]));
}

#[test]
fn the_queries_read_every_stable_key() {
    let keys = keys_read(&read("monitoring/queries.kql"));
    for key in STABLE_KEYS {
        assert!(keys.contains(key), "queries.kql reads {key}");
    }
}

/// Every text that holds queries: the queries file, the workbook's strings, the template's
/// strings (its alert rules).
fn query_sources() -> [(&'static str, String); 3] {
    [
        ("monitoring/queries.kql", read("monitoring/queries.kql")),
        (
            "monitoring/workbook.json",
            json_strings("monitoring/workbook.json"),
        ),
        (
            "infra/azuredeploy.json",
            json_strings("infra/azuredeploy.json"),
        ),
    ]
}

#[tokio::test]
async fn every_key_the_queries_workbook_and_alerts_read_is_one_the_handler_writes() {
    let output = handler_output().await;
    let sources = query_sources();
    for (path, text) in sources {
        let keys = keys_read(&text);
        assert!(!keys.is_empty(), "{path} reads keys");
        let missing: Vec<_> = keys.iter().filter(|k| !writes(&output, k)).collect();
        assert!(
            missing.is_empty(),
            "{path} reads {missing:?}, which the handler never writes:\n{output}"
        );
    }
}

#[test]
fn the_workbook_charts_the_queries_of_queries_kql() {
    let workbook: Value = serde_json::from_str(&read("monitoring/workbook.json")).unwrap();
    assert_eq!(workbook["version"], "Notebook/1.0");
    let queries: Vec<String> = kql_queries().iter().map(|(_, q)| squeeze(q)).collect();
    let charted: Vec<&Value> = workbook["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|item| item["type"] == 3)
        .collect();
    assert!(charted.len() >= 6, "a chart per operator question");
    for item in charted {
        let query = item["content"]["query"].as_str().unwrap();
        assert!(
            queries.contains(&squeeze(query)),
            "workbook query is not in queries.kql: {query}"
        );
        assert_eq!(
            item["content"]["resourceType"],
            "microsoft.insights/components"
        );
    }
}

/// Every comparison on the `success` column in a query text (comment lines aside), as written:
/// from the expression that holds `success` to the value it is compared with.
fn success_comparisons(text: &str) -> Vec<String> {
    let code: String = text
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let lower = code.to_ascii_lowercase();
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    lower
        .match_indices("success")
        .filter(|(at, _)| {
            let before = lower[..*at].chars().next_back();
            let after = lower[at + "success".len()..].chars().next();
            !before.is_some_and(word) && !after.is_some_and(word)
        })
        .map(|(at, _)| {
            let start = lower[..at].rfind(['(', ' ', '\n']).map_or(0, |i| i + 1);
            let start = if lower[..start].ends_with("tostring(") {
                start - "tostring(".len()
            } else {
                start
            };
            let end = lower[at..]
                .find(['\n', '|'])
                .map_or(lower.len(), |i| at + i);
            let comparison = code[start..end].trim();
            // Up to the compared value: the closing quote of `"false"`, or the word after `==`.
            let cut = comparison
                .find("\"false\"")
                .map(|i| i + "\"false\"".len())
                .or_else(|| comparison.find(" by ").or_else(|| comparison.find(" and ")))
                .unwrap_or(comparison.len());
            comparison[..cut].trim_end_matches(')').to_owned()
        })
        .collect()
}

#[test]
fn the_success_reader_finds_each_comparison_as_written() {
    assert_eq!(
        success_comparisons("requests\n| summarize f = countif(success == false) by name"),
        ["success == false"]
    );
    assert_eq!(
        success_comparisons(
            "// success == false in a comment\nrequests | where name in (\"a\") and tostring(success) =~ \"false\"\n| project successful_rate"
        ),
        ["tostring(success) =~ \"false\""]
    );
}

/// `success` is a string in the classic `requests` table and a bool in the workspace's
/// `AppRequests` (Microsoft Learn, "Migrate to workspace-based Application Insights resources",
/// table structure): `success == false` never matches the string, `success == "False"` never the
/// bool. `tostring(success) =~ "false"` holds for both.
#[test]
fn failures_are_counted_alike_in_the_queries_the_workbook_and_the_alert_for_both_schemas() {
    let sources = query_sources();
    for (path, text) in sources {
        let comparisons = success_comparisons(&text);
        assert!(!comparisons.is_empty(), "{path} counts failed requests");
        for comparison in comparisons {
            assert_eq!(
                comparison, "tostring(success) =~ \"false\"",
                "{path}: a comparison that holds for one schema only"
            );
        }
    }
}
