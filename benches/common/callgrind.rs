//! Instruction counts from valgrind's callgrind: unlike time, they hardly move on a busy machine,
//! and they compare across machines of the same architecture. A figure is the difference between
//! a run doing the work `n` times and the same run doing it 0 times, divided by `n`, so start-up
//! and set-up cancel out.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Whether `valgrind` runs here.
pub fn available() -> bool {
    Command::new("valgrind")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// `program` under callgrind, writing its counts (all threads together) to `out`.
pub fn command(program: &Path, out: &Path) -> Command {
    let mut command = Command::new("valgrind");
    command
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(program);
    command
}

/// The instructions a finished callgrind run counted.
pub fn total(out: &Path) -> u64 {
    let text = std::fs::read_to_string(out)
        .unwrap_or_else(|e| panic!("callgrind's output {}: {e}", out.display()));
    text.lines()
        .find_map(|line| {
            line.strip_prefix("summary:")
                .or(line.strip_prefix("totals:"))
        })
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no totals in {}", out.display()))
}

/// Instructions per repetition of the work `run(n)` does `n` times: `(run(n) - run(0)) / n`.
pub fn per_repetition(n: u64, mut run: impl FnMut(u64) -> u64) -> u64 {
    let base = run(0);
    run(n).saturating_sub(base) / n
}

/// Stops a program started under callgrind with SIGTERM (so it exits and callgrind writes its
/// counts) and waits for it.
pub fn terminate(child: &mut Child) {
    // SAFETY: kill has no memory-safety preconditions; the pid is our own unreaped child.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let status = child.wait().expect("the program under callgrind exits");
    assert!(status.success() || status.code().is_some(), "{status}");
}

/// This executable, to run a piece of work of its own under callgrind.
pub fn this_executable() -> PathBuf {
    std::env::current_exe().expect("the bench's own path")
}
