//! Misbehaving TCP peers on 127.0.0.1, for transport faults.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::thread;

/// A port where nothing listens, held for as long as the value lives (bound and never
/// listened on, so no other server can take it): connections are refused.
pub struct RefusedPort(tokio::net::TcpSocket);

impl RefusedPort {
    pub fn new() -> Self {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(([127, 0, 0, 1], 0).into()).unwrap();
        Self(socket)
    }

    pub fn port(&self) -> u16 {
        self.0.local_addr().unwrap().port()
    }
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
    /// Set once the relay closed its port (after [`Broken::Refused`]).
    closed: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Relay {
    /// Starts a relay to `target` (a port on 127.0.0.1).
    pub fn to(target: u16) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let mode = std::sync::Arc::new(std::sync::Mutex::new(None));
        let closed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (shared, closing) = (mode.clone(), closed.clone());
        thread::spawn(move || {
            let mut held: Vec<TcpStream> = Vec::new();
            let close = |listener: TcpListener| {
                // Dropping the listener closes the port.
                drop(listener);
                closing.store(true, std::sync::atomic::Ordering::SeqCst);
            };
            loop {
                if *shared.lock().unwrap() == Some(Broken::Refused) {
                    return close(listener);
                }
                let stream = match listener.accept() {
                    Ok((stream, _)) => stream,
                    Err(_) => {
                        thread::sleep(std::time::Duration::from_millis(5));
                        continue;
                    }
                };
                stream.set_nonblocking(false).unwrap();
                // The mode as it is now, after the connection came: one made after
                // [`Relay::break`] returned is always answered the new way.
                let broken = *shared.lock().unwrap();
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
                    Some(Broken::Refused) => return close(listener),
                }
            }
        });
        Self { port, mode, closed }
    }

    /// The relay's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// From now on, answers as `broken` says.
    pub fn r#break(&self, broken: Broken) {
        *self.mode.lock().unwrap() = Some(broken);
        // A closed port must be closed before anything connects again.
        while broken == Broken::Refused && !self.closed.load(std::sync::atomic::Ordering::SeqCst) {
            thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    thread::spawn(move || {
        let _ = std::io::copy(&mut from, &mut to);
        let _ = to.shutdown(std::net::Shutdown::Write);
    });
}
