//! .funcignore: publishing from the repository root uploads only what the Functions host needs.
//! The matcher below follows Core Tools' `GitIgnoreParser` (Azure/azure-functions-core-tools,
//! src/Cli/func/Common/GitIgnoreParser.cs, a port of codemix/gitignore-parser): each pattern becomes
//! the regular expression `^(pattern)\b` with `*` as `[^/]+`, and a path is published unless one
//! matches. Patterns using anything else (`!`, `**`, `?`, `[`) are refused here, so the emulation
//! stays exact.

use super::git_files;
use crate::common::app_root;

/// What the host needs: host.json names `handler`; each function is a folder with function.json.
const NEEDED: [&str; 4] = [
    "handler",
    "host.json",
    "TimerFetch/function.json",
    "EventHubSink/function.json",
];

/// Files a working tree holds besides the clone's: build outputs, local settings, local databases.
const BUILD_OUTPUTS: [&str; 12] = [
    "handler",
    "target/release/handler",
    "target/x86_64-unknown-linux-musl/release/handler",
    "dist/app/handler",
    "dist/app/host.json",
    "dist/coincap-stream.zip",
    "local.settings.json",
    "coincap.db",
    "coincap.db-wal",
    "coincap.db-shm",
    ".git/HEAD",
    ".vscode/settings.json",
];

fn patterns() -> Vec<String> {
    std::fs::read_to_string(app_root().join(".funcignore"))
        .unwrap()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.trim_start_matches('/').to_owned())
        .collect()
}

fn word(c: Option<u8>) -> bool {
    c.is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// Every end position at which `pattern` matches a prefix of `path` (`*` = one or more non-`/`).
fn ends(pattern: &[u8], path: &[u8], from: usize, out: &mut Vec<usize>) {
    match pattern.split_first() {
        None => out.push(from),
        Some((b'*', rest)) => {
            let mut end = from;
            while end < path.len() && path[end] != b'/' {
                end += 1;
                ends(rest, path, end, out);
            }
        }
        Some((c, rest)) => {
            if path.get(from) == Some(c) {
                ends(rest, path, from + 1, out);
            }
        }
    }
}

/// Core Tools' `Denies`: `^(pattern)\b` matches.
fn denied(patterns: &[String], path: &str) -> bool {
    let bytes = path.as_bytes();
    patterns.iter().any(|p| {
        let mut found = Vec::new();
        ends(p.as_bytes(), bytes, 0, &mut found);
        found.into_iter().any(|e| {
            let before = e.checked_sub(1).map(|i| bytes[i]);
            word(before) != word(bytes.get(e).copied())
        })
    })
}

#[test]
fn the_matcher_behaves_like_core_tools_gitignore_parser() {
    let p = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert!(denied(&p(&["src"]), "src/main.rs"));
    assert!(denied(&p(&["src"]), "src"));
    assert!(
        !denied(&p(&["src"]), "srcs/x"),
        "a word boundary must follow"
    );
    assert!(denied(&p(&["host"]), "host.json"), "`.` is a word boundary");
    assert!(denied(&p(&["*.db"]), "coincap.db-wal"));
    assert!(
        !denied(&p(&["*.db"]), "data/coincap.db"),
        "`*` stays in one folder"
    );
    assert!(denied(&p(&[".git*"]), ".gitignore"));
    assert!(
        !denied(&p(&[".git*"]), ".git/HEAD"),
        "`*` needs one character"
    );
    assert!(
        !denied(&p(&["docs"]), "TimerFetch/docs"),
        "anchored at the start"
    );
}

#[test]
fn funcignore_uses_only_what_the_matcher_emulates() {
    for p in patterns() {
        assert!(
            !p.starts_with('!') && !p.contains("**") && !p.contains(['?', '[', ']', '\\']),
            "{p}"
        );
    }
}

#[test]
fn publishing_from_the_repository_root_uploads_only_what_the_host_needs() {
    let patterns = patterns();
    let mut files = git_files();
    assert!(
        files.iter().any(|f| f == "Cargo.toml"),
        "git ls-files works"
    );
    files.extend(BUILD_OUTPUTS.iter().map(|f| f.to_string()));
    let mut published: Vec<&str> = files
        .iter()
        .map(String::as_str)
        .filter(|f| !denied(&patterns, f))
        .collect();
    published.sort_unstable();
    published.dedup();
    let mut needed = NEEDED.to_vec();
    needed.sort_unstable();
    assert_eq!(published, needed);
}

#[test]
fn the_host_needs_what_the_funcignore_test_keeps() {
    // The executable host.json starts and the function folders it serves are the NEEDED files.
    let host: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(app_root().join("host.json")).unwrap())
            .unwrap();
    assert!(
        NEEDED.contains(
            &host["customHandler"]["description"]["defaultExecutablePath"]
                .as_str()
                .unwrap()
        )
    );
    for entry in std::fs::read_dir(app_root()).unwrap() {
        let path = entry.unwrap().path();
        if path.join("function.json").is_file() {
            let function = path.file_name().unwrap().to_str().unwrap();
            assert!(
                NEEDED.contains(&format!("{function}/function.json").as_str()),
                "{function}"
            );
        }
    }
}
