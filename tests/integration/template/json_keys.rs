//! Every JSON file the app ships or documents has no duplicate key. serde_json (like the Functions
//! host's reader) silently keeps the last of two equal keys, so a duplicate hides a setting.

use std::collections::HashSet;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

use super::git_files;
use crate::common::app_root;

/// A JSON value read only to prove that no object in it repeats a key.
struct NoDuplicateKeys;

impl<'de> Deserialize<'de> for NoDuplicateKeys {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NoDuplicateKeys)
    }
}

impl<'de> Visitor<'de> for NoDuplicateKeys {
    type Value = NoDuplicateKeys;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(de::Error::custom(format!("duplicate key {key:?}")));
            }
            map.next_value::<NoDuplicateKeys>()?;
        }
        Ok(NoDuplicateKeys)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<NoDuplicateKeys>()?.is_some() {}
        Ok(NoDuplicateKeys)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
}

fn check(text: &str) -> Result<(), String> {
    serde_json::from_str::<NoDuplicateKeys>(text)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[test]
fn the_checker_finds_a_duplicate_key_at_any_depth_and_accepts_repeats_in_other_objects() {
    assert!(check(r#"{"a": 1, "b": {"c": [1, {"d": null}]}}"#).is_ok());
    assert!(check(r#"{"a": {"x": 1}, "b": {"x": 2}}"#).is_ok());
    let error = check(r#"{"Values": {"K": "", "L": true, "K": ""}}"#).unwrap_err();
    assert!(error.contains("duplicate key \"K\""), "{error}");
    assert!(error.contains("line 1"), "{error}");
    assert!(check(r#"[{"a": 1, "a": 2}]"#).is_err());
}

#[test]
fn no_json_file_of_the_repository_repeats_a_key() {
    let files: Vec<String> = git_files()
        .into_iter()
        .filter(|f| f.ends_with(".json") || f.ends_with(".json.example"))
        .collect();
    for expected in [
        "host.json",
        "TimerFetch/function.json",
        "EventHubSink/function.json",
        "local.settings.json.example",
        "infra/azuredeploy.json",
        "infra/azuredeploy.parameters.json",
        "monitoring/workbook.json",
    ] {
        assert!(files.iter().any(|f| f == expected), "{expected} is checked");
    }
    for file in files {
        let text = std::fs::read_to_string(app_root().join(&file)).unwrap();
        check(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
    }
}
