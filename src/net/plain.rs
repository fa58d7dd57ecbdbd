//! The plain client, for every host but GitHub's REST API: the artifact service, blob
//! storage, the npm registry. No GitHub token is ever attached (signed blob URLs carry their
//! own authorization), answers are size-bounded, and each request is time-bounded. It sends
//! through the one [`Transport`], with its proxies and trust.

use std::time::Duration;

use http::{HeaderMap, Method, StatusCode};

use super::Transport;

/// A response: status, headers and the body read in full.
pub struct Answer {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Vec<u8>,
}

/// A streamed download: its status, and how many bytes of the body went to the sink.
#[derive(Debug)]
pub struct Streamed {
    /// The status.
    pub status: StatusCode,
    /// The headers (a redirect's `Location` is not followed here).
    pub headers: HeaderMap,
    /// The body's length, as read (an error answer's body is not streamed: see
    /// [`Plain::download`]).
    pub bytes: u64,
    /// An error answer's body, at most 64 KiB of it.
    pub error_body: Vec<u8>,
}

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The URL cannot be used.
    #[error("{0}")]
    Url(String),
    /// No answer in time.
    #[error("no answer within {0} s")]
    Timeout(u64),
    /// A download went quiet: nothing arrived for this many seconds.
    #[error("nothing arrived for {0} s")]
    Stalled(u64),
    /// Connection or protocol failure.
    #[error("request failed: {0}")]
    Transport(String),
    /// The answer was larger than allowed.
    #[error("the answer is larger than {0} bytes")]
    TooLarge(usize),
    /// Where the answer went could not take it (a full disk): no use trying again.
    #[error("cannot keep the answer: {0}")]
    Sink(String),
}

/// The client.
pub struct Plain {
    transport: Transport,
    timeout: Duration,
    /// How long a download's body may send nothing before it is given up.
    quiet: Duration,
}

impl Plain {
    /// A client over `transport`, with `timeout` per request.
    pub fn new(transport: &Transport, timeout: Duration) -> Self {
        Self {
            transport: transport.clone(),
            timeout,
            quiet: timeout,
        }
    }

    /// Gives up a download whose body sends nothing for `quiet` (a connection gone silent),
    /// long before the whole exchange's timeout.
    #[must_use]
    pub fn quiet_after(mut self, quiet: Duration) -> Self {
        self.quiet = quiet;
        self
    }

    /// Sends one request; reads at most `limit` bytes of the answer.
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
        limit: usize,
    ) -> Result<Answer, HttpError> {
        let request = self.request(method, url, headers, body)?;
        self.within(async {
            let mut response = self.open(request, url).await?;
            let status = response.status();
            let headers = response.headers().clone();
            let mut body = Vec::new();
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|e| HttpError::Transport(self.transport.describe(&e, url)))?
            {
                if body.len() + chunk.len() > limit {
                    return Err(HttpError::TooLarge(limit));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(Answer {
                status,
                headers,
                body,
            })
        })
        .await
    }

    /// GETs `url` and hands a 200 answer's body to `sink` as it arrives, at most `limit`
    /// bytes of it (more is [`HttpError::TooLarge`]); any other answer's body is kept for its
    /// message instead. The whole exchange gets the client's timeout, and the body may go no
    /// longer than [`Plain::quiet_after`] without a byte.
    pub async fn download(
        &self,
        url: &str,
        headers: &[(&str, String)],
        limit: u64,
        sink: &mut (dyn FnMut(&[u8]) -> std::io::Result<()> + Send),
    ) -> Result<Streamed, HttpError> {
        let request = self.request(Method::GET, url, headers, Vec::new())?;
        self.within(async {
            let mut response = self.open(request, url).await?;
            let status = response.status();
            let mut streamed = Streamed {
                status,
                headers: response.headers().clone(),
                bytes: 0,
                error_body: Vec::new(),
            };
            let quiet = |_| HttpError::Stalled(self.quiet.as_secs());
            while let Some(data) = tokio::time::timeout(self.quiet, response.chunk())
                .await
                .map_err(quiet)?
                .map_err(|e| HttpError::Transport(self.transport.describe(&e, url)))?
            {
                if status != StatusCode::OK {
                    let room = (64 * 1024usize).saturating_sub(streamed.error_body.len());
                    streamed
                        .error_body
                        .extend_from_slice(&data[..data.len().min(room)]);
                    continue;
                }
                streamed.bytes += data.len() as u64;
                if streamed.bytes > limit {
                    return Err(HttpError::TooLarge(
                        usize::try_from(limit).unwrap_or(usize::MAX),
                    ));
                }
                sink(&data).map_err(|e| HttpError::Sink(e.to_string()))?;
            }
            Ok(streamed)
        })
        .await
    }

    /// Sends `request` and waits for the answer's head.
    async fn open(
        &self,
        request: reqwest::Request,
        url: &str,
    ) -> Result<reqwest::Response, HttpError> {
        self.transport
            .client()
            .execute(request)
            .await
            .map_err(|e| HttpError::Transport(self.transport.describe(&e, url)))
    }

    /// A request to an https URL (plain http only on loopback) with these headers and body.
    fn request(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> Result<reqwest::Request, HttpError> {
        let mut parsed = reqwest::Url::parse(url)
            .map_err(|_| HttpError::Url(format!("\"{}\" is not a URL", shown(url))))?;
        // No credential is ever sent from a URL (reqwest would send its user:password).
        let _ = parsed.set_username("");
        let _ = parsed.set_password(None);
        if !allowed(url) {
            return Err(HttpError::Url(format!(
                "{} is not https (plain http is only for loopback)",
                shown(url)
            )));
        }
        let mut request = self.transport.client().request(method, parsed);
        for (name, value) in headers {
            let value = http::HeaderValue::from_str(value)
                .map_err(|_| HttpError::Url(format!("bad header value for {name}")))?;
            request = request.header(*name, value);
        }
        request
            .body(body)
            .build()
            .map_err(|e| HttpError::Url(super::describe(&e)))
    }

    /// `exchange`, within the client's timeout.
    async fn within<T>(
        &self,
        exchange: impl std::future::Future<Output = Result<T, HttpError>>,
    ) -> Result<T, HttpError> {
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| HttpError::Timeout(self.timeout.as_secs()))?
    }
}

/// Whether `url` is one this client sends to: https, or plain http on loopback.
pub fn allowed(url: &str) -> bool {
    url.parse::<http::Uri>()
        .is_ok_and(|uri| match uri.scheme_str() {
            Some("https") => true,
            Some("http") => matches!(uri.host(), Some("localhost" | "127.0.0.1" | "[::1]")),
            _ => false,
        })
}

/// What an error answer says: its JSON `field` (GitHub's `message`, twirp's `msg`), else the
/// start of the body as text (Azure answers in XML).
pub fn message(body: &[u8], field: &str) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v[field].as_str().map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(300).collect())
}

/// A URL as it may be shown: without a user or password, and without its query or fragment
/// (a signed blob URL's query holds the signature).
pub fn shown(url: &str) -> String {
    let url = url.split(['?', '#']).next().unwrap_or(url);
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            format!("{scheme}://{host}{path}")
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    /// A server on loopback that answers one request with a head promising 100 bytes and
    /// then sends `sent`, keeping the connection open.
    async fn answering(sent: &'static [u8]) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/file", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request).await;
            let head = "HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n";
            stream.write_all(head.as_bytes()).await.unwrap();
            stream.write_all(sent).await.unwrap();
            tokio::time::sleep(Duration::from_secs(30)).await;
        });
        url
    }

    #[tokio::test]
    async fn a_download_that_goes_quiet_is_given_up() {
        let url = answering(b"first bytes").await;
        let client = Plain::new(&Transport::direct().unwrap(), Duration::from_secs(20))
            .quiet_after(Duration::from_millis(300));
        let mut got = Vec::new();
        let answer = client
            .download(&url, &[], 1000, &mut |chunk| {
                got.extend_from_slice(chunk);
                Ok(())
            })
            .await;
        assert!(matches!(answer, Err(HttpError::Stalled(0))), "{answer:?}");
        assert_eq!(got, b"first bytes");
    }

    #[tokio::test]
    async fn a_download_that_keeps_sending_is_not_quiet() {
        let url = answering(&[7u8; 100]).await;
        let client = Plain::new(&Transport::direct().unwrap(), Duration::from_secs(20))
            .quiet_after(Duration::from_millis(300));
        let answer = client
            .download(&url, &[], 1000, &mut |_| Ok(()))
            .await
            .unwrap();
        assert_eq!((answer.status, answer.bytes), (StatusCode::OK, 100));
    }

    #[test]
    fn urls_are_shown_without_credentials_or_query() {
        assert_eq!(
            shown("https://user:secret@npm.example/path/x"),
            "https://npm.example/path/x"
        );
        assert_eq!(shown("https://npm.example"), "https://npm.example");
        assert_eq!(
            shown("https://blob.example/c/d?sig=SECRET&se=1#frag"),
            "https://blob.example/c/d"
        );
        assert_eq!(shown("not a url?x"), "not a url");
    }
}
