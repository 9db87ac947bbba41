//! The one check that what a user reads names this project's settings, flags and fixes, never a
//! library's types or fields: every test that runs the binary to a failure passes its output
//! through [`assert_user_words`] (the process helpers do it for every child they stop).

/// Names of libraries and their types that once reached a user's screen.
const LIBRARY_WORDS: &[&str] = &[
    "Config::",
    "Error::",
    "OtherError",
    "CaUsedAsEndEntity",
    "UnknownIssuer",
    "tiberius",
    "bb8",
    "rustls",
    "reqwest",
    "hyper::",
    "azure_core",
    "ManagedIdentityCredential",
    "DeveloperToolsCredential",
    "Credential authentication failed",
    "DataConversion",
    "Some(",
    "Os {",
    "kind: ",
];

/// Fails when `output` holds a library's name or a Debug-formatted value: `Name(` or `Name {`
/// where `Name` is a CamelCase identifier (two capitals or more, no space), as `{:?}` prints
/// enums and structs.
pub fn assert_user_words(output: &str) {
    for word in LIBRARY_WORDS {
        assert!(
            !output.contains(word),
            "a library's word {word:?} reached the user:\n{output}"
        );
    }
    for line in output.lines() {
        if let Some(debug) = debug_formatted(line) {
            panic!("a Debug-formatted value {debug:?} reached the user:\n{line}");
        }
    }
}

/// The first `CamelCase(` or `CamelCase {` of `line`.
fn debug_formatted(line: &str) -> Option<&str> {
    let bytes = line.as_bytes();
    let mut start = None;
    for (i, &byte) in bytes.iter().enumerate() {
        match (start, byte) {
            (None, b'A'..=b'Z') if i == 0 || !bytes[i - 1].is_ascii_alphanumeric() => {
                start = Some(i)
            }
            (Some(_), b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9') => {}
            (Some(from), b'(' | b' ') => {
                let name = &line[from..i];
                let opens = byte == b'(' || line[i..].starts_with(" { ");
                let camel = name.chars().filter(char::is_ascii_uppercase).count() >= 2
                    && name.chars().any(|c| c.is_ascii_lowercase());
                if opens && camel {
                    return Some(name);
                }
                start = None;
            }
            _ => start = None,
        }
    }
    None
}

#[test]
fn debug_formatted_values_and_library_names_are_found_and_sentences_pass() {
    assert_eq!(
        debug_formatted("invalid peer certificate: Other(OtherError(CaUsedAsEndEntity))"),
        Some("OtherError"),
        "Other( has one capital; OtherError( has two"
    );
    assert_eq!(debug_formatted("at OtherError(5)"), Some("OtherError"));
    assert_eq!(
        debug_formatted("error: TimedOut { elapsed: 1 }"),
        Some("TimedOut")
    );
    assert_eq!(
        debug_formatted("tick   1 | EventHubSink failed (failure 1; next try in 5s)"),
        None
    );
    assert_eq!(debug_formatted("TimerFetch/function.json (retry)"), None);
    let caught = std::panic::catch_unwind(|| assert_user_words("change Config::handshake_timeout"));
    assert!(caught.is_err());
    assert_user_words(
        "FAIL  settings: FETCH_SCHEDULE: \"*/5 * * * *\" is not a six-field NCRONTAB expression",
    );
}
