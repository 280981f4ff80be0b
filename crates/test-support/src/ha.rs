//! A Patroni formation of the test's own: three PostgreSQL servers with synchronous replication
//! on private ports, started and broken through `scripts/ha-cluster.sh` (the script users run,
//! so the tests exercise the documented formation). Destroyed when dropped.

use std::path::PathBuf;
use std::process::Command;

/// A running formation.
pub struct Formation {
    dir: PathBuf,
    base_port: u16,
}

/// `scripts/ha-cluster.sh` of this checkout.
fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/ha-cluster.sh")
}

/// A base port whose nine ports (PostgreSQL, REST API and Raft of three nodes) are free now.
fn free_base_port() -> u16 {
    let free = |port: u16| std::net::TcpListener::bind(("127.0.0.1", port)).is_ok();
    let seed = std::process::id() as u16;
    (0..200)
        .map(|attempt| 20_000 + (seed.wrapping_mul(7).wrapping_add(attempt * 331)) % 30_000)
        .find(|base| {
            [0, 1, 2, 100, 101, 102, 200, 201, 202]
                .iter()
                .all(|offset| free(base + offset))
        })
        .unwrap_or_else(|| panic!("no free range of ports for a Patroni formation"))
}

impl Formation {
    /// Starts three nodes and waits until one leads with a synchronous standby streaming.
    /// Panics, with the script's output, when Patroni or PostgreSQL is missing or the
    /// formation does not come up (`apt-get install patroni python3-pysyncobj jq
    /// postgresql-15`).
    pub fn start() -> Self {
        reap_abandoned();
        let dir = std::env::temp_dir().join(format!("orders-ha-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {dir:?}: {e}"));
        std::fs::write(dir.join(OWNER), std::process::id().to_string())
            .unwrap_or_else(|e| panic!("cannot write into {dir:?}: {e}"));
        let formation = Self {
            dir,
            base_port: free_base_port(),
        };
        formation.run(&["start"]);
        formation
    }

    fn run(&self, args: &[&str]) -> String {
        let output = Command::new("bash")
            .arg(script())
            .args(args)
            .env("ORDERS_HA_DIR", &self.dir)
            .env("ORDERS_HA_PORT", self.base_port.to_string())
            // kill -9 of a process keeps the page cache: fsync buys nothing in these tests.
            .env("ORDERS_HA_FSYNC", "off")
            .output()
            .unwrap_or_else(|e| panic!("cannot run scripts/ha-cluster.sh: {e}"));
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "scripts/ha-cluster.sh {args:?} failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    }

    /// The PostgreSQL ports of the three nodes.
    pub fn ports(&self) -> [u16; 3] {
        [self.base_port, self.base_port + 1, self.base_port + 2]
    }

    /// The multi-host URL of `database` on every node, asking for the one that accepts writes.
    pub fn url(&self, database: &str) -> String {
        let hosts: Vec<String> = self
            .ports()
            .iter()
            .map(|port| format!("127.0.0.1:{port}"))
            .collect();
        format!(
            "postgres://postgres@{}/{database}?target_session_attrs=read-write",
            hosts.join(",")
        )
    }

    /// The port of the current leader.
    pub fn primary(&self) -> u16 {
        self.port_of(&self.run(&["primary"]))
    }

    /// `kill -9` of the leader's Patroni and PostgreSQL; returns its port.
    pub fn kill_primary(&self) -> u16 {
        let primary = self.primary();
        self.kill_node(primary);
        primary
    }

    /// `kill -9` of one node's Patroni and PostgreSQL.
    pub fn kill_node(&self, port: u16) {
        self.run(&["kill-node", &port.to_string()]);
    }

    /// Starts a killed node again (it rejoins as a replica).
    pub fn start_node(&self, port: u16) {
        self.run(&["start-node", &port.to_string()]);
    }

    /// `patronictl list`, for failure reports.
    pub fn status(&self) -> String {
        self.run(&["status"])
    }

    fn port_of(&self, printed: &str) -> u16 {
        printed
            .trim()
            .lines()
            .last()
            .and_then(|line| line.trim().parse().ok())
            .unwrap_or_else(|| panic!("scripts/ha-cluster.sh printed no port: {printed:?}"))
    }
}

/// The file in a formation's directory that names the test process that started it.
const OWNER: &str = "test-owner";

/// Destroys the formations whose test process is gone: one killed by a timeout never ran its
/// `Drop`, and would keep three servers and nine ports.
fn reap_abandoned() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for dir in entries.flatten().map(|entry| entry.path()) {
        let ours = dir
            .file_name()
            .and_then(|name| name.to_str())
            .is_some_and(|name| name.starts_with("orders-ha-"));
        let owner = std::fs::read_to_string(dir.join(OWNER))
            .ok()
            .and_then(|pid| pid.trim().parse::<u32>().ok());
        if let (true, Some(pid)) = (ours, owner)
            && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        {
            destroy(&dir, 0);
        }
    }
}

/// `scripts/ha-cluster.sh destroy` of the formation in `dir` (its ports only help it stop the
/// replicas before the leader).
fn destroy(dir: &std::path::Path, base_port: u16) {
    let _ = Command::new("bash")
        .arg(script())
        .arg("destroy")
        .env("ORDERS_HA_DIR", dir)
        .env("ORDERS_HA_PORT", base_port.to_string())
        .output();
}

impl Drop for Formation {
    fn drop(&mut self) {
        destroy(&self.dir, self.base_port);
    }
}
