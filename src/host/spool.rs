//! A request's body, received whole: in memory when small, else spooled to a temporary file and
//! mapped, so a large Event Hubs batch (up to `maxEventBatchSize` events of up to 1 MB each, two
//! layers of JSON escaping on top) lives in the page cache, not in the process' heap, and is read
//! a part at a time ([`super::event_hubs::BodyStream`]). The file has no name (removed as it is
//! created) and goes when the body is dropped.

use std::ops::Deref;

use bytes::Bytes;
use http_body::Body;
use http_body_util::BodyExt;
use tokio::io::AsyncWriteExt;

/// Bodies up to this size are kept in memory.
pub const IN_MEMORY: usize = 64 * 1024 * 1024;
/// The largest body taken: 1000 events (`maxEventBatchSize` in host.json) of 1 MB, each byte
/// escaped as up to 7 (a control character, `\\u0001` in the host's double encoding), and room.
pub const MAX_BODY: u64 = 8 * 1024 * 1024 * 1024;

/// A body as received.
pub enum Received {
    Memory(Bytes),
    /// Mapped from its temporary file (kept open for the map's life).
    Spooled(memmap2::Mmap, std::fs::File),
}

impl Deref for Received {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Self::Memory(bytes) => bytes,
            Self::Spooled(map, _) => map,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("the request body is over {MAX_BODY} bytes")]
    TooLarge,
    #[error("the request body could not be read: {0}")]
    Read(String),
    #[error("the request body could not be spooled to a temporary file: {0}")]
    Spool(#[from] std::io::Error),
}

/// Reads `body` to its end: in memory up to [`IN_MEMORY`] bytes, past that into a temporary file.
pub async fn receive<B>(body: B) -> Result<Received, SpoolError>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    let expected = body.size_hint().exact().unwrap_or(0);
    if expected > MAX_BODY {
        return Err(SpoolError::TooLarge);
    }
    let mut body = body;
    let mut memory: Vec<u8> = Vec::with_capacity(expected.min(IN_MEMORY as u64) as usize);
    let mut file: Option<tokio::io::BufWriter<tokio::fs::File>> = None;
    let mut total: u64 = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| SpoolError::Read(e.to_string()))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        total += data.len() as u64;
        if total > MAX_BODY {
            return Err(SpoolError::TooLarge);
        }
        match file.as_mut() {
            Some(file) => file.write_all(&data).await?,
            None if memory.len() + data.len() <= IN_MEMORY => memory.extend_from_slice(&data),
            None => {
                let spooled = tokio::fs::File::from_std(tempfile::tempfile()?);
                let mut writer = tokio::io::BufWriter::with_capacity(1 << 20, spooled);
                writer.write_all(&std::mem::take(&mut memory)).await?;
                writer.write_all(&data).await?;
                file = Some(writer);
            }
        }
    }
    let Some(mut writer) = file else {
        return Ok(Received::Memory(Bytes::from(memory)));
    };
    writer.flush().await?;
    let file = writer.into_inner().into_std().await;
    // SAFETY: the file is this process' own, without a name (no one else can open it), and is
    // neither written nor truncated while mapped: it is kept beside the map and dropped with it.
    let map = unsafe { memmap2::Mmap::map(&file)? };
    Ok(Received::Spooled(map, file))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    /// A body of 1 MiB frames whose size is not known in advance.
    struct Frames(Vec<Bytes>);

    impl Body for Frames {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
            Poll::Ready(self.0.pop().map(|chunk| Ok(http_body::Frame::data(chunk))))
        }
    }

    #[tokio::test]
    async fn a_small_body_stays_in_memory_and_a_large_one_is_spooled_byte_for_byte() {
        let small = receive(http_body_util::Full::new(Bytes::from_static(b"{}")))
            .await
            .unwrap();
        assert!(matches!(small, Received::Memory(_)));
        assert_eq!(&*small, b"{}");
        let large: Vec<u8> = (0..IN_MEMORY + 3).map(|i| (i % 251) as u8).collect();
        let mut chunks: Vec<Bytes> = large.chunks(1 << 20).map(Bytes::copy_from_slice).collect();
        chunks.reverse();
        let spooled = receive(Frames(chunks)).await.unwrap();
        assert!(matches!(spooled, Received::Spooled(..)));
        assert!(*spooled == large[..], "the same bytes, in order");
    }
}
