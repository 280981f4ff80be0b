//! A TCP proxy in front of PostgreSQL that counts the round trips clients start.
//!
//! It reads the frontend side of the PostgreSQL wire protocol: after the untyped start-up
//! messages (an optional `SSLRequest`, answered by the server, then the `StartupMessage`), every
//! message is a type byte and a length. A client waits for the server only after `Sync` (`S`, the
//! end of an extended-protocol exchange, which is also what a bare "ping" sends) or a simple
//! `Query` (`Q`), so their count is the number of round trips, pings included. An exchange that
//! only prepares a statement (`Parse` and no `Execute`: what a driver sends the first time it uses
//! a statement on a connection) is not counted: it happens once per connection and statement, not
//! per command.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A running counting proxy; dropping it stops accepting.
pub struct CountingProxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    round_trips: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl CountingProxy {
    /// Forwards connections on a free loopback port to the PostgreSQL server at `target`.
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let round_trips = Arc::new(AtomicU64::new(0));
        let counter = round_trips.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let counter = counter.clone();
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(target).await {
                        let _ = relay(client, server, counter).await;
                    }
                });
            }
        });
        Self {
            addr,
            round_trips,
            task,
        }
    }

    /// Round trips clients have started through the proxy so far.
    pub fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::SeqCst)
    }
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay(
    client: TcpStream,
    server: TcpStream,
    counter: Arc<AtomicU64>,
) -> std::io::Result<()> {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let backend = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
    });
    let frontend = async {
        // Untyped start-up messages: length (including itself), then the body. An SSLRequest
        // (code 80877103) is followed by another start-up message once the server said 'N'.
        loop {
            let length = client_read.read_u32().await?;
            let mut body = vec![0; (length as usize).saturating_sub(4)];
            client_read.read_exact(&mut body).await?;
            server_write.write_u32(length).await?;
            server_write.write_all(&body).await?;
            let code = body
                .get(..4)
                .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
            if code != Some(80_877_103) {
                break;
            }
        }
        let (mut parsed, mut executed) = (false, false);
        loop {
            let kind = client_read.read_u8().await?;
            let length = client_read.read_u32().await?;
            let mut body = vec![0; (length as usize).saturating_sub(4)];
            client_read.read_exact(&mut body).await?;
            match kind {
                b'P' => parsed = true,
                b'E' => executed = true,
                b'Q' => {
                    counter.fetch_add(1, Ordering::SeqCst);
                }
                b'S' => {
                    if executed || !parsed {
                        counter.fetch_add(1, Ordering::SeqCst);
                    }
                    (parsed, executed) = (false, false);
                }
                _ => {}
            }
            server_write.write_u8(kind).await?;
            server_write.write_u32(length).await?;
            server_write.write_all(&body).await?;
        }
        #[allow(unreachable_code)]
        std::io::Result::Ok(())
    };
    let outcome = frontend.await;
    backend.abort();
    outcome
}
