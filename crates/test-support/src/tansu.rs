//! A real Kafka-protocol broker for tests: `tansu` with in-memory storage on a free loopback port.
//!
//! The binary is `$TANSU_BIN`, else `tansu` on `PATH`, else `~/.cargo/bin/tansu`. When none
//! exists the test fails, saying how to install it. Each [`Tansu`] is its own process with its own
//! (memory) storage; it is killed when dropped.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Partitions of the topics tests create: several, so that per-key ordering is really tested.
pub const PARTITIONS: u32 = 4;

/// A running broker.
pub struct Tansu {
    /// Where the broker listens.
    pub listen: SocketAddr,
    /// The address it advertises to clients (its own, or a proxy's in front of it).
    pub advertised: SocketAddr,
    child: Child,
    log: PathBuf,
}

impl Tansu {
    /// Starts a broker on a free port, advertising that port.
    pub fn start() -> Self {
        let listen = free_addr();
        Self::start_advertising(listen, listen)
    }

    /// Starts a broker on `listen` that tells clients to connect to `advertised` (e.g. a
    /// [`crate::proxy::Proxy`] forwarding to `listen`), so that every client connection goes there.
    pub fn start_advertising(listen: SocketAddr, advertised: SocketAddr) -> Self {
        let binary = binary();
        let log = std::env::temp_dir().join(format!("tansu-test-{}.log", listen.port()));
        let log_file = std::fs::File::create(&log)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", log.display()));
        let stderr = log_file
            .try_clone()
            .unwrap_or_else(|e| panic!("cannot share {}: {e}", log.display()));
        let child = Command::new(&binary)
            .args([
                "broker",
                "--storage-engine",
                "memory://tansu/",
                "--listener-url",
                &format!("tcp://{listen}"),
                "--advertised-listener-url",
                &format!("tcp://{advertised}"),
            ])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let mut broker = Self {
            listen,
            advertised,
            child,
            log,
        };
        broker.wait_until_listening();
        broker
    }

    /// The broker's process id (benchmarks read its CPU time from `/proc`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `host:port` for clients (`bootstrap.servers`).
    pub fn bootstrap(&self) -> String {
        self.advertised.to_string()
    }

    /// Creates `topic` with [`PARTITIONS`] partitions, talking to the broker directly.
    pub fn create_topic(&self, topic: &str) {
        let output = Command::new(binary())
            .args([
                "topic",
                "create",
                topic,
                "--broker",
                &format!("tcp://{}", self.listen),
                "--partitions",
                &PARTITIONS.to_string(),
            ])
            .output()
            .unwrap_or_else(|e| panic!("cannot run tansu topic create: {e}"));
        assert!(
            output.status.success(),
            "tansu topic create {topic} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// The broker's log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_until_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if TcpStream::connect_timeout(&self.listen, Duration::from_millis(200)).is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "tansu exited at start-up ({status}); it needs a storage feature \
                     (cargo install tansu --locked --features dynostore). Log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "tansu did not listen on {} within 20 s. Log:\n{}",
            self.listen,
            self.log()
        );
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// A loopback address with a port that was free a moment ago.
pub fn free_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address")
}

/// The tansu binary, or a panic saying how to install it.
pub fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("TANSU_BIN") {
        return PathBuf::from(path);
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("tansu"))
            .find(|candidate| candidate.is_file())
    });
    let in_cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")))
        .map(|dir| dir.join("bin").join("tansu"))
        .filter(|candidate| candidate.is_file());
    on_path.or(in_cargo_home).unwrap_or_else(|| {
        panic!(
            "\n\nThe Kafka-protocol broker `tansu` is not installed.\n\
             These tests need a real broker. Install it (about 20 minutes on 2 cores):\n\
             \x20 cargo install tansu --locked --features dynostore\n\
             or set TANSU_BIN to its path. (.ci/run installs it when missing.)\n"
        )
    })
}
