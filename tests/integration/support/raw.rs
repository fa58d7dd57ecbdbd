//! Misbehaving TCP peers on 127.0.0.1, for transport faults.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::thread;

/// A port where nothing listens (bound, then closed): connections are refused.
pub fn refused_port() -> u16 {
    let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
    listener.local_addr().unwrap().port()
}

/// How a [`Relay`] answers once it no longer forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Broken {
    /// The port is closed: connections are refused.
    Refused,
    /// Connections are accepted and never answered.
    Silent,
    /// A response is started, promising more body than it sends, and the connection closed:
    /// a reset in the middle of a response.
    CutShort,
}

/// A TCP relay on 127.0.0.1 to another local port, which can break later in one of the ways
/// above: a server that works for one stage and fails for the next, at the same address (the
/// post stage talks to the API address the main stage saw, not to one a later step set).
pub struct Relay {
    port: u16,
    mode: std::sync::Arc<std::sync::Mutex<Option<Broken>>>,
}

impl Relay {
    /// Starts a relay to `target` (a port on 127.0.0.1).
    pub fn to(target: u16) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let mode = std::sync::Arc::new(std::sync::Mutex::new(None));
        let shared = mode.clone();
        thread::spawn(move || {
            let mut held: Vec<TcpStream> = Vec::new();
            loop {
                let broken = *shared.lock().unwrap();
                if broken == Some(Broken::Refused) {
                    // Dropping the listener closes the port.
                    return;
                }
                let stream = match listener.accept() {
                    Ok((stream, _)) => stream,
                    Err(_) => {
                        thread::sleep(std::time::Duration::from_millis(5));
                        continue;
                    }
                };
                stream.set_nonblocking(false).unwrap();
                match broken {
                    None => {
                        let Ok(upstream) = TcpStream::connect(("127.0.0.1", target)) else {
                            continue;
                        };
                        pipe(stream.try_clone().unwrap(), upstream.try_clone().unwrap());
                        pipe(upstream, stream);
                    }
                    Some(Broken::Silent) => held.push(stream),
                    Some(Broken::CutShort) => {
                        let mut stream = stream;
                        let mut buffer = [0u8; 4096];
                        let _ = stream.read(&mut buffer);
                        let _ = stream.write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 200\r\n\r\n{\"key_id\":\"1\",",
                        );
                        let _ = stream.shutdown(std::net::Shutdown::Both);
                    }
                    Some(Broken::Refused) => return,
                }
            }
        });
        Self { port, mode }
    }

    /// The relay's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// From now on, answers as `broken` says.
    pub fn r#break(&self, broken: Broken) {
        *self.mode.lock().unwrap() = Some(broken);
        // Let the relay's loop see it before the next connection.
        thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    thread::spawn(move || {
        let _ = std::io::copy(&mut from, &mut to);
        let _ = to.shutdown(std::net::Shutdown::Write);
    });
}
