//! A throw-away PostgreSQL cluster of the test's own (`initdb` and `pg_ctl` of the installed
//! PostgreSQL, on a free port), for tests that stop and restart the database. The shared server
//! is never stopped by a test.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A private cluster; stopped (immediately) and deleted when dropped.
pub struct Cluster {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    /// `name=value` server settings given at every start.
    settings: Vec<String>,
}

/// The installed PostgreSQL's `bin` directory (the newest under `/usr/lib/postgresql`).
fn bin_dir() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|dir| dir.flatten().map(|e| e.path().join("bin")).collect())
        .unwrap_or_default();
    versions.retain(|bin| bin.join("initdb").exists());
    versions.sort();
    versions.pop().unwrap_or_else(|| {
        panic!(
            "no initdb under /usr/lib/postgresql/*/bin: install the PostgreSQL server \
             (Debian: apt-get install postgresql-15) to run restart tests"
        )
    })
}

/// Runs `program` with `args` as the `postgres` user when we are root (PostgreSQL refuses to run
/// as root), as ourselves otherwise.
fn run_as_postgres(program: &Path, args: &[&str]) -> std::process::Output {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let mut command = if root {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    };
    command
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()))
}

impl Cluster {
    /// Creates and starts a cluster with trust authentication for `postgres` on 127.0.0.1.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Like [`Self::start`], with server settings (`name=value`) given at every start.
    pub fn start_with(settings: &[&str]) -> Self {
        let dir = new_data_dir();
        let bin = bin_dir();
        let data = dir.to_string_lossy().into_owned();
        let initdb = run_as_postgres(
            &bin.join("initdb"),
            &["-D", &data, "-A", "trust", "-U", "postgres", "--no-sync"],
        );
        assert!(
            initdb.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&initdb.stderr)
        );
        let cluster = Self {
            dir,
            bin,
            port: free_port(),
            settings: settings.iter().map(|s| (*s).to_owned()).collect(),
        };
        cluster.start_server();
        cluster
    }

    /// A hot standby of `primary`, streaming from it under `name` (its `application_name`, the
    /// name `synchronous_standby_names` uses), with `settings` given at every start; started.
    pub fn standby_of(primary: &Cluster, name: &str, settings: &[&str]) -> Self {
        let dir = new_data_dir();
        let bin = bin_dir();
        let data = dir.to_string_lossy().into_owned();
        let source = format!(
            "host=127.0.0.1 port={} user=postgres application_name={name}",
            primary.port
        );
        let copied = run_as_postgres(
            &bin.join("pg_basebackup"),
            &[
                "-d",
                &source,
                "-D",
                &data,
                "-R",
                "-X",
                "stream",
                "--no-sync",
            ],
        );
        assert!(
            copied.status.success(),
            "pg_basebackup failed: {}",
            String::from_utf8_lossy(&copied.stderr)
        );
        let standby = Self {
            dir,
            bin,
            port: free_port(),
            settings: settings.iter().map(|s| (*s).to_owned()).collect(),
        };
        standby.start_server();
        standby
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's postmaster process id (from `postmaster.pid`), while it runs.
    pub fn postmaster_pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.dir.join("postmaster.pid"))
            .ok()?
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    }

    /// `postgres://postgres@127.0.0.1:<port>/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn pg_ctl(&self, args: &[&str]) -> std::process::Output {
        let data = self.dir.to_string_lossy().into_owned();
        let mut all = vec!["-D", data.as_str()];
        all.extend_from_slice(args);
        run_as_postgres(&self.bin.join("pg_ctl"), &all)
    }

    /// Starts the server (again) and waits until it accepts connections.
    pub fn start_server(&self) {
        let mut options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c fsync=off",
            self.port,
            self.dir.display()
        );
        for setting in &self.settings {
            options.push_str(" -c ");
            options.push_str(setting);
        }
        let log = self.dir.join("server.log").to_string_lossy().into_owned();
        let started = self.pg_ctl(&["-o", &options, "-l", &log, "-w", "start"]);
        assert!(
            started.status.success(),
            "pg_ctl start failed: {}{}",
            String::from_utf8_lossy(&started.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// Makes a standby a primary and waits until it accepts writes.
    pub fn promote(&self) {
        let promoted = self.pg_ctl(&["-w", "promote"]);
        assert!(
            promoted.status.success(),
            "pg_ctl promote failed: {}",
            String::from_utf8_lossy(&promoted.stderr)
        );
    }

    /// Stops the server the way a crash does (`immediate`: no shutdown checkpoint, sessions cut).
    pub fn crash(&self) {
        let stopped = self.pg_ctl(&["-m", "immediate", "-w", "stop"]);
        assert!(
            stopped.status.success(),
            "pg_ctl stop failed: {}",
            String::from_utf8_lossy(&stopped.stderr)
        );
    }

    /// Stops the server (`fast`: open sessions are ended) and waits until it is down.
    pub fn stop_server(&self) {
        let stopped = self.pg_ctl(&["-m", "fast", "-w", "stop"]);
        assert!(
            stopped.status.success(),
            "pg_ctl stop failed: {}",
            String::from_utf8_lossy(&stopped.stderr)
        );
    }
}

/// A new directory for a data directory, owned by the `postgres` user with mode 0700.
fn new_data_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("orders-cluster-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {dir:?}: {e}"));
    // The postgres user must own its data directory, and nobody else may read it.
    let _ = Command::new("chown")
        .arg("postgres:postgres")
        .arg(&dir)
        .status();
    let _ = Command::new("chmod").arg("0700").arg(&dir).status();
    dir
}

/// A port nothing listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.pg_ctl(&["-m", "immediate", "-w", "stop"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
