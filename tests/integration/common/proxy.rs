//! A TCP proxy on 127.0.0.1 that can cut every connection after a number of client bytes: a
//! connection lost in the middle of a batch, on demand. It counts the connections open through
//! it (a pool that closes its idle ones drops to zero).

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Accepts each client on `listener`, connects it to `upstream` (a client the upstream refuses is
/// dropped) and hands the pair to `relay`, on a task of its own: the accept loop of every proxy
/// here.
pub fn relay_each<F, R>(listener: TcpListener, upstream: String, relay: R)
where
    R: Fn(TcpStream, TcpStream) -> F + Send + 'static,
    F: std::future::Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = TcpStream::connect(&upstream).await else {
                continue;
            };
            tokio::spawn(relay(client, server));
        }
    });
}

#[derive(Clone)]
pub struct Proxy {
    pub port: u16,
    /// When armed, connections are cut once this many more client bytes have gone through.
    cut_after: Arc<AtomicUsize>,
    armed: Arc<AtomicBool>,
    /// Stay armed after a cut: every new connection is cut too.
    every: Arc<AtomicBool>,
    pub cuts: Arc<AtomicUsize>,
    /// Connections open through it now.
    pub open: Arc<AtomicUsize>,
}

impl Proxy {
    pub async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let proxy = Self {
            port: listener.local_addr().unwrap().port(),
            cut_after: Arc::new(AtomicUsize::new(0)),
            armed: Arc::new(AtomicBool::new(false)),
            every: Arc::new(AtomicBool::new(false)),
            cuts: Arc::new(AtomicUsize::new(0)),
            open: Arc::new(AtomicUsize::new(0)),
        };
        let shared = proxy.clone();
        relay_each(listener, upstream, move |client, server| {
            shared.clone().pipe(client, server)
        });
        proxy
    }

    /// Cut the next connection that sends `bytes` more bytes from the client.
    pub fn cut_after(&self, bytes: usize) {
        self.cut_after.store(bytes, Ordering::SeqCst);
        self.every.store(false, Ordering::SeqCst);
        self.armed.store(true, Ordering::SeqCst);
    }

    /// Cut every connection after it sends `bytes` bytes, until disarmed.
    pub fn cut_every_after(&self, bytes: usize) {
        self.cut_after(bytes);
        self.every.store(true, Ordering::SeqCst);
    }

    pub fn disarm(&self) {
        self.armed.store(false, Ordering::SeqCst);
    }

    async fn pipe(self, client: TcpStream, server: TcpStream) {
        self.open.fetch_add(1, Ordering::SeqCst);
        let (mut client_read, mut client_write) = client.into_split();
        let (mut server_read, mut server_write) = server.into_split();
        let downstream =
            tokio::spawn(async move { tokio::io::copy(&mut server_read, &mut client_write).await });
        let mut buffer = vec![0u8; 16 * 1024];
        // This connection's budget, taken when it first sees the proxy armed.
        let mut left: Option<usize> = None;
        while let Ok(n) = client_read.read(&mut buffer).await {
            if n == 0 {
                break;
            }
            if self.armed.load(Ordering::SeqCst) && left.is_none() {
                left = Some(self.cut_after.load(Ordering::SeqCst));
            }
            let send = left.map_or(n, |budget| n.min(budget));
            if let Some(budget) = left.as_mut() {
                *budget -= send;
            }
            if server_write.write_all(&buffer[..send]).await.is_err() {
                break;
            }
            if send < n {
                self.cuts.fetch_add(1, Ordering::SeqCst);
                if !self.every.load(Ordering::SeqCst) {
                    self.armed.store(false, Ordering::SeqCst);
                }
                break;
            }
        }
        // Dropping both halves closes both sockets: the server sees the client vanish mid-batch.
        downstream.abort();
        self.open.fetch_sub(1, Ordering::SeqCst);
    }
}
