//! A recording forward proxy on a Unix socket, standing in for the egress proxy in tests of
//! the engine's outbound path.
//!
//! It reads each request head, records its request line (so a test can check that the
//! engine sent the absolute-form URI), forwards the bytes unchanged to one TCP upstream and
//! copies the response back. Upstream servers built on hyper accept absolute-form targets.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UnixListener, UnixStream};

/// Largest request head the proxy reads, in bytes.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// A running proxy. It stops when dropped.
pub struct RecordingProxy {
    socket: PathBuf,
    request_lines: Arc<Mutex<Vec<String>>>,
    heads: Arc<Mutex<Vec<String>>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for RecordingProxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl RecordingProxy {
    /// Listens on the Unix socket `socket` and forwards to `upstream` (`host:port`).
    ///
    /// # Panics
    /// Panics when the socket cannot be bound.
    pub fn start(socket: &Path, upstream: String) -> Self {
        let listener = UnixListener::bind(socket).expect("bind the recording proxy socket");
        let request_lines = Arc::new(Mutex::new(Vec::new()));
        let heads = Arc::new(Mutex::new(Vec::new()));
        let (lines, all_heads) = (request_lines.clone(), heads.clone());
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (lines, all_heads, upstream) = (lines.clone(), all_heads.clone(), upstream.clone());
                tokio::spawn(async move {
                    if let Err(error) = forward(stream, &upstream, &lines, &all_heads).await {
                        tracing::debug!(%error, "recording proxy connection failed");
                    }
                });
            }
        });
        Self { socket: socket.to_owned(), request_lines, heads, server }
    }

    /// Returns the socket path, for `HOUSTON_EGRESS_SOCKET`.
    #[must_use]
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Returns the request lines received, such as `POST http://127.0.0.1:4010/v1/messages HTTP/1.1`.
    #[must_use]
    pub fn request_lines(&self) -> Vec<String> {
        self.request_lines.lock().expect("proxy lock").clone()
    }

    /// Returns the full request heads received (request line and headers).
    #[must_use]
    pub fn heads(&self) -> Vec<String> {
        self.heads.lock().expect("proxy lock").clone()
    }
}

async fn forward(mut client: UnixStream, upstream: &str, lines: &Mutex<Vec<String>>, heads: &Mutex<Vec<String>>) -> std::io::Result<()> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buffer.windows(4).any(|window| window == b"\r\n\r\n") {
        let read = client.read(&mut chunk).await?;
        if read == 0 || buffer.len() > MAX_HEAD_BYTES {
            return Ok(());
        }
        buffer.extend_from_slice(&chunk[..read]);
    }
    let text = String::from_utf8_lossy(&buffer);
    let head = text.split("\r\n\r\n").next().unwrap_or_default().to_owned();
    lines.lock().expect("proxy lock").push(head.lines().next().unwrap_or_default().to_owned());
    heads.lock().expect("proxy lock").push(head);

    let mut server = TcpStream::connect(upstream).await?;
    server.write_all(&buffer).await?;
    tokio::io::copy_bidirectional(&mut client, &mut server).await?;
    Ok(())
}
