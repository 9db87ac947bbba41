//! Process-level logging. The host logs each stdout line at Information and each stderr line at
//! Error (Warning when it contains "warn"), without an invocation id; per-invocation lines go in
//! the response's `Logs` array instead (see [`crate::functions::Invocation`]).

use std::io::IsTerminal;

use tracing::Level;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::writer::MakeWriterExt;

/// WARN and ERROR to stderr, the rest to stdout; `RUST_LOG` filters (default `info`).
pub fn init() {
    init_quiet(&[]);
}

/// [`init`] with these log targets off whatever `RUST_LOG` says: the local runner prints its own
/// line for each failed invocation, so the handler's line and tiberius' own error events (the
/// same failure again) would repeat it.
pub fn init_quiet(targets: &[&str]) {
    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    for target in targets {
        if let Ok(directive) = format!("{target}=off").parse() {
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
