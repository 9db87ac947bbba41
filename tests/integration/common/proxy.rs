//! A TCP proxy on 127.0.0.1 that can cut every connection after a number of client bytes: a
//! connection lost in the middle of a batch, on demand.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Clone)]
pub struct Proxy {
    pub port: u16,
    /// When armed, connections are cut once this many more client bytes have gone through.
    cut_after: Arc<AtomicUsize>,
    armed: Arc<AtomicBool>,
    pub cuts: Arc<AtomicUsize>,
}

impl Proxy {
    pub async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let proxy = Self {
            port: listener.local_addr().unwrap().port(),
            cut_after: Arc::new(AtomicUsize::new(0)),
            armed: Arc::new(AtomicBool::new(false)),
            cuts: Arc::new(AtomicUsize::new(0)),
        };
        let shared = proxy.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    continue;
                };
                tokio::spawn(shared.clone().pipe(client, server));
            }
        });
        proxy
    }

    /// Cut the connections after `bytes` more bytes from the client.
    pub fn cut_after(&self, bytes: usize) {
        self.cut_after.store(bytes, Ordering::SeqCst);
        self.armed.store(true, Ordering::SeqCst);
    }

    pub fn disarm(&self) {
        self.armed.store(false, Ordering::SeqCst);
    }

    async fn pipe(self, client: TcpStream, server: TcpStream) {
        let (mut client_read, mut client_write) = client.into_split();
        let (mut server_read, mut server_write) = server.into_split();
        let downstream =
            tokio::spawn(async move { tokio::io::copy(&mut server_read, &mut client_write).await });
        let mut buffer = vec![0u8; 16 * 1024];
        while let Ok(n) = client_read.read(&mut buffer).await {
            if n == 0 {
                break;
            }
            let mut send = n;
            if self.armed.load(Ordering::SeqCst) {
                let left = self.cut_after.load(Ordering::SeqCst);
                if n >= left {
                    send = left;
                }
                self.cut_after.store(left - send, Ordering::SeqCst);
            }
            if server_write.write_all(&buffer[..send]).await.is_err() {
                break;
            }
            if send < n {
                self.cuts.fetch_add(1, Ordering::SeqCst);
                self.armed.store(false, Ordering::SeqCst);
                break;
            }
        }
        // Dropping both halves closes both sockets: the server sees the client vanish mid-batch.
        downstream.abort();
    }
}
