//! What goes through a tunnel: the edge's signalling (a join, then messages it acknowledges)
//! or raw bytes to the TCP echo, checked on their way back.

use std::io;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// How long the edge may take to acknowledge the join.
const JOIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Body size of the signalling messages that carry tunnel bytes to an edge.
const MSG_BODY: usize = 1_000;
/// Write size of raw tunnel bytes.
const CHUNK: usize = 64 * 1024;
/// The longest line read back from an edge.
const MAX_LINE: usize = 4_096;

/// The byte at offset `i` of a tunnel transfer.
pub fn pattern(i: u64) -> u8 {
    (i % 251) as u8
}

/// How one tunnel transfer ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TunnelOutcome {
    /// Bytes written into the tunnel.
    pub sent: u64,
    /// Bytes that came back (echo) or were acknowledged (edge).
    pub back: u64,
    /// How long it took, from the first byte written to the last one back.
    pub elapsed: Duration,
    /// Why it did not complete; `None` when it did.
    pub error: Option<String>,
}

/// Joins `channel` as `uid` on an edge's signalling stream and waits for the ack.
pub async fn join(stream: &mut TcpStream, channel: &str, uid: u32) -> io::Result<()> {
    let mut line = serde_json::to_vec(&json!({"t": "join", "ch": channel, "uid": uid, "seq": 1}))?;
    line.push(b'\n');
    stream.write_all(&line).await?;
    let mut reader = BufReader::new(stream);
    let ack = tokio::time::timeout(JOIN_TIMEOUT, read_line(&mut reader))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no ack of the join"))??;
    if ack.get("t").and_then(Value::as_str) != Some("ack") {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the edge answered the join with {ack}"),
        ));
    }
    Ok(())
}

async fn read_line<R: tokio::io::AsyncBufRead + Unpin>(reader: &mut R) -> io::Result<Value> {
    let mut line = Vec::new();
    let n = (&mut *reader)
        .take(MAX_LINE as u64)
        .read_until(b'\n', &mut line)
        .await?;
    if n == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    serde_json::from_slice(&line).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Sends `bytes` through the tunnel within `limit`: to an edge as acknowledged signalling
/// messages (`edge`), otherwise raw to the TCP echo, checking every byte that comes back. The
/// stream is handed back for the session to stay open, unless the transfer broke it.
pub async fn transfer(
    mut stream: TcpStream,
    bytes: u64,
    edge: bool,
    limit: Duration,
) -> (Option<TcpStream>, TunnelOutcome) {
    let start = Instant::now();
    let mut outcome = TunnelOutcome {
        sent: 0,
        back: 0,
        elapsed: Duration::ZERO,
        error: None,
    };
    let result = tokio::time::timeout(limit, async {
        if edge {
            signalling(&mut stream, bytes, &mut outcome).await
        } else {
            echo(&mut stream, bytes, &mut outcome).await
        }
    })
    .await;
    outcome.elapsed = start.elapsed();
    let error = match result {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e),
        Err(_) => Some(format!("not done within {limit:?}")),
    };
    match error {
        None => (Some(stream), outcome),
        Some(e) => {
            outcome.error = Some(format!(
                "after {} of {bytes} bytes sent, {} back: {e}",
                outcome.sent, outcome.back
            ));
            (None, outcome)
        }
    }
}

async fn echo(
    stream: &mut TcpStream,
    bytes: u64,
    outcome: &mut TunnelOutcome,
) -> Result<(), String> {
    let (mut rd, mut wr) = stream.split();
    let sent = std::cell::Cell::new(0u64);
    let writing = async {
        let mut chunk = vec![0u8; CHUNK];
        while sent.get() < bytes {
            let n = (bytes - sent.get()).min(CHUNK as u64) as usize;
            for (i, b) in chunk[..n].iter_mut().enumerate() {
                *b = pattern(sent.get() + i as u64);
            }
            wr.write_all(&chunk[..n])
                .await
                .map_err(|e| format!("write: {e}"))?;
            sent.set(sent.get() + n as u64);
        }
        Ok::<(), String>(())
    };
    let mut back = 0u64;
    let reading = async {
        let mut buf = vec![0u8; CHUNK];
        while back < bytes {
            let n = rd.read(&mut buf).await.map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                return Err("the relay closed the tunnel".to_owned());
            }
            for (i, b) in buf[..n].iter().enumerate() {
                if *b != pattern(back + i as u64) {
                    return Err(format!("byte {} came back corrupted", back + i as u64));
                }
            }
            back += n as u64;
        }
        Ok(())
    };
    let (w, r) = tokio::join!(writing, reading);
    outcome.sent = sent.get();
    outcome.back = back;
    r.and(w)
}

async fn signalling(
    stream: &mut TcpStream,
    bytes: u64,
    outcome: &mut TunnelOutcome,
) -> Result<(), String> {
    let messages = bytes.div_ceil(MSG_BODY as u64);
    let (rd, mut wr) = stream.split();
    let sent = std::cell::Cell::new(0u64);
    let writing = async {
        let body = "x".repeat(MSG_BODY);
        for m in 0..messages {
            let mut line = serde_json::to_vec(&json!({"t": "msg", "seq": m + 2, "body": body}))
                .map_err(|e| e.to_string())?;
            line.push(b'\n');
            wr.write_all(&line)
                .await
                .map_err(|e| format!("write: {e}"))?;
            sent.set(sent.get() + MSG_BODY as u64);
        }
        Ok::<(), String>(())
    };
    let mut acked = 0u64;
    let reading = async {
        let mut reader = BufReader::new(rd);
        while acked < messages {
            let line = read_line(&mut reader).await.map_err(|e| match e.kind() {
                io::ErrorKind::UnexpectedEof => "the relay closed the tunnel".to_owned(),
                _ => format!("read: {e}"),
            })?;
            if line.get("t").and_then(Value::as_str) == Some("ack") {
                acked += 1;
            }
        }
        Ok(())
    };
    let (w, r) = tokio::join!(writing, reading);
    outcome.sent = sent.get();
    outcome.back = acked * MSG_BODY as u64;
    r.and(w)
}
