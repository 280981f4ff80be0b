//! `orders serve` as a child process, the one way the tests start the binary as a service:
//! on a free port, with the environment the test gives and nothing inherited that would change
//! its behaviour (`DATABASE_URL`, `REDIS_URL`, `KAFKA_PROPERTIES` are removed unless set), ready
//! when `/health/ready` answers 200, and killed (after a `SIGCONT`, should it be frozen) when
//! dropped.
//!
//! The binary's path comes from the test (`env!("CARGO_BIN_EXE_orders")`, which only the
//! `orders` crate's tests can name).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A port nobody listens on now (the kernel picks it; a race with another process is possible
/// but harmless in these tests, which then fail to start and say so).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .unwrap_or_else(|error| panic!("no free port: {error}"))
}

/// How to start one service.
#[derive(Debug)]
pub struct ServiceBuilder {
    command: Command,
    name: String,
    log: Option<PathBuf>,
    ready_within: Duration,
}

/// A running `orders serve`.
#[derive(Debug)]
pub struct Service {
    /// Its name (also `ORDERS_INSTANCE_ID` unless the test set another).
    pub name: String,
    /// Its port on 127.0.0.1.
    pub port: u16,
    child: Child,
    log: Option<PathBuf>,
}

impl ServiceBuilder {
    /// `binary serve` as `name`, listening on a free port of 127.0.0.1.
    pub fn new(binary: impl AsRef<Path>, name: &str) -> Self {
        let mut command = Command::new(binary.as_ref());
        command
            .arg("serve")
            .env("ORDERS_INSTANCE_ID", name)
            .env("RUST_LOG", "warn")
            .env_remove("DATABASE_URL")
            .env_remove("REDIS_URL")
            .env_remove("KAFKA_PROPERTIES")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        Self {
            command,
            name: name.to_owned(),
            log: None,
            ready_within: Duration::from_secs(30),
        }
    }

    /// Sets an environment variable of the service.
    pub fn env(mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> Self {
        self.command.env(key, value);
        self
    }

    /// Adds command-line arguments after `serve`.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.command.args(args);
        self
    }

    /// Writes the service's log (stderr) to `path`, for [`Service::log`].
    pub fn log_to(mut self, path: impl Into<PathBuf>) -> Self {
        self.log = Some(path.into());
        self
    }

    /// How long the service may take to answer `/health/ready` (default 30 s).
    pub fn ready_within(mut self, limit: Duration) -> Self {
        self.ready_within = limit;
        self
    }

    /// Starts it and waits until it is ready; panics (with its log, if kept) if it is not.
    pub async fn start(mut self) -> Service {
        let port = free_port();
        self.command
            .args(["--listen", &format!("127.0.0.1:{port}")]);
        if let Some(path) = &self.log {
            let file = std::fs::File::create(path)
                .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
            self.command.stderr(file);
        }
        let child = self
            .command
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", self.name));
        let mut service = Service {
            name: self.name,
            port,
            child,
            log: self.log,
        };
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_else(|error| panic!("{error}"));
        let deadline = Instant::now() + self.ready_within;
        loop {
            let ready = client
                .get(format!("{}/health/ready", service.base_url()))
                .send()
                .await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return service;
            }
            if let Ok(Some(status)) = service.child.try_wait() {
                panic!(
                    "{} exited ({status}) before it was ready\n{}",
                    service.name,
                    service.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{} was not ready within {:?}\n{}",
                service.name,
                self.ready_within,
                service.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Service {
    /// The process id (to read its memory in `/proc`, say).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Sends `signal` (`KILL`, `STOP`, `CONT`, `TERM`, …) to the process.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status();
        assert!(
            status.is_ok_and(|s| s.success()),
            "kill -{signal} {} failed",
            self.name
        );
    }

    /// `kill -9` and waits for the process to be gone: nothing flushed, nothing acknowledged
    /// after this.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// What it has logged so far (empty unless started with [`ServiceBuilder::log_to`]).
    pub fn log(&self) -> String {
        self.log
            .as_ref()
            .and_then(|path| std::fs::read_to_string(path).ok())
            .unwrap_or_default()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        // A frozen process (SIGSTOP) must run again to die of SIGKILL promptly and be reaped.
        let _ = Command::new("kill")
            .args(["-CONT", &self.child.id().to_string()])
            .status();
        self.kill();
    }
}
