//! Named prepared statements made safe behind a transaction-mode pooler (pgBouncer < 1.21, or
//! any pooler without `max_prepared_statements`).
//!
//! diesel-async prepares every statement with tokio-postgres' `prepare_typed`, which names it
//! (`s0`, `s1`, … per process) and parses it in one round trip (`Parse`/`Describe`/`Sync`),
//! then binds it in another (`Bind`/`Execute`/`Sync`) and closes it when dropped. Behind a
//! transaction-mode pooler each `Sync` outside a transaction may land on another server
//! connection, so the name is missing there (`prepared statement "s2" does not exist`) or is
//! another process's (`"s6" already exists`); disabling diesel's statement cache does not help,
//! the parse and the bind are still two round trips (measured, docs/crates.md §9).
//!
//! [`Rewriter`] sits on the byte stream between tokio-postgres and the pooler and rewrites
//! the frontend messages so that no statement outlives the batch that uses it:
//! - `Parse` of a named statement parses the unnamed statement instead, and the definition
//!   (query and parameter types) is kept under the name;
//! - `Bind` or `Describe` of a named statement is preceded, in the same batch, by a `Parse`
//!   of the unnamed statement from the kept definition (unless the batch already parsed it),
//!   and refers to the unnamed statement; the `ParseComplete` answering an injected `Parse`
//!   is removed from the backend stream, so tokio-postgres sees exactly the replies it asked for;
//! - `Close` of a named statement forgets the definition and closes the unnamed statement.
//!
//! Every batch is thereby self-contained, whichever server connection it reaches. The price:
//! the server parses and plans a statement at every execution, as with the simple protocol.
//! Portals and unnamed statements (`query_typed`) pass unchanged. TLS is negotiated below the
//! rewriter (module `pooler`); should an `SSLRequest` pass through it all the same, an `S`
//! answer turns it into a plain pipe rather than let it parse ciphertext.

use bytes::{Buf, BufMut, BytesMut};
use std::collections::{HashMap, VecDeque};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

const SSL_REQUEST: i32 = 80_877_103;
const GSSENC_REQUEST: i32 = 80_877_104;
/// Rewritten frontend bytes held before `poll_write` waits for the server to take them.
const HIGH_WATER: usize = 1 << 20;

/// What the backend's replies to the frontend messages sent so far will be, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reply {
    /// A `ParseComplete`; `true` when it answers an injected `Parse` and must be removed.
    Parse(bool),
    /// The `ReadyForQuery` that ends a batch (`Sync`, a simple `Query`, a `FunctionCall`).
    Ready,
}

/// The protocol state of one connection, both directions.
#[derive(Debug, Default)]
pub(crate) struct Rewriter {
    /// Startup, `SSLRequest` and `CancelRequest` carry no type byte.
    typed: bool,
    /// An `SSLRequest`/`GSSENCRequest` went out: the server answers with one byte.
    encryption_answer_pending: bool,
    /// TLS was negotiated on this stream: bytes pass through untouched.
    inert: bool,
    /// Definitions of the named statements tokio-postgres holds: the `Parse` body after the name.
    statements: HashMap<Vec<u8>, Vec<u8>>,
    /// The named statement the unnamed one holds in the batch being written, if any.
    loaded: Option<Vec<u8>>,
    replies: VecDeque<Reply>,
}

impl Rewriter {
    /// Moves the complete frontend messages of `input` to `out`, rewritten.
    pub(crate) fn frontend(&mut self, input: &mut BytesMut, out: &mut BytesMut) -> io::Result<()> {
        loop {
            if self.inert {
                out.extend_from_slice(&input.split());
                return Ok(());
            }
            if !self.typed {
                let Some(size) = length(input, 0)? else {
                    return Ok(());
                };
                let message = input.split_to(size);
                let code =
                    (size >= 8).then(|| i32::from_be_bytes([message[4], message[5], message[6], message[7]]));
                if matches!(code, Some(SSL_REQUEST | GSSENC_REQUEST)) {
                    self.encryption_answer_pending = true;
                } else {
                    self.typed = true;
                }
                out.extend_from_slice(&message);
                continue;
            }
            let Some(size) = length(input, 1)? else {
                return Ok(());
            };
            let message = input.split_to(size);
            self.frontend_message(message[0], &message[5..], &message, out)?;
        }
    }

    fn frontend_message(&mut self, tag: u8, body: &[u8], whole: &[u8], out: &mut BytesMut) -> io::Result<()> {
        match tag {
            b'P' => {
                let (name, definition) = cstr(body)?;
                if name.is_empty() {
                    self.loaded = None;
                    out.extend_from_slice(whole);
                } else {
                    put(out, b'P', &[b"\0", definition]);
                    self.statements.insert(name.to_vec(), definition.to_vec());
                    self.loaded = Some(name.to_vec());
                }
                self.replies.push_back(Reply::Parse(false));
            }
            b'B' => {
                let (portal, rest) = cstr(body)?;
                let (statement, params) = cstr(rest)?;
                if self.load(statement, out) {
                    put(out, b'B', &[portal, b"\0\0", params]);
                } else {
                    out.extend_from_slice(whole);
                }
            }
            b'D' if body.first() == Some(&b'S') => {
                let (statement, _) = cstr(&body[1..])?;
                if self.load(statement, out) {
                    put(out, b'D', &[b"S\0"]);
                } else {
                    out.extend_from_slice(whole);
                }
            }
            b'C' if body.first() == Some(&b'S') => {
                let (statement, _) = cstr(&body[1..])?;
                if !statement.is_empty() && self.statements.remove(statement).is_some() {
                    // Closing the unnamed statement answers the `CloseComplete` asked for,
                    // and is harmless: every use of a name parses it again.
                    put(out, b'C', &[b"S\0"]);
                    self.loaded = None;
                } else {
                    out.extend_from_slice(whole);
                }
            }
            // `Sync`, a simple `Query` and a `FunctionCall` end with `ReadyForQuery`; the next
            // batch may reach another server connection, whose unnamed statement is not ours.
            b'S' | b'Q' | b'F' => {
                self.loaded = None;
                self.replies.push_back(Reply::Ready);
                out.extend_from_slice(whole);
            }
            _ => out.extend_from_slice(whole),
        }
        Ok(())
    }

    /// Makes the unnamed statement hold `name`'s definition in this batch; `false` when
    /// `name` is unnamed or unknown (then the message goes out as it came).
    fn load(&mut self, name: &[u8], out: &mut BytesMut) -> bool {
        if name.is_empty() {
            return false;
        }
        let Some(definition) = self.statements.get(name) else {
            return false;
        };
        if self.loaded.as_deref() != Some(name) {
            put(out, b'P', &[b"\0", definition]);
            self.replies.push_back(Reply::Parse(true));
            self.loaded = Some(name.to_vec());
        }
        true
    }

    /// Moves the complete backend messages of `input` to `out`, without the `ParseComplete`s
    /// that answer injected `Parse`s.
    pub(crate) fn backend(&mut self, input: &mut BytesMut, out: &mut BytesMut) -> io::Result<()> {
        loop {
            if self.inert {
                out.extend_from_slice(&input.split());
                return Ok(());
            }
            if self.encryption_answer_pending {
                if input.is_empty() {
                    return Ok(());
                }
                let answer = input.get_u8();
                out.put_u8(answer);
                self.encryption_answer_pending = false;
                // `S` (TLS) or `G` (GSSAPI): what follows is encrypted.
                self.inert = answer != b'N';
                continue;
            }
            let Some(size) = length(input, 1)? else {
                return Ok(());
            };
            let message = input.split_to(size);
            match message[0] {
                b'1' => {
                    if self.replies.front() == Some(&Reply::Parse(true)) {
                        self.replies.pop_front();
                        continue;
                    }
                    if matches!(self.replies.front(), Some(Reply::Parse(false))) {
                        self.replies.pop_front();
                    }
                }
                // After an error the server skips the rest of the batch: no `ParseComplete`
                // will come for the `Parse`s before its end.
                b'E' => {
                    while matches!(self.replies.front(), Some(Reply::Parse(_))) {
                        self.replies.pop_front();
                    }
                }
                b'Z' => {
                    while matches!(self.replies.front(), Some(Reply::Parse(_))) {
                        self.replies.pop_front();
                    }
                    if self.replies.front() == Some(&Reply::Ready) {
                        self.replies.pop_front();
                    }
                }
                _ => {}
            }
            out.extend_from_slice(&message);
        }
    }
}

/// The size of the message at the start of `input`, its `offset` type bytes included (its
/// length field counts itself but not them), or `None` while it is incomplete.
fn length(input: &BytesMut, offset: usize) -> io::Result<Option<usize>> {
    if input.len() < offset + 4 {
        return Ok(None);
    }
    let field = u32::from_be_bytes([
        input[offset],
        input[offset + 1],
        input[offset + 2],
        input[offset + 3],
    ]);
    let len = usize::try_from(field).map_err(|_| invalid("message length"))?;
    if len < 4 {
        return Err(invalid("message length below 4"));
    }
    Ok((input.len() >= offset + len).then_some(offset + len))
}

/// Splits a NUL-terminated string off the front of `body`.
fn cstr(body: &[u8]) -> io::Result<(&[u8], &[u8])> {
    let end = body
        .iter()
        .position(|b| *b == 0)
        .ok_or_else(|| invalid("unterminated string"))?;
    Ok((&body[..end], &body[end + 1..]))
}

fn put(out: &mut BytesMut, tag: u8, parts: &[&[u8]]) {
    let len: usize = 4 + parts.iter().map(|p| p.len()).sum::<usize>();
    out.put_u8(tag);
    // A message is at most what its own length field held, which fit in a u32.
    out.put_u32(u32::try_from(len).unwrap_or(u32::MAX));
    for p in parts {
        out.extend_from_slice(p);
    }
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("PostgreSQL protocol: {what}"))
}

/// A stream that applies a [`Rewriter`] to what goes through it.
#[derive(Debug)]
pub(crate) struct Unnamed<S> {
    inner: S,
    rewriter: Rewriter,
    from_client: BytesMut,
    to_server: BytesMut,
    from_server: BytesMut,
    to_client: BytesMut,
}

impl<S> Unnamed<S> {
    pub(crate) fn new(inner: S, rewriter: Rewriter) -> Unnamed<S> {
        Unnamed {
            inner,
            rewriter,
            from_client: BytesMut::new(),
            to_server: BytesMut::new(),
            from_server: BytesMut::new(),
            to_client: BytesMut::new(),
        }
    }
}

impl<S: AsyncWrite + Unpin> Unnamed<S> {
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.to_server.is_empty() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.to_server))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.to_server.advance(n);
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Unnamed<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.to_client.is_empty() {
                let n = this.to_client.len().min(buf.remaining());
                buf.put_slice(&this.to_client.split_to(n));
                return Poll::Ready(Ok(()));
            }
            let mut chunk = [0u8; 8192];
            let mut read = ReadBuf::new(&mut chunk);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut read))?;
            if read.filled().is_empty() {
                // End of stream: whatever partial message is left goes out as it is.
                let rest = this.from_server.split();
                if rest.is_empty() {
                    return Poll::Ready(Ok(()));
                }
                this.to_client.extend_from_slice(&rest);
                continue;
            }
            this.from_server.extend_from_slice(read.filled());
            this.rewriter
                .backend(&mut this.from_server, &mut this.to_client)?;
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Unnamed<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.to_server.len() >= HIGH_WATER {
            ready!(this.poll_drain(cx))?;
        }
        this.from_client.extend_from_slice(buf);
        this.rewriter
            .frontend(&mut this.from_client, &mut this.to_server)?;
        // Pending here only means the server is not taking bytes now; the waker is set and
        // the caller's flush drains the rest.
        if let Poll::Ready(Err(e)) = this.poll_drain(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
#[path = "unnamed_tests.rs"]
mod tests;
