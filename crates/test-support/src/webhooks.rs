//! A webhook receiver in Python that verifies every delivery with the Standard Webhooks
//! reference library (`standardwebhooks`, PyPI), and what it received.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

const RECEIVER: &str = include_str!("webhooks/receiver.py");

/// How the receiver answers.
#[derive(Debug, Clone, Copy, Default)]
pub struct Behaviour {
    /// Answer the first this many requests 500.
    pub fail: u32,
    /// Then hold this many requests for `hang_for` before answering.
    pub hang: u32,
    /// How long a held request is held.
    pub hang_for: Duration,
    /// Answer every request with this status (0: behave as above).
    pub always: u16,
}

/// A running receiver; killed when dropped.
pub struct Receiver {
    /// Its port on 127.0.0.1.
    pub port: u16,
    child: Child,
    lines: Arc<Mutex<Vec<Value>>>,
}

/// Fails loudly when the reference library is missing.
pub fn require_standardwebhooks() {
    let ok = std::process::Command::new("python3")
        .args(["-c", "import standardwebhooks"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "\n\nThe Standard Webhooks reference library is missing (the receiver's verifier).\n\
         Install it: pip install standardwebhooks   (.ci/run does this when it is missing)\n"
    );
}

impl Receiver {
    /// Starts a receiver; it serves once [`Self::trust`] gives it the endpoint's secret.
    pub async fn start(behaviour: Behaviour) -> Self {
        require_standardwebhooks();
        let mut child = Command::new("python3")
            .args(["-c", RECEIVER])
            .args(["--fail", &behaviour.fail.to_string()])
            .args(["--hang", &behaviour.hang.to_string()])
            .args(["--hang-for", &behaviour.hang_for.as_secs_f64().to_string()])
            .args(["--always", &behaviour.always.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 runs");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut reader = BufReader::new(stdout).lines();
        let first = reader
            .next_line()
            .await
            .expect("the receiver prints its port")
            .expect("the receiver started");
        let port: Value = serde_json::from_str(&first).expect("a JSON line");
        let port = port["port"].as_u64().expect("a port") as u16;
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = reader.next_line().await {
                if let Ok(value) = serde_json::from_str(&line) {
                    sink.lock().expect("not poisoned").push(value);
                }
            }
        });
        Self { port, child, lines }
    }

    /// `http://127.0.0.1:<port>/hook`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    /// Gives the receiver the endpoint's secret (`whsec_…`); it serves from now on.
    pub async fn trust(&mut self, secret: &str) {
        let stdin = self.child.stdin.as_mut().expect("piped stdin");
        stdin
            .write_all(format!("{secret}\n").as_bytes())
            .await
            .expect("the receiver reads its secret");
        stdin.flush().await.expect("flushed");
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Value> {
        self.lines.lock().expect("not poisoned").clone()
    }

    /// The verified, acknowledged deliveries so far, in arrival order.
    pub fn accepted(&self) -> Vec<Value> {
        self.requests()
            .into_iter()
            .filter(|r| r["outcome"] == "accepted")
            .collect()
    }
}
