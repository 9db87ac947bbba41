//! Keeps the codebase as the architecture says (see the README's layout): the module graph stays
//! acyclic, no test reports `ok` without having run (a missing prerequisite is `#[ignore]`), and
//! no file grows past about 400 lines of code without a stated reason.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::common::app_root;

/// Lines of code (a source file's test module not counted) a file may hold.
const MAX_LINES: usize = 400;

/// Files allowed past [`MAX_LINES`], each with its reason.
const LONG_FILES: &[(&str, &str)] = &[
    (
        "tests/integration/template.rs",
        "one test per deployment defect the template must never have again",
    ),
    (
        "tests/integration/key_vault.rs",
        "one end-to-end test per Key Vault failure mode, against HTTPS and identity stand-ins",
    ),
    (
        "tests/integration/template/arm.rs",
        "an evaluator of the ARM expression language the template uses, so tests run its conditions",
    ),
    (
        "benches/compare.rs",
        "the comparison bench: handler and the tutorial's producer measured side by side in one run",
    ),
];

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The text before the file's test module: what the module graph and the size limit are about.
fn code_of(text: &str) -> &str {
    let mut at = 0;
    while let Some(found) = text[at..].find("#[cfg(test)]") {
        let attribute = at + found;
        let after = text[attribute + "#[cfg(test)]".len()..].trim_start();
        if after.starts_with("mod ") {
            return &text[..attribute];
        }
        at = attribute + 1;
    }
    text
}

/// The top-level module a file of `src/` belongs to (`src/warehouse/sqlite.rs` -> `warehouse`).
fn top_module(src: &Path, file: &Path) -> Option<String> {
    let relative = file.strip_prefix(src).ok()?;
    let first = relative.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (!matches!(name, "lib" | "main")).then(|| name.to_owned())
}

/// Top-level module -> the top-level modules its code (tests aside) names through `crate::`.
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = app_root().join("src");
    let files = rust_files(&src);
    let modules: BTreeSet<String> = files.iter().filter_map(|f| top_module(&src, f)).collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let Some(from) = top_module(&src, file) else {
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        let uses = graph.entry(from.clone()).or_default();
        for (at, _) in code_of(&text).match_indices("crate::") {
            let rest = &text[at + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if name != from && modules.contains(&name) {
                uses.insert(name);
            }
            // `use crate::{a, b::c}`
            if rest.starts_with('{') {
                let group = &rest[1..rest.find('}').unwrap_or(rest.len())];
                for item in group.split(',') {
                    let name = item.trim().split("::").next().unwrap_or_default();
                    if name != from && modules.contains(name) {
                        uses.insert(name.to_owned());
                    }
                }
            }
        }
    }
    graph
}

/// A cycle through the graph, if there is one, as the path of modules around it.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|n| n == node) {
            let mut cycle = path[start..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

#[test]
fn the_module_graph_is_acyclic() {
    let graph = module_graph();
    assert!(
        graph
            .get("functions")
            .is_some_and(|uses| uses.contains("warehouse")),
        "the reader sees the graph: {graph:?}"
    );
    if let Some(cycle) = find_cycle(&graph) {
        panic!(
            "module cycle {}: each module owns its settings and takes narrow handles (graph: {graph:?})",
            cycle.join(" -> ")
        );
    }
}

#[test]
fn the_cycle_finder_finds_a_cycle() {
    let graph = BTreeMap::from([
        ("a".to_owned(), BTreeSet::from(["b".to_owned()])),
        ("b".to_owned(), BTreeSet::from(["c".to_owned()])),
        ("c".to_owned(), BTreeSet::from(["a".to_owned()])),
        ("d".to_owned(), BTreeSet::new()),
    ]);
    assert_eq!(
        find_cycle(&graph),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    let acyclic = BTreeMap::from([
        ("a".to_owned(), BTreeSet::from(["b".to_owned()])),
        ("b".to_owned(), BTreeSet::new()),
    ]);
    assert_eq!(find_cycle(&acyclic), None);
}

/// Where a test could end early and still be reported `ok`: a `return` in an `else` (a
/// prerequisite checked and found missing) or a printed "skipped" notice. Read with white space
/// removed, so a pattern spread over several lines is found too; answers line numbers.
fn early_exits(text: &str) -> Vec<usize> {
    let mut squeezed = String::new();
    let mut line_of = Vec::new();
    for (number, line) in text.lines().enumerate() {
        for c in line.chars().filter(|c| !c.is_whitespace()) {
            squeezed.push(c.to_ascii_lowercase());
            line_of.push(number + 1);
        }
    }
    let mut found: Vec<usize> = ["else{return}", "else{return;}", "!(\"skipped"]
        .iter()
        .flat_map(|pattern| squeezed.match_indices(pattern).map(|(at, _)| line_of[at]))
        .collect();
    found.sort_unstable();
    found
}

#[test]
fn no_test_ends_early_and_reports_ok() {
    assert_eq!(early_exits("let Some(x) = y else { return };\nok"), [1]);
    assert_eq!(
        early_exits("ok\nlet Some(x) = y else {\n    return;\n};"),
        [2]
    );
    assert_eq!(early_exits("eprintln!(\n    \"Skipped: no server\");"), [1]);
    let root = app_root();
    let mut found = Vec::new();
    for dir in ["tests", "src"] {
        for file in rust_files(&root.join(dir)) {
            if file.ends_with("architecture.rs") {
                continue;
            }
            let text = std::fs::read_to_string(&file).unwrap();
            let text = if dir == "src" {
                // Only src's test modules are tests.
                text.find("#[cfg(test)]").map_or("", |at| &text[at..])
            } else {
                text.as_str()
            };
            for line in early_exits(text) {
                found.push(format!("{}:{line}", file.display()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "a test whose prerequisite is missing is #[ignore = \"why\"], never an early ok: {found:?}"
    );
}

#[test]
fn no_file_grows_past_about_400_lines_without_a_reason() {
    // A test-only item before the test module counts as code: only the module ends it.
    let text = "a\n#[cfg(test)]\nfn helper() {}\nb\n#[cfg(test)]\nmod tests {}\n";
    assert_eq!(code_of(text), "a\n#[cfg(test)]\nfn helper() {}\nb\n");
    assert_eq!(code_of("a\n"), "a\n");
    let root = app_root();
    let mut long = Vec::new();
    for dir in ["src", "tests", "benches"] {
        for file in rust_files(&root.join(dir)) {
            let text = std::fs::read_to_string(&file).unwrap();
            let lines = code_of(&text).lines().count();
            let name = file
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if lines > MAX_LINES && !LONG_FILES.iter().any(|(long, _)| *long == name) {
                long.push(format!("{name}: {lines} lines"));
            }
        }
    }
    assert!(
        long.is_empty(),
        "split these along their parts, or add each to LONG_FILES with its reason: {long:?}"
    );
}
