//! A TDS proxy on 127.0.0.1 in front of a real server, for clients that connect without TLS
//! (`Encrypt=DANGER_PLAINTEXT`): it reads the protocol's messages both ways (MS-TDS 2.2.3: 8-byte
//! packet headers, status bit 0x01 ending a message) and, once armed, does to the next write
//! transaction (a SQL batch holding `BEGIN TRAN;`) what a network or a server can: cut the
//! connection before its `COMMIT` ran or after, black-hole its reply, hold it open without its
//! `COMMIT`, answer it with a server error in its place, or hold back the next login; or, to the
//! next bulk load's rows (a BulkLoad message, MS-TDS 2.2.1.1), answer them with a server error, as
//! a server refusing bulk load does, or black-hole their answer.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

use super::proxy::relay_each;
use super::resuming::error_reply;

/// What to do to the next write transaction (or login).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The batch reaches the server without its `COMMIT TRAN;` (blanked out): the transaction
    /// runs and stays open; once the server has answered, both sides are cut, and the server
    /// rolls it back.
    CutBeforeCommit,
    /// The batch runs whole (committed); its answer is swallowed and both sides are cut.
    CutAfterCommit,
    /// The batch runs whole; its answer never reaches the client, and the connection stays open.
    BlackHole,
    /// The batch reaches the server without its `COMMIT TRAN;`: the transaction runs and stays
    /// open, holding the writer lock, until the connection closes; its answer never comes.
    HoldOpen,
    /// The batch never reaches the server: the client gets this error number instead.
    Error(u32),
    /// The next login waits this long before it reaches the server.
    DelayLogin(Duration),
    /// The next bulk load's rows never reach the server: the client gets this error number.
    RefuseBulkLoad(u32),
    /// The next bulk load's rows reach the server; its answer never reaches the client, and the
    /// connection stays open.
    BlackHoleBulkLoad,
}

/// What the proxy does with the server's packets on one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reply {
    Forward,
    SwallowThenCut,
    SwallowForever,
}

#[derive(Clone)]
pub struct TdsProxy {
    pub port: u16,
    armed: Arc<Mutex<Option<Fault>>>,
    /// Faults carried out so far.
    pub carried_out: Arc<AtomicUsize>,
}

impl TdsProxy {
    pub async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let proxy = Self {
            port: listener.local_addr().unwrap().port(),
            armed: Arc::new(Mutex::new(None)),
            carried_out: Arc::new(AtomicUsize::new(0)),
        };
        let shared = proxy.clone();
        relay_each(listener, upstream, move |client, server| {
            shared.clone().connection(client, server)
        });
        proxy
    }

    /// Does `fault` to the next write transaction (or login), once.
    pub fn arm(&self, fault: Fault) {
        *self.armed.lock().unwrap() = Some(fault);
    }

    pub fn carried_out(&self) -> usize {
        self.carried_out.load(Ordering::SeqCst)
    }

    /// The armed fault, taken, if `applies` to it.
    fn take(&self, applies: impl Fn(&Fault) -> bool) -> Option<Fault> {
        let mut armed = self.armed.lock().unwrap();
        let fault = armed.filter(|fault| applies(fault))?;
        *armed = None;
        self.carried_out.fetch_add(1, Ordering::SeqCst);
        Some(fault)
    }

    async fn connection(self, client: TcpStream, server: TcpStream) {
        let (client_read, client_write) = client.into_split();
        let (server_read, server_write) = server.into_split();
        let client_write = Arc::new(tokio::sync::Mutex::new(client_write));
        let reply = Arc::new(Mutex::new(Reply::Forward));
        let requests = tokio::spawn(self.clone().requests(
            client_read,
            server_write,
            Arc::clone(&client_write),
            Arc::clone(&reply),
        ));
        replies(server_read, &client_write, &reply).await;
        // Cut: both sockets close, so the client reads the end of its connection.
        requests.abort();
        let _ = client_write.lock().await.shutdown().await;
    }

    /// Client to server, message by message, doing the armed fault to the one it applies to.
    async fn requests(
        self,
        mut client: OwnedReadHalf,
        mut server: OwnedWriteHalf,
        client_write: Arc<tokio::sync::Mutex<OwnedWriteHalf>>,
        reply: Arc<Mutex<Reply>>,
    ) {
        while let Ok(mut message) = read_message(&mut client).await {
            match message.kind {
                0x10 => {
                    if let Some(Fault::DelayLogin(delay)) =
                        self.take(|f| matches!(f, Fault::DelayLogin(_)))
                    {
                        tokio::time::sleep(delay).await;
                    }
                }
                0x07 => {
                    let bulk = |f: &Fault| {
                        matches!(f, Fault::RefuseBulkLoad(_) | Fault::BlackHoleBulkLoad)
                    };
                    match self.take(bulk) {
                        Some(Fault::RefuseBulkLoad(number)) => {
                            if !refuse(&client_write, number, "bulk load refused").await {
                                return;
                            }
                            continue;
                        }
                        Some(Fault::BlackHoleBulkLoad) => {
                            *reply.lock().unwrap() = Reply::SwallowForever;
                        }
                        _ => {}
                    }
                }
                0x01 if message.contains("BEGIN TRAN;") => {
                    let batch = |f: &Fault| {
                        !matches!(
                            f,
                            Fault::DelayLogin(_)
                                | Fault::RefuseBulkLoad(_)
                                | Fault::BlackHoleBulkLoad
                        )
                    };
                    match self.take(batch) {
                        Some(Fault::Error(number)) => {
                            if !refuse(&client_write, number, "error").await {
                                return;
                            }
                            continue;
                        }
                        Some(Fault::CutBeforeCommit) => {
                            assert!(message.blank("COMMIT TRAN;"), "a transaction commits");
                            *reply.lock().unwrap() = Reply::SwallowThenCut;
                        }
                        Some(Fault::CutAfterCommit) => {
                            *reply.lock().unwrap() = Reply::SwallowThenCut;
                        }
                        Some(Fault::BlackHole) => *reply.lock().unwrap() = Reply::SwallowForever,
                        Some(Fault::HoldOpen) => {
                            assert!(message.blank("COMMIT TRAN;"), "a transaction commits");
                            *reply.lock().unwrap() = Reply::SwallowForever;
                        }
                        Some(
                            Fault::DelayLogin(_)
                            | Fault::RefuseBulkLoad(_)
                            | Fault::BlackHoleBulkLoad,
                        )
                        | None => {}
                    }
                }
                _ => {}
            }
            if server.write_all(&message.raw).await.is_err() {
                return;
            }
        }
    }
}

/// Answers the client with error `number` in the server's place (`injected by the test proxy:
/// <what> <number>`); false when the client is gone.
async fn refuse(client: &tokio::sync::Mutex<OwnedWriteHalf>, number: u32, what: &str) -> bool {
    let message = format!("injected by the test proxy: {what} {number}");
    let answer = error_reply(number, 16, &message);
    client.lock().await.write_all(&answer).await.is_ok()
}

/// Server to client, packet by packet, until the server closes or the connection is cut.
async fn replies(
    mut server: OwnedReadHalf,
    client: &tokio::sync::Mutex<OwnedWriteHalf>,
    reply: &Mutex<Reply>,
) {
    loop {
        let packet = match read_packet(&mut server).await {
            Ok(packet) => packet,
            Err(_) => return,
        };
        let now = *reply.lock().unwrap();
        match now {
            Reply::Forward => {
                if client.lock().await.write_all(&packet).await.is_err() {
                    return;
                }
            }
            Reply::SwallowThenCut if packet[1] & 0x01 == 0x01 => return,
            Reply::SwallowThenCut | Reply::SwallowForever => {}
        }
    }
}

/// One TDS message: its type and its packets as they came.
struct Message {
    kind: u8,
    raw: Vec<u8>,
}

impl Message {
    /// The packets' payloads, one after another, and where each starts in `raw`.
    fn payload(&self) -> (Vec<u8>, Vec<(usize, usize)>) {
        let (mut payload, mut spans) = (Vec::new(), Vec::new());
        let mut at = 0;
        while at < self.raw.len() {
            let length = usize::from(u16::from_be_bytes([self.raw[at + 2], self.raw[at + 3]]));
            spans.push((at + 8, length - 8));
            payload.extend_from_slice(&self.raw[at + 8..at + length]);
            at += length;
        }
        (payload, spans)
    }

    fn contains(&self, text: &str) -> bool {
        find(&self.payload().0, &utf16(text)).is_some()
    }

    /// Replaces `text` in the batch by as many spaces (the packets keep their sizes).
    fn blank(&mut self, text: &str) -> bool {
        let (mut payload, spans) = self.payload();
        let Some(at) = find(&payload, &utf16(text)) else {
            return false;
        };
        payload[at..at + 2 * text.len()].copy_from_slice(&utf16(&" ".repeat(text.len())));
        let mut from = 0;
        for (start, length) in spans {
            self.raw[start..start + length].copy_from_slice(&payload[from..from + length]);
            from += length;
        }
        true
    }
}

fn utf16(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

async fn read_packet(stream: &mut OwnedReadHalf) -> std::io::Result<Vec<u8>> {
    let mut packet = vec![0u8; 8];
    stream.read_exact(&mut packet).await?;
    let length = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
    packet.resize(length.max(8), 0);
    stream.read_exact(&mut packet[8..]).await?;
    Ok(packet)
}

async fn read_message(stream: &mut OwnedReadHalf) -> std::io::Result<Message> {
    let mut raw = Vec::new();
    loop {
        let packet = read_packet(stream).await?;
        let (kind, last) = (packet[0], packet[1] & 0x01 == 0x01);
        raw.extend_from_slice(&packet);
        if last {
            return Ok(Message { kind, raw });
        }
    }
}
