//! The links between README.md and the pages of docs/: every relative link names a file that
//! exists, and every `#anchor` a heading of the page it points into (the anchor GitHub makes of
//! it) or an explicit `<a id="...">`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::common::app_root;

/// README.md and every page of docs/.
fn pages() -> Vec<PathBuf> {
    let root = app_root();
    let mut pages = vec![root.join("README.md")];
    for entry in std::fs::read_dir(root.join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            pages.push(path);
        }
    }
    pages.sort();
    pages
}

/// The lines outside fenced code blocks (a `# comment` in a shell block is no heading).
fn prose_lines(text: &str) -> Vec<&str> {
    let mut fenced = false;
    let mut lines = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced {
            lines.push(line);
        }
    }
    lines
}

/// The anchor GitHub gives a heading: lower case, punctuation dropped (hyphens and underscores
/// kept), spaces made hyphens.
fn anchor(heading: &str) -> String {
    heading
        .trim_start_matches('#')
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// Every anchor a page has: its headings' (a repeated one gets `-1`, `-2`, as GitHub does) and
/// its explicit `<a id="...">`s.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut anchors = BTreeSet::new();
    for line in prose_lines(text) {
        if line.starts_with('#') {
            let base = anchor(line);
            let mut name = base.clone();
            let mut n = 0;
            while anchors.contains(&name) {
                n += 1;
                name = format!("{base}-{n}");
            }
            anchors.insert(name);
        }
        for (at, _) in line.match_indices("<a id=\"") {
            let rest = &line[at + "<a id=\"".len()..];
            if let Some(end) = rest.find('"') {
                anchors.insert(rest[..end].to_owned());
            }
        }
    }
    anchors
}

/// The targets of a page's links `[text](target)`, outside code blocks and code spans.
fn links(text: &str) -> Vec<String> {
    let mut targets = Vec::new();
    for line in prose_lines(text) {
        // The parts between backticks (odd ones) are code.
        for part in line.split('`').step_by(2) {
            for (at, _) in part.match_indices("](") {
                let rest = &part[at + 2..];
                if let Some(end) = rest.find(')') {
                    targets.push(rest[..end].trim().to_owned());
                }
            }
        }
    }
    targets
}

/// What is wrong with the relative links of `page` (whose text is `text`): a file that does not
/// exist, an anchor its page does not have.
fn broken_links(page: &Path, text: &str) -> Vec<String> {
    let mut broken = Vec::new();
    let dir = page.parent().unwrap();
    for target in links(text) {
        if target.contains("://") || target.starts_with("mailto:") {
            continue;
        }
        let (path, fragment) = match target.split_once('#') {
            Some((path, fragment)) => (path, Some(fragment)),
            None => (target.as_str(), None),
        };
        let linked = match path {
            "" => Some(text.to_owned()),
            path => {
                let file = dir.join(path);
                if !file.exists() {
                    broken.push(format!("{target}: no file {}", file.display()));
                    continue;
                }
                std::fs::read_to_string(&file).ok()
            }
        };
        let Some(fragment) = fragment else { continue };
        let Some(linked) = linked else {
            broken.push(format!("{target}: an anchor into what is not a page"));
            continue;
        };
        if !anchors(&linked).contains(fragment) {
            broken.push(format!("{target}: no heading or <a id> makes #{fragment}"));
        }
    }
    broken
}

#[test]
fn every_relative_link_between_the_readme_and_docs_resolves_to_a_file_and_an_anchor() {
    let mut broken = Vec::new();
    let mut checked = 0;
    for page in pages() {
        let text = std::fs::read_to_string(&page).unwrap();
        checked += links(&text).len();
        let name = page.strip_prefix(app_root()).unwrap().display().to_string();
        broken.extend(
            broken_links(&page, &text)
                .into_iter()
                .map(|why| format!("{name}: {why}")),
        );
    }
    assert!(checked > 50, "the links were found: {checked}");
    assert!(broken.is_empty(), "{broken:#?}");
}

#[test]
fn the_link_check_finds_a_renamed_heading_and_a_missing_page() {
    assert_eq!(
        anchor("## `handler local`: failures, stops and exit codes"),
        "handler-local-failures-stops-and-exit-codes"
    );
    assert_eq!(
        anchor("### The warehouses side by side"),
        "the-warehouses-side-by-side"
    );
    let page = app_root().join("docs").join("tutorial.md");
    let text = "[a](deploy.md#two-warehouses-side-by-side), [b](nowhere.md), [c](#here)\n\
                `[d](in-code.md)`\n```\n[e](in-a-block.md)\n```\n<a id=\"here\"></a>\n";
    assert_eq!(
        broken_links(&page, text).len(),
        2,
        "{:?}",
        broken_links(&page, text)
    );
}
