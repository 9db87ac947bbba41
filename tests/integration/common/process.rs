//! A running `handler serve` child: it binds a port of its own choosing (port 0, so no other
//! process can take it between a test choosing it and the handler binding it), the test reads the
//! port from its start-up line, and its output is collected as it comes (a full pipe would block
//! it). One way to stop a child: a signal, then a bounded wait. [`Spawned`] does the same for any
//! other command (`handler local`).

use std::process::ExitStatus;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};

use super::Answer;

/// How long a child gets to stop after a signal.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Running {
    spawned: Spawned,
    pub port: u16,
    /// Every answer's body, as text, for leak checks.
    pub bodies: Vec<String>,
}

/// What a stopped handler left: its exit status and everything it wrote.
pub struct Stopped {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Stopped {
    /// Fails if anything it wrote holds one of `secrets`.
    pub fn assert_never_shown(&self, secrets: &[&str]) {
        for secret in secrets {
            assert!(
                !self.stdout.contains(secret) && !self.stderr.contains(secret),
                "{secret} was printed:\n{}\n{}",
                self.stdout,
                self.stderr
            );
        }
    }
}

impl Running {
    /// Waits until `spawned` (a `handler serve` on port 0) listens.
    pub async fn listening(mut spawned: Spawned) -> Self {
        let mut port = None;
        for _ in 0..1200 {
            let (stdout, stderr) = spawned.output();
            port = listening_port(&stdout);
            if port.is_some() {
                break;
            }
            if let Some(status) = spawned.child.try_wait().unwrap() {
                panic!("the handler exited ({status}) before listening: {stderr}");
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let port = port.unwrap_or_else(|| {
            panic!(
                "the handler never said where it listens: {}",
                spawned.output().0
            )
        });
        super::wait_ready(port).await;
        Self {
            spawned,
            port,
            bodies: Vec::new(),
        }
    }

    /// Posts `body` to a function the way the host does.
    pub async fn post(&mut self, function: &str, body: String) -> Answer {
        let response = reqwest::Client::new()
            .post(format!("http://127.0.0.1:{}/{function}", self.port))
            .header("Content-Type", "application/json")
            .header(
                "X-Azure-Functions-InvocationId",
                "00000000-0000-4000-8000-00000000000a",
            )
            .header("User-Agent", "Azure-Functions-Host/4.x")
            .body(body)
            .send()
            .await
            .unwrap();
        let answer = Answer::read(response).await;
        self.bodies.push(answer.body.to_string());
        answer
    }

    /// The process id, for reading what it uses from `/proc`.
    pub fn pid(&self) -> u32 {
        self.spawned.child.id().expect("the handler is running")
    }

    /// Kills it (`SIGKILL`): no chance to finish anything, as when its machine dies.
    pub async fn kill(mut self) {
        self.spawned.child.kill().await.unwrap();
    }

    /// Stops it with `signal`, as the host (`-TERM`) or a developer (`-INT`) does, and waits at
    /// most 10 seconds for it to exit.
    pub async fn stop(self, signal: &str) -> Stopped {
        self.spawned.signal(signal);
        self.spawned.finish(STOP_TIMEOUT).await
    }
}

/// Any `handler` child (`local`, say), its output collected as it comes, so a test can wait for a
/// line, send a signal and time how long the child takes to stop.
pub struct Spawned {
    child: Child,
    /// Whether its output is held to a user's words: not when `RUST_LOG` asks for the
    /// libraries' own debug or trace detail.
    user_words: bool,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<tokio::task::JoinHandle<()>>,
    /// What must outlive the child (a temporary warehouse directory).
    kept: Vec<tempfile::TempDir>,
}

impl Spawned {
    pub fn start(mut command: Command) -> Self {
        let user_words = !command.as_std().get_envs().any(|(key, value)| {
            key == "RUST_LOG"
                && value.is_some_and(|v| {
                    let v = v.to_string_lossy();
                    v.contains("debug") || v.contains("trace")
                })
        });
        let mut child = command.spawn().unwrap();
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let readers = vec![
            collect(child.stdout.take().unwrap(), Arc::clone(&stdout)),
            collect(child.stderr.take().unwrap(), Arc::clone(&stderr)),
        ];
        Self {
            child,
            user_words,
            stdout,
            stderr,
            readers,
            kept: Vec::new(),
        }
    }

    /// Keeps `dirs` until the child is gone.
    pub fn keeping(mut self, dirs: Vec<tempfile::TempDir>) -> Self {
        self.kept = dirs;
        self
    }

    /// What it wrote so far: (stdout, stderr).
    pub fn output(&self) -> (String, String) {
        (
            self.stdout.lock().unwrap().clone(),
            self.stderr.lock().unwrap().clone(),
        )
    }

    /// Waits until `seen(stdout, stderr)` holds, at most `timeout` (then fails, showing both).
    pub async fn wait_for(&self, timeout: Duration, seen: impl Fn(&str, &str) -> bool) {
        let started = std::time::Instant::now();
        loop {
            let (stdout, stderr) = self.output();
            if seen(&stdout, &stderr) {
                return;
            }
            assert!(
                started.elapsed() < timeout,
                "not seen within {timeout:?}:\n{stdout}\n{stderr}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn signal(&self, signal: &str) {
        super::signal(&self.child, signal);
    }

    /// Waits for it to exit by itself, at most `timeout`; what it wrote is checked for a user's
    /// words ([`super::words::assert_user_words`]).
    pub async fn finish(mut self, timeout: Duration) -> Stopped {
        let status = match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(status) => status.unwrap(),
            Err(_) => {
                let (stdout, stderr) = self.output();
                panic!("still running after {timeout:?}:\n{stdout}\n{stderr}");
            }
        };
        for reader in self.readers.drain(..) {
            reader.await.unwrap();
        }
        let (stdout, stderr) = self.output();
        if self.user_words {
            super::words::assert_user_words(&stdout);
            super::words::assert_user_words(&stderr);
        }
        Stopped {
            status,
            stdout,
            stderr,
        }
    }
}

/// The port of `Custom handler listening. address=127.0.0.1:PORT ...`.
fn listening_port(stdout: &str) -> Option<u16> {
    let line = stdout
        .lines()
        .find(|line| line.contains("Custom handler listening"))?;
    let (_, after) = line.split_once("address=127.0.0.1:")?;
    let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

fn collect(
    mut pipe: impl tokio::io::AsyncRead + Unpin + Send + 'static,
    into: Arc<Mutex<String>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut buffer = [0u8; 8192];
        while let Ok(n @ 1..) = pipe.read(&mut buffer).await {
            into.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buffer[..n]));
        }
    })
}
