//! Process-level logging. The host logs each stdout line at Information and each stderr line at
//! Error (Warning when it contains "warn"), without an invocation id; per-invocation lines go in
//! the response's `Logs` array instead (see [`crate::functions::Invocation`]).

use std::io::IsTerminal;

use tracing::Level;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::writer::MakeWriterExt;

/// WARN and ERROR to stderr, the rest to stdout; `RUST_LOG` filters (default `info`).
pub fn init() {
    init_with(&[]);
}

/// [`init`] for a command a person runs at a terminal (`local`, `check`, `init-warehouse`), which
/// says each failure once, in its own words: tiberius' error events and the Azure SDK's notes
/// (which credential it picked) are off whatever `RUST_LOG` says, and so are `off`'s targets.
pub fn init_for_terminal(off: &[&str]) {
    let mut directives = vec![
        "tiberius=off".to_owned(),
        "azure_identity=warn".to_owned(),
        "azure_core=warn".to_owned(),
    ];
    directives.extend(off.iter().map(|target| format!("{target}=off")));
    init_with(&directives);
}

fn init_with(directives: &[String]) {
    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    for directive in directives {
        if let Ok(directive) = directive.parse() {
            filter = filter.add_directive(directive);
        }
    }
    let writer = std::io::stderr
        .with_max_level(Level::WARN)
        .or_else(std::io::stdout);
    // Ignore a second initialisation (tests that call `init` more than once).
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}
