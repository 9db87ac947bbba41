//! Process-level logging. The host logs each stdout line at Information and each stderr line at
//! Error (Warning when it contains "warn"), without an invocation id; per-invocation lines go in
//! the response's `Logs` array instead (see [`crate::functions::Invocation`]).

use std::io::IsTerminal;

use tracing::Level;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::writer::MakeWriterExt;

/// WARN and ERROR to stderr, the rest to stdout; `RUST_LOG` filters (default `info`). As at a
/// terminal, the libraries' own notes are off or at WARN: tiberius logs each error the server
/// sends at ERROR, including the ones the writer expects and handles (the NUL probe's refusal),
/// and the Azure SDK says which credential it picked in its own types; the handler reports
/// every error it acts on in its own words.
pub fn init() {
    init_with(&terminal_directives(&[]));
}

/// [`init`] for a command a person runs at a terminal (`local`, `check`, `init-warehouse`), which
/// says each failure once, in its own words: tiberius' error events and the Azure SDK's notes
/// (which credential it picked) are off whatever `RUST_LOG` says, and so are `off`'s targets.
pub fn init_for_terminal(off: &[&str]) {
    init_with(&terminal_directives(off));
}

/// Where `handler local` sends its log (`--log`): its screen is its own sentences, so the log
/// goes elsewhere or nowhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogTo {
    /// `--log stderr`.
    Stderr,
    /// `--log FILE`: appended to.
    File(std::path::PathBuf),
}

impl std::str::FromStr for LogTo {
    type Err = std::convert::Infallible;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(match text {
            "stderr" | "-" => Self::Stderr,
            path => Self::File(path.into()),
        })
    }
}

/// The log of `handler local`: off without `--log`; else to standard error or appended to a
/// file, filtered as [`init_for_terminal`] does. A file that cannot be opened is an error naming
/// it.
pub fn init_for_local(log: Option<&LogTo>, off: &[&str]) -> std::io::Result<()> {
    let directives = terminal_directives(off);
    let filter = filter(&directives);
    match log {
        None => {}
        Some(LogTo::Stderr) => {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal())
                .with_target(false)
                .try_init();
        }
        Some(LogTo::File(path)) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|error| {
                    std::io::Error::new(error.kind(), format!("{}: {error}", path.display()))
                })?;
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(std::sync::Mutex::new(file))
                .with_ansi(false)
                .with_target(false)
                .try_init();
        }
    }
    Ok(())
}

fn terminal_directives(off: &[&str]) -> Vec<String> {
    let mut directives = vec![
        "tiberius=off".to_owned(),
        "azure_identity=warn".to_owned(),
        "azure_core=warn".to_owned(),
        "typespec_client_core=warn".to_owned(),
    ];
    directives.extend(off.iter().map(|target| format!("{target}=off")));
    directives
}

/// `RUST_LOG` (default `info`) with `directives` added.
fn filter(directives: &[String]) -> EnvFilter {
    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    for directive in directives {
        if let Ok(directive) = directive.parse() {
            filter = filter.add_directive(directive);
        }
    }
    filter
}

fn init_with(directives: &[String]) {
    let filter = filter(directives);
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
