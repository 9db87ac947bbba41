//! An auto-paused Azure SQL Database (serverless) coming back, on 127.0.0.1: its first logins
//! are answered the way Microsoft documents ("If a serverless database is paused, the first
//! connection attempt resumes the database and returns an error stating that the database is
//! unavailable with error code 40613. Once the database resumes, retry the connection.":
//! "Serverless compute tier for Azure SQL Database"), in TDS: the PRELOGIN answered (no
//! encryption: clients connect with `Encrypt=DANGER_PLAINTEXT`), the LOGIN7 answered with an
//! ERROR token 40613 and a DONE token (MS-TDS 2.2.7.10, 2.2.7.6). Once it has refused as many
//! logins as asked, it passes connections through to a real server. [`Resuming::refusing`] answers
//! with another error instead: a free offer database whose month's allowance is spent
//! ([`FREE_ALLOWANCE`]), refusing every login.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the database says while it resumes.
pub const RESUMING: &str = "Database 'coincap' on server 'coincap-sql' is not currently available. Please retry the connection later. If the problem persists, contact customer support, and provide them the session tracing ID of '00000000-0000-0000-0000-000000000000'.";

/// What a free offer database with `AutoPause` answers once its month's allowance is spent: error
/// 42119 and these words. Not in Microsoft's documentation as stored; as public code that handles
/// it reports (docs/cost.md says so).
pub const FREE_ALLOWANCE: (u32, &str) = (
    42119,
    "This database has reached the monthly free amount allowance for the month of December 2026 and is paused for the remainder of the month. The free amount will renew at 12:00 AM (UTC) on January 01, 2027. To regain access immediately, open the Compute and Storage tab from the database menu on the Azure Portal and select the \"Continue using database with additional charges\" option.",
);

#[derive(Clone)]
pub struct Resuming {
    pub port: u16,
    /// Logins still to refuse.
    left: Arc<AtomicUsize>,
    /// Logins refused so far.
    pub refused: Arc<AtomicUsize>,
    /// The error number and message each refusal carries.
    refusal: (u32, &'static str),
}

impl Resuming {
    /// Refuses the first `logins` logins with 40613, then relays to `upstream`.
    pub async fn start(upstream: String, logins: usize) -> Self {
        Self::start_with(upstream, logins, (40613, RESUMING)).await
    }

    /// Refuses every login with `refusal` (error number, message).
    pub async fn refusing(refusal: (u32, &'static str)) -> Self {
        Self::start_with(String::new(), usize::MAX, refusal).await
    }

    async fn start_with(upstream: String, logins: usize, refusal: (u32, &'static str)) -> Self {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let resuming = Self {
            port: listener.local_addr().unwrap().port(),
            left: Arc::new(AtomicUsize::new(logins)),
            refused: Arc::new(AtomicUsize::new(0)),
            refusal,
        };
        let shared = resuming.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let refuse = shared
                    .left
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
                if refuse {
                    let refused = Arc::clone(&shared.refused);
                    let refusal = shared.refusal;
                    tokio::spawn(async move {
                        if refuse_login(client, refusal).await.is_ok() {
                            refused.fetch_add(1, Ordering::SeqCst);
                        }
                    });
                } else if let Ok(server) = TcpStream::connect(&upstream).await {
                    tokio::spawn(relay(client, server));
                }
            }
        });
        resuming
    }
}

async fn relay(mut client: TcpStream, mut server: TcpStream) {
    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
}

/// Reads one TDS message (packets until the end-of-message status bit): its type.
async fn read_message(stream: &mut TcpStream) -> std::io::Result<u8> {
    loop {
        let mut header = [0u8; 8];
        stream.read_exact(&mut header).await?;
        let length = usize::from(u16::from_be_bytes([header[2], header[3]]));
        let mut payload = vec![0u8; length.saturating_sub(8)];
        stream.read_exact(&mut payload).await?;
        if header[1] & 0x01 == 0x01 {
            return Ok(header[0]);
        }
    }
}

/// One packet of a tabular result (type 4), end of message.
pub(super) fn packet(payload: &[u8]) -> Vec<u8> {
    let length = u16::try_from(payload.len() + 8).unwrap().to_be_bytes();
    let mut out = vec![0x04, 0x01, length[0], length[1], 0x00, 0x00, 0x01, 0x00];
    out.extend_from_slice(payload);
    out
}

fn utf16(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// PRELOGIN's answer: version 15.0, no encryption, no instance, thread 0, no MARS.
fn prelogin_answer() -> Vec<u8> {
    let data: [&[u8]; 5] = [
        &[0x0F, 0x00, 0x07, 0xD0, 0x00, 0x00],
        &[0x02],
        &[0x00],
        &[0, 0, 0, 0],
        &[0x00],
    ];
    let mut offset = 5 * data.len() + 1;
    let mut payload = Vec::new();
    for (token, value) in data.iter().enumerate() {
        payload.push(u8::try_from(token).unwrap());
        payload.extend_from_slice(&u16::try_from(offset).unwrap().to_be_bytes());
        payload.extend_from_slice(&u16::try_from(value.len()).unwrap().to_be_bytes());
        offset += value.len();
    }
    payload.push(0xFF);
    for value in data {
        payload.extend_from_slice(value);
    }
    packet(&payload)
}

/// LOGIN7's answer: ERROR `number` (state 1, class 20) saying `message`, then DONE with its error
/// bit.
fn login_refusal((number, message): (u32, &str)) -> Vec<u8> {
    error_reply(number, 20, message)
}

/// A server's answer of one error: an ERROR token (MS-TDS 2.2.7.10: number, state 1, `class`,
/// the message, the server's name, no procedure, line 1), then DONE with its error bit
/// (2.2.7.6), in one packet.
pub(super) fn error_reply(number: u32, class: u8, message: &str) -> Vec<u8> {
    let mut error = Vec::new();
    error.extend_from_slice(&number.to_le_bytes());
    error.push(1);
    error.push(class);
    error.extend_from_slice(
        &u16::try_from(message.encode_utf16().count())
            .unwrap()
            .to_le_bytes(),
    );
    error.extend_from_slice(&utf16(message));
    let server = "coincap-sql";
    error.push(u8::try_from(server.len()).unwrap());
    error.extend_from_slice(&utf16(server));
    error.push(0);
    error.extend_from_slice(&1u32.to_le_bytes());
    let mut payload = vec![0xAA];
    payload.extend_from_slice(&u16::try_from(error.len()).unwrap().to_le_bytes());
    payload.extend_from_slice(&error);
    payload.push(0xFD);
    payload.extend_from_slice(&0x0002u16.to_le_bytes());
    payload.extend_from_slice(&0u16.to_le_bytes());
    payload.extend_from_slice(&0u64.to_le_bytes());
    packet(&payload)
}

async fn refuse_login(mut client: TcpStream, refusal: (u32, &str)) -> std::io::Result<()> {
    assert_eq!(read_message(&mut client).await?, 0x12, "PRELOGIN first");
    client.write_all(&prelogin_answer()).await?;
    assert_eq!(read_message(&mut client).await?, 0x10, "then LOGIN7");
    client.write_all(&login_refusal(refusal)).await?;
    client.shutdown().await
}
