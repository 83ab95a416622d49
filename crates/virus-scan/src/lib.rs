#![doc = include_str!("../README.md")]

use std::io;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Bytes per INSTREAM chunk: the 4-byte headers cost nothing at this size, and memory stays at
/// one chunk whatever the file's size.
const CHUNK: usize = 64 * 1024;
/// clamd's replies are one short line; a longer one is not clamd talking.
const MAX_REPLY: usize = 4096;

/// What clamd said about a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Clean,
    /// The name of the signature clamd matched, e.g. `Win.Test.EICAR_HDB-1`.
    Infected(String),
}

/// Why a scan has no verdict. Every case means "not known to be clean".
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("cannot connect to clamd at {addr}")]
    Connect {
        addr: String,
        #[source]
        source: io::Error,
    },
    #[error("clamd at {addr} did not accept a connection within {after:?}")]
    ConnectTimeout { addr: String, after: Duration },
    #[error("clamd at {addr} gave no verdict within {after:?}")]
    Timeout { addr: String, after: Duration },
    #[error("the connection to clamd at {addr} failed")]
    Io {
        addr: String,
        #[source]
        source: io::Error,
    },
    /// clamd's own `… ERROR` reply, e.g. `INSTREAM size limit exceeded. ERROR` for a stream
    /// longer than its `StreamMaxLength`.
    #[error("clamd refused the scan: {0}")]
    Refused(String),
    #[error("clamd answered something unexpected: {0:?}")]
    Protocol(String),
    #[error("cannot read the bytes to scan")]
    Source(#[source] io::Error),
}

/// A client of one clamd. Cheap to clone; every scan opens its own connection (clamd serves
/// one command per connection unless sessions are used, and a pool would only hide a dead peer).
#[derive(Debug, Clone)]
pub struct Clamd {
    addr: String,
    connect_timeout: Duration,
    timeout: Duration,
}

impl Clamd {
    /// `addr` is `host:port`, resolved at each connection: a Kubernetes Service name keeps
    /// working when clamd's pod moves.
    pub fn new(addr: impl Into<String>, connect_timeout: Duration, timeout: Duration) -> Clamd {
        Clamd {
            addr: addr.into(),
            connect_timeout,
            timeout,
        }
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Streams `source` to clamd until its end and returns the verdict. The whole exchange,
    /// connection included, is bounded by the scan timeout.
    pub async fn scan<R: AsyncRead + Unpin>(&self, source: R) -> Result<Verdict, ScanError> {
        tokio::time::timeout(self.timeout, self.exchange(source))
            .await
            .unwrap_or_else(|_| {
                Err(ScanError::Timeout {
                    addr: self.addr.clone(),
                    after: self.timeout,
                })
            })
    }

    /// `PING` → `PONG`: clamd is up and has loaded its signatures (it opens its socket only after).
    pub async fn ping(&self) -> Result<(), ScanError> {
        let exchange = async {
            let mut stream = self.connect().await?;
            stream.write_all(b"zPING\0").await.map_err(|e| self.io(e))?;
            let reply = read_reply(&mut stream).await.map_err(|e| self.io(e))?;
            if reply == "PONG" {
                Ok(())
            } else {
                Err(ScanError::Protocol(reply))
            }
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .unwrap_or_else(|_| {
                Err(ScanError::Timeout {
                    addr: self.addr.clone(),
                    after: self.timeout,
                })
            })
    }

    async fn exchange<R: AsyncRead + Unpin>(&self, mut source: R) -> Result<Verdict, ScanError> {
        let mut stream = self.connect().await?;
        let sent = send(&mut stream, &mut source).await;
        if let Err(Send::Source(e)) = sent {
            return Err(ScanError::Source(e));
        }
        // clamd answers and hangs up as soon as it refuses a stream (past StreamMaxLength): the
        // reply then says why, which is worth more than the broken pipe our next write met.
        let reply = read_reply(&mut stream).await;
        match (sent, reply) {
            (_, Ok(reply)) if !reply.is_empty() => parse_reply(&reply),
            (Err(Send::Socket(e) | Send::Source(e)), _) | (Ok(()), Err(e)) => Err(self.io(e)),
            (Ok(()), Ok(_)) => Err(ScanError::Protocol(
                "the connection closed without a reply".into(),
            )),
        }
    }

    async fn connect(&self) -> Result<TcpStream, ScanError> {
        match tokio::time::timeout(self.connect_timeout, TcpStream::connect(self.addr.as_str())).await {
            Ok(Ok(stream)) => {
                // Our chunks are already large; the small final frame should not wait for an ack.
                let _ = stream.set_nodelay(true);
                Ok(stream)
            }
            Ok(Err(source)) => Err(ScanError::Connect {
                addr: self.addr.clone(),
                source,
            }),
            Err(_) => Err(ScanError::ConnectTimeout {
                addr: self.addr.clone(),
                after: self.connect_timeout,
            }),
        }
    }

    fn io(&self, source: io::Error) -> ScanError {
        ScanError::Io {
            addr: self.addr.clone(),
            source,
        }
    }
}

/// Which side of a send failed: our file, or the socket to clamd.
enum Send {
    Source(io::Error),
    Socket(io::Error),
}

/// `zINSTREAM\0`, the source in `<u32 BE length><bytes>` frames, and the zero-length frame
/// that ends the stream (sent when the source reads 0 bytes: its end).
async fn send<R: AsyncRead + Unpin>(stream: &mut TcpStream, source: &mut R) -> Result<(), Send> {
    stream.write_all(b"zINSTREAM\0").await.map_err(Send::Socket)?;
    let mut frame = vec![0u8; 4 + CHUNK];
    loop {
        let n = source.read(&mut frame[4..]).await.map_err(Send::Source)?;
        let len = u32::try_from(n).expect("a chunk is 64 KiB at most");
        frame[..4].copy_from_slice(&len.to_be_bytes());
        stream.write_all(&frame[..4 + n]).await.map_err(Send::Socket)?;
        if n == 0 {
            return Ok(());
        }
    }
}

/// One NUL-terminated reply (the `z` prefix of the command asks for NUL rather than newline),
/// or what came before the connection closed.
async fn read_reply(stream: &mut TcpStream) -> io::Result<String> {
    let mut reply = Vec::new();
    let mut buf = [0u8; 512];
    while !reply.contains(&0) && reply.len() <= MAX_REPLY {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        reply.extend_from_slice(&buf[..n]);
    }
    let end = reply.iter().position(|&b| b == 0).unwrap_or(reply.len());
    Ok(String::from_utf8_lossy(&reply[..end]).trim().to_owned())
}

/// `stream: OK`, `stream: <signature> FOUND`, or `<reason> ERROR`; anything else is refused
/// rather than guessed at.
fn parse_reply(reply: &str) -> Result<Verdict, ScanError> {
    let reply = reply.trim_end_matches('\0').trim();
    if reply.ends_with(" ERROR") {
        return Err(ScanError::Refused(reply.to_owned()));
    }
    match reply.strip_prefix("stream: ") {
        Some("OK") => Ok(Verdict::Clean),
        Some(found) => match found.strip_suffix(" FOUND").map(str::trim) {
            Some(signature) if !signature.is_empty() => Ok(Verdict::Infected(signature.to_owned())),
            _ => Err(ScanError::Protocol(reply.to_owned())),
        },
        None => Err(ScanError::Protocol(reply.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies() {
        assert_eq!(parse_reply("stream: OK\0").unwrap(), Verdict::Clean);
        assert_eq!(
            parse_reply("stream: Win.Test.EICAR_HDB-1 FOUND").unwrap(),
            Verdict::Infected("Win.Test.EICAR_HDB-1".into())
        );
        let refused = [
            "INSTREAM size limit exceeded. ERROR",
            "stream: Can't allocate memory ERROR",
        ];
        for reply in refused {
            assert!(
                matches!(parse_reply(reply), Err(ScanError::Refused(r)) if r == reply),
                "{reply}"
            );
        }
        for odd in ["", "PONG", "stream:  FOUND", "stream: OKAY", "OK"] {
            assert!(
                matches!(parse_reply(odd), Err(ScanError::Protocol(_))),
                "{odd:?} taken for a verdict"
            );
        }
    }

    #[tokio::test]
    async fn nobody_listening_is_a_connect_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let clamd = Clamd::new(addr.to_string(), Duration::from_secs(2), Duration::from_secs(5));
        let e = clamd.scan(&b"a,b\n"[..]).await.unwrap_err();
        assert!(matches!(e, ScanError::Connect { .. }), "{e:?}");
        assert!(clamd.ping().await.is_err());
    }

    /// A peer that accepts and never answers (a hung clamd) costs the scan timeout, no more.
    #[tokio::test]
    async fn a_silent_peer_times_out() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let held = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(30)).await;
            drop(socket);
        });
        let clamd = Clamd::new(
            addr.to_string(),
            Duration::from_secs(2),
            Duration::from_millis(300),
        );
        let started = std::time::Instant::now();
        let e = clamd.scan(&b"a,b\n"[..]).await.unwrap_err();
        assert!(matches!(e, ScanError::Timeout { .. }), "{e:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
        held.abort();
    }
}
