//! A TCP proxy in front of a real server, to test what happens when the server goes away or
//! hangs, without stopping a server other tests share.
//!
//! A mode change reaches every connection before it passes another byte: a request written after
//! [`Proxy::hang`] returns is held, not forwarded.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Forward,
    Refuse,
    Hang,
}

/// A running proxy; dropping it stops accepting and closes every connection it holds.
pub struct Proxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    mode: watch::Sender<Mode>,
    accepted: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Forwards connections on a free loopback port to `target`.
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let (mode, modes) = watch::channel(Mode::Forward);
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        let task = tokio::spawn(async move {
            // Dropped with this task (when the proxy is dropped): aborts every connection.
            let mut connections = JoinSet::new();
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                while connections.try_join_next().is_some() {}
                counter.fetch_add(1, Ordering::SeqCst);
                connections.spawn(connection(client, target, modes.clone()));
            }
        });
        Self {
            addr,
            mode,
            accepted,
            task,
        }
    }

    /// How many connections clients have opened through the proxy so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Breaks every connection and refuses new ones (the server "went down").
    pub fn refuse(&self) {
        self.mode.send_replace(Mode::Refuse);
    }

    /// Keeps connections open but stops passing bytes (the server "hangs"); new connections are
    /// accepted and get no answer. [`Self::forward`] releases them, dropping the proxy closes them.
    pub fn hang(&self) {
        self.mode.send_replace(Mode::Hang);
    }

    /// Passes bytes again, on new connections and on those held by [`Self::hang`].
    pub fn forward(&self) {
        self.mode.send_replace(Mode::Forward);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One client connection: bytes pass both ways while the mode is `Forward`.
async fn connection(mut client: TcpStream, target: SocketAddr, mut mode: watch::Receiver<Mode>) {
    if *mode.borrow_and_update() == Mode::Refuse {
        return;
    }
    let Ok(mut server) = TcpStream::connect(target).await else {
        return;
    };
    let (mut cr, mut cw) = client.split();
    let (mut sr, mut sw) = server.split();
    let pipe = async {
        tokio::try_join!(
            tokio::io::copy(&mut cr, &mut sw),
            tokio::io::copy(&mut sr, &mut cw)
        )
    };
    tokio::pin!(pipe);
    loop {
        let current = *mode.borrow_and_update();
        match current {
            Mode::Refuse => return, // drop both ends: the connection breaks
            // The pipe is not polled: no byte passes until the mode changes.
            Mode::Hang => {
                if mode.changed().await.is_err() {
                    return;
                }
            }
            Mode::Forward => {
                tokio::select! {
                    biased; // a mode change first, before another byte is copied
                    changed = mode.changed() => if changed.is_err() { return },
                    _ = &mut pipe => return,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a panic is the failure report

    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// Generous: only a broken proxy waits this long.
    const DEADLINE: Duration = Duration::from_secs(20);

    /// A server answering every read with the same bytes.
    async fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buffer = [0; 1024];
                    while let Ok(n @ 1..) = stream.read(&mut buffer).await {
                        if stream.write_all(&buffer[..n]).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        addr
    }

    async fn round_trip(stream: &mut TcpStream, bytes: &[u8]) -> Vec<u8> {
        stream.write_all(bytes).await.unwrap();
        let mut answer = vec![0; bytes.len()];
        tokio::time::timeout(DEADLINE, stream.read_exact(&mut answer))
            .await
            .expect("no answer through the proxy")
            .unwrap();
        answer
    }

    /// Whether `stream` is closed (EOF or reset) within the deadline.
    async fn closed(stream: &mut TcpStream) -> bool {
        let mut byte = [0; 1];
        matches!(
            tokio::time::timeout(DEADLINE, stream.read(&mut byte)).await,
            Ok(Ok(0) | Err(_))
        )
    }

    #[tokio::test]
    async fn forwards_bytes_both_ways() {
        let proxy = Proxy::start(echo_server().await).await;
        let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
        assert_eq!(round_trip(&mut stream, b"ping").await, b"ping");
    }

    #[tokio::test]
    async fn hang_holds_bytes_at_once_and_forward_releases_them() {
        let proxy = Proxy::start(echo_server().await).await;
        let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
        assert_eq!(round_trip(&mut stream, b"one").await, b"one");

        proxy.hang();
        stream.write_all(b"two").await.unwrap();
        let mut answer = [0; 3];
        // Absence can only be sampled: a working hang passes nothing in this time (a loaded
        // machine makes that more likely, never less).
        assert!(
            tokio::time::timeout(Duration::from_millis(300), stream.read_exact(&mut answer))
                .await
                .is_err(),
            "bytes passed while hanging"
        );
        // A connection opened while hanging is held too.
        let mut late = TcpStream::connect(proxy.addr).await.unwrap();
        late.write_all(b"late").await.unwrap();

        proxy.forward();
        tokio::time::timeout(DEADLINE, stream.read_exact(&mut answer))
            .await
            .expect("the held request was not released")
            .unwrap();
        assert_eq!(&answer, b"two");
        let mut late_answer = [0; 4];
        tokio::time::timeout(DEADLINE, late.read_exact(&mut late_answer))
            .await
            .expect("the connection opened while hanging was not released")
            .unwrap();
        assert_eq!(&late_answer, b"late");
    }

    #[tokio::test]
    async fn refuse_breaks_open_connections_and_new_ones() {
        let proxy = Proxy::start(echo_server().await).await;
        let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
        assert_eq!(round_trip(&mut stream, b"one").await, b"one");
        proxy.refuse();
        assert!(closed(&mut stream).await, "open connection kept");
        let mut new = TcpStream::connect(proxy.addr).await.unwrap();
        assert!(closed(&mut new).await, "new connection served");
        proxy.forward();
        let mut again = TcpStream::connect(proxy.addr).await.unwrap();
        assert_eq!(round_trip(&mut again, b"back").await, b"back");
    }

    #[tokio::test]
    async fn dropping_the_proxy_closes_every_connection_even_a_hanging_one() {
        let proxy = Proxy::start(echo_server().await).await;
        let mut open = TcpStream::connect(proxy.addr).await.unwrap();
        assert_eq!(round_trip(&mut open, b"one").await, b"one");
        let mut hanging = TcpStream::connect(proxy.addr).await.unwrap();
        assert_eq!(round_trip(&mut hanging, b"two").await, b"two");
        proxy.hang();
        hanging.write_all(b"held").await.unwrap();
        drop(proxy);
        assert!(closed(&mut open).await, "connection left open");
        assert!(closed(&mut hanging).await, "hanging connection left open");
    }
}
