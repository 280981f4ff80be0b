//! A TCP proxy in front of a real server, to test what happens when the server goes away or
//! hangs, without stopping a server other tests share.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use tokio::net::{TcpListener, TcpStream};

const FORWARD: u8 = 0;
const REFUSE: u8 = 1;
const HANG: u8 = 2;

/// A running proxy; dropping it stops accepting.
pub struct Proxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    mode: Arc<AtomicU8>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Forwards connections on a free loopback port to `target`.
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let mode = Arc::new(AtomicU8::new(FORWARD));
        let task_mode = mode.clone();
        let task = tokio::spawn(async move {
            let mut live = Vec::new();
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                let mode = task_mode.clone();
                live.push(tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(target).await else {
                        return;
                    };
                    let mut watch = tokio::time::interval(std::time::Duration::from_millis(20));
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
                        tokio::select! {
                            _ = &mut pipe => return,
                            _ = watch.tick() => match mode.load(Ordering::SeqCst) {
                                REFUSE => return, // drop both ends: the connection breaks
                                HANG => { std::future::pending::<()>().await; }
                                _ => {}
                            },
                        }
                    }
                }));
            }
        });
        Self { addr, mode, task }
    }

    /// Breaks every connection and refuses new ones (the server "went down").
    pub fn refuse(&self) {
        self.mode.store(REFUSE, Ordering::SeqCst);
    }

    /// Keeps connections open but stops passing bytes (the server "hangs").
    pub fn hang(&self) {
        self.mode.store(HANG, Ordering::SeqCst);
    }

    /// Passes bytes again.
    pub fn forward(&self) {
        self.mode.store(FORWARD, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
