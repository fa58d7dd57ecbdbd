//! A forward HTTP proxy on 127.0.0.1, standing in for a company's proxy: the only route from a
//! runner to GitHub. It tunnels `CONNECT host:port` (and, inspecting, opens the tunnel's TLS
//! with a certificate its own CA signs, as a TLS-inspecting proxy does), forwards requests in
//! absolute form (`GET http://host:port/path`), may require Basic proxy credentials, and keeps
//! a record of what it was asked ([`Proxy::seen`]).
//!
//! How it differs from a real proxy (squid, a company's appliance):
//! - It resolves only the host names it was given ([`ProxyOptions::hosts`]), to the address
//!   *and port* given there: the port the client asked for is not used (the fakes listen on
//!   ephemeral ports, while a client asks for 443). It never asks DNS. The loopback literals
//!   `localhost`, `127.0.0.1` and `[::1]` it connects to directly, at the port asked for. Any
//!   other name gets 502 Bad Gateway, as a proxy answers for a host its DNS does not know.
//! - HTTP/1.1 only, toward the client and the upstream; inside an inspected tunnel its TLS
//!   offers ALPN `http/1.1` only. In absolute form only `http://` (anything else gets 400); a
//!   request in origin form (not meant for a proxy) gets 400 too.
//! - One user, Basic authentication only; no access rules (CONNECT to any port), no caching,
//!   no `Via` or `X-Forwarded-For`, no timeouts. It drops `Proxy-Authorization` and
//!   `Proxy-Connection` before forwarding, and leaves every other header as it came.
//! - Inspecting, it makes the certificate for the CONNECT request's host (not the client's SNI),
//!   trusts only the fakes' CA upstream, and relays the requests of one tunnel one at a time
//!   over one upstream connection (opening another when the upstream closes it).

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::net::{Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use http::header::{HOST, PROXY_AUTHENTICATE, PROXY_AUTHORIZATION};
use http::uri::{Authority, Scheme};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::client::conn::http1::SendRequest;
use hyper::ext::ReasonPhrase;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::net::TcpStream;
use tokio::runtime::Runtime;
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// What the proxy does: where names go, whom it lets through, whether it inspects TLS.
#[derive(Debug, Clone, Default)]
pub struct ProxyOptions {
    /// Host names the proxy resolves, and to what (the tests' fakes on 127.0.0.1): a name not
    /// here (and not a loopback literal: "localhost", "127.0.0.1", "[::1]", which it connects to
    /// directly) gets 502 Bad Gateway, as a proxy answers for a host its DNS does not know.
    pub hosts: BTreeMap<String, SocketAddr>,
    /// Required credentials, `(user, password)`: every request (CONNECT or absolute form) must
    /// carry `Proxy-Authorization: Basic base64(user:password)`, else 407 with
    /// `Proxy-Authenticate: Basic realm="proxy"`.
    pub credentials: Option<(String, String)>,
    /// TLS inspection: the proxy answers CONNECT's TLS itself with a certificate for the
    /// requested host signed by its own CA (a company CA, [`Proxy::ca_pem`]), and talks TLS to
    /// the upstream trusting [`Inspection::upstream_ca_pem`] (the fakes' CA).
    pub inspect: Option<Inspection>,
}

/// How an inspecting proxy reaches the upstream.
#[derive(Debug, Clone)]
pub struct Inspection {
    /// The CA the upstream's certificates come from (the fakes' [`super::serve::TestCa`]), PEM:
    /// the only one the proxy trusts.
    pub upstream_ca_pem: String,
}

/// One request the proxy received, and how it answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// "CONNECT", or the absolute-form request's method.
    pub method: String,
    /// CONNECT's authority ("host:port"), or the absolute-form URI ("http://host:port/path?q").
    pub target: String,
    /// The Proxy-Authorization header as received, if any.
    pub proxy_authorization: Option<String>,
    /// The status the proxy answered (200 for an established tunnel, 400, 407, 502, or the
    /// upstream's status for absolute form).
    pub status: u16,
    /// For inspected CONNECT tunnels: the requests seen inside the tunnel ("GET /path?q",
    /// method and request target), else empty.
    pub inside: Vec<String>,
}

/// The proxy, running on its own runtime; dropped, it stops.
pub struct Proxy {
    /// Its address.
    pub addr: SocketAddr,
    credentials: Option<(String, String)>,
    state: Arc<State>,
    runtime: Option<Runtime>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Proxy {
    /// Starts the proxy on 127.0.0.1 (an ephemeral port).
    pub fn start(options: ProxyOptions) -> Proxy {
        let (runtime, listener, addr) = super::serve::listen();
        let state = Arc::new(State {
            hosts: options
                .hosts
                .into_iter()
                .map(|(name, addr)| (name.to_ascii_lowercase(), addr))
                .collect(),
            credentials: options
                .credentials
                .as_ref()
                .map(|(user, password)| format!("{user}:{password}")),
            inspector: options
                .inspect
                .map(|inspection| Inspector::new(&inspection)),
            seen: Mutex::new(Vec::new()),
        });
        let accepting = state.clone();
        runtime.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = accepting.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(handle(state, request).await) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .with_upgrades()
                        .await;
                });
            }
        });
        Proxy {
            addr,
            credentials: options.credentials,
            state,
            runtime: Some(runtime),
        }
    }

    /// "http://127.0.0.1:PORT", with "user:password@" (percent-encoded) when credentials are set.
    pub fn url(&self) -> String {
        self.url_as(&self.addr.ip().to_string())
    }

    /// The URL with a given host name instead of 127.0.0.1 (for a container that must not see
    /// a loopback literal): "http://[user:password@]HOST:PORT".
    pub fn url_as(&self, host: &str) -> String {
        let userinfo = match &self.credentials {
            Some((user, password)) => format!(
                "{}:{}@",
                utf8_percent_encode(user, NON_ALPHANUMERIC),
                utf8_percent_encode(password, NON_ALPHANUMERIC)
            ),
            None => String::new(),
        };
        format!("http://{userinfo}{host}:{}", self.addr.port())
    }

    /// The inspecting CA's certificate, PEM (None without inspection).
    pub fn ca_pem(&self) -> Option<String> {
        self.state
            .inspector
            .as_ref()
            .map(|inspector| inspector.ca_pem.clone())
    }

    /// What it received so far, in order (of its answers).
    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }
}

/// What the connections share.
struct State {
    /// Lower-case names.
    hosts: BTreeMap<String, SocketAddr>,
    /// "user:password".
    credentials: Option<String>,
    inspector: Option<Inspector>,
    seen: Mutex<Vec<Seen>>,
}

impl State {
    /// Where a name goes: the map, else a loopback literal at `port`.
    fn resolve(&self, host: &str, port: u16) -> Option<SocketAddr> {
        let host = host.to_ascii_lowercase();
        if let Some(addr) = self.hosts.get(&host) {
            return Some(*addr);
        }
        match host.as_str() {
            "localhost" | "127.0.0.1" => Some(SocketAddr::from(([127, 0, 0, 1], port))),
            "[::1]" | "::1" => Some(SocketAddr::from((Ipv6Addr::LOCALHOST, port))),
            _ => None,
        }
    }

    /// Whether `header` (Proxy-Authorization) carries the credentials.
    fn authorized(&self, header: Option<&str>) -> bool {
        let Some(expected) = &self.credentials else {
            return true;
        };
        let Some((scheme, token)) = header.and_then(|value| value.trim().split_once(' ')) else {
            return false;
        };
        scheme.eq_ignore_ascii_case("basic")
            && STANDARD
                .decode(token.trim())
                .is_ok_and(|decoded| decoded == expected.as_bytes())
    }

    /// Records an answer; its index, for [`State::note_inside`].
    fn record(&self, seen: Seen) -> usize {
        let mut all = self.seen.lock().unwrap();
        all.push(seen);
        all.len() - 1
    }

    fn note_inside(&self, index: usize, request: String) {
        if let Some(seen) = self.seen.lock().unwrap().get_mut(index) {
            seen.inside.push(request);
        }
    }
}

type Body = BoxBody<Bytes, hyper::Error>;

fn full(text: impl Into<Bytes>) -> Body {
    Full::new(text.into())
        .map_err(|never| match never {})
        .boxed()
}

fn answer(status: StatusCode, text: &str) -> Response<Body> {
    let mut response = Response::new(full(format!("{text}\n")));
    *response.status_mut() = status;
    response
}

/// The headers meant for the proxy: never forwarded.
fn strip_proxy_headers(headers: &mut HeaderMap) {
    headers.remove(PROXY_AUTHORIZATION);
    headers.remove("proxy-connection");
}

/// One request on the proxy's port.
async fn handle(state: Arc<State>, request: Request<Incoming>) -> Response<Body> {
    let connect = request.method() == Method::CONNECT;
    let authority = request.uri().authority().cloned();
    let mut seen = Seen {
        method: request.method().to_string(),
        target: match (&authority, connect) {
            (Some(authority), true) => authority.to_string(),
            _ => request.uri().to_string(),
        },
        proxy_authorization: request
            .headers()
            .get(PROXY_AUTHORIZATION)
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned()),
        status: 0,
        inside: Vec::new(),
    };
    let form = match authority {
        Some(authority) if connect && authority.port_u16().is_some() => Some(authority),
        Some(authority) if !connect && request.uri().scheme() == Some(&Scheme::HTTP) => {
            Some(authority)
        }
        _ => None,
    };
    let Some(authority) = form else {
        seen.status = 400;
        state.record(seen);
        return answer(
            StatusCode::BAD_REQUEST,
            "a proxy takes CONNECT host:port, or a request in absolute form (http://host/path)",
        );
    };
    if !state.authorized(seen.proxy_authorization.as_deref()) {
        seen.status = 407;
        state.record(seen);
        let mut response = answer(
            StatusCode::PROXY_AUTHENTICATION_REQUIRED,
            "proxy authentication required",
        );
        response.headers_mut().insert(
            PROXY_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"proxy\""),
        );
        return response;
    }
    let port = authority.port_u16().unwrap_or(80);
    let Some(addr) = state.resolve(authority.host(), port) else {
        seen.status = 502;
        state.record(seen);
        return answer(
            StatusCode::BAD_GATEWAY,
            &format!("unknown host {}", authority.host()),
        );
    };
    if connect {
        tunnel(state, request, seen, &authority, addr).await
    } else {
        forward(state, request, seen, &authority, addr).await
    }
}

/// CONNECT: connects, answers 200, then splices (or inspects) until either side closes.
async fn tunnel(
    state: Arc<State>,
    request: Request<Incoming>,
    mut seen: Seen,
    authority: &Authority,
    addr: SocketAddr,
) -> Response<Body> {
    let upstream = match TcpStream::connect(addr).await {
        Ok(upstream) => upstream,
        Err(err) => {
            seen.status = 502;
            state.record(seen);
            return answer(
                StatusCode::BAD_GATEWAY,
                &format!("cannot connect to {addr}: {err}"),
            );
        }
    };
    seen.status = 200;
    let index = state.record(seen);
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    tokio::spawn(async move {
        let Ok(upgraded) = hyper::upgrade::on(request).await else {
            return;
        };
        let mut client = TokioIo::new(upgraded);
        match &state.inspector {
            None => {
                let mut upstream = upstream;
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            }
            Some(inspector) => {
                let Some(config) = inspector.leaf(&host) else {
                    return;
                };
                let Ok(tls) = TlsAcceptor::from(config).accept(client).await else {
                    return;
                };
                let Ok(server_name) = ServerName::try_from(host) else {
                    return;
                };
                let upstream = Arc::new(tokio::sync::Mutex::new(InspectedUpstream {
                    addr,
                    server_name,
                    connector: inspector.connector.clone(),
                    first: Some(upstream),
                    sender: None,
                }));
                let state = state.clone();
                let service = service_fn(move |request| {
                    let state = state.clone();
                    let upstream = upstream.clone();
                    async move {
                        Ok::<_, Infallible>(relay_inside(&state, index, &upstream, request).await)
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            }
        }
    });
    let mut response = Response::new(full(""));
    response
        .extensions_mut()
        .insert(ReasonPhrase::from_static(b"Connection established"));
    response
}

/// A request in absolute form: forwarded in origin form over a new connection.
async fn forward(
    state: Arc<State>,
    mut request: Request<Incoming>,
    mut seen: Seen,
    authority: &Authority,
    addr: SocketAddr,
) -> Response<Body> {
    let origin_form = request
        .uri()
        .path_and_query()
        .map_or("/", |path| path.as_str())
        .parse::<Uri>()
        .unwrap();
    *request.uri_mut() = origin_form;
    strip_proxy_headers(request.headers_mut());
    if !request.headers().contains_key(HOST) {
        if let Ok(host) = HeaderValue::from_str(authority.as_str()) {
            request.headers_mut().insert(HOST, host);
        }
    }
    let response = async {
        let upstream = TcpStream::connect(addr)
            .await
            .map_err(|err| format!("cannot connect to {addr}: {err}"))?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(upstream))
                .await
                .map_err(|err| format!("{addr}: {err}"))?;
        tokio::spawn(connection);
        sender
            .send_request(request)
            .await
            .map_err(|err| format!("{addr}: {err}"))
    }
    .await;
    match response {
        Ok(response) => {
            seen.status = response.status().as_u16();
            state.record(seen);
            response.map(BodyExt::boxed)
        }
        Err(err) => {
            seen.status = 502;
            state.record(seen);
            answer(StatusCode::BAD_GATEWAY, &err)
        }
    }
}

/// One request inside an inspected tunnel: recorded, then relayed to the upstream over TLS.
async fn relay_inside(
    state: &State,
    index: usize,
    upstream: &tokio::sync::Mutex<InspectedUpstream>,
    mut request: Request<Incoming>,
) -> Response<Body> {
    state.note_inside(index, format!("{} {}", request.method(), request.uri()));
    strip_proxy_headers(request.headers_mut());
    let mut upstream = upstream.lock().await;
    let mut sender = match upstream.ready().await {
        Ok(sender) => sender,
        Err(err) => return answer(StatusCode::BAD_GATEWAY, &err),
    };
    let response = sender.send_request(request).await;
    upstream.sender = Some(sender);
    match response {
        Ok(response) => response.map(BodyExt::boxed),
        Err(err) => answer(StatusCode::BAD_GATEWAY, &format!("upstream: {err}")),
    }
}

/// The upstream of an inspected tunnel: the TCP connection made before answering CONNECT, then
/// TLS over it, and a new one when the upstream has closed it.
struct InspectedUpstream {
    addr: SocketAddr,
    server_name: ServerName<'static>,
    connector: TlsConnector,
    first: Option<TcpStream>,
    sender: Option<SendRequest<Incoming>>,
}

impl InspectedUpstream {
    /// A connection ready for a request (taken: put it back once sent).
    async fn ready(&mut self) -> Result<SendRequest<Incoming>, String> {
        if let Some(mut sender) = self.sender.take() {
            if sender.ready().await.is_ok() {
                return Ok(sender);
            }
        }
        let tcp = match self.first.take() {
            Some(tcp) => tcp,
            None => TcpStream::connect(self.addr)
                .await
                .map_err(|err| format!("cannot connect to {}: {err}", self.addr))?,
        };
        let tls = self
            .connector
            .connect(self.server_name.clone(), tcp)
            .await
            .map_err(|err| format!("TLS to {}: {err}", self.addr))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|err| format!("{}: {err}", self.addr))?;
        tokio::spawn(connection);
        sender
            .ready()
            .await
            .map_err(|err| format!("{}: {err}", self.addr))?;
        Ok(sender)
    }
}

/// The inspecting side: its CA, the certificates it made, its TLS toward the upstream.
struct Inspector {
    ca: CertifiedIssuer<'static, KeyPair>,
    ca_pem: String,
    leaves: Mutex<HashMap<String, Arc<rustls::ServerConfig>>>,
    connector: TlsConnector,
}

impl Inspector {
    fn new(inspection: &Inspection) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "codex-auth test proxy CA");
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(inspection.upstream_ca_pem.as_bytes()) {
            roots.add(cert.unwrap()).unwrap();
        }
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Self {
            ca_pem: ca.pem(),
            ca,
            leaves: Mutex::new(HashMap::new()),
            connector: TlsConnector::from(Arc::new(config)),
        }
    }

    /// The TLS server side for `host` (a name, or an IP literal without brackets), with a
    /// certificate the proxy's CA signs, made on first use. None for a name rcgen refuses.
    fn leaf(&self, host: &str) -> Option<Arc<rustls::ServerConfig>> {
        let mut leaves = self.leaves.lock().unwrap();
        if let Some(config) = leaves.get(host) {
            return Some(config.clone());
        }
        let key = KeyPair::generate().ok()?;
        let mut params = CertificateParams::new(vec![host.to_owned()]).ok()?;
        params.distinguished_name.push(DnType::CommonName, host);
        let cert = params.signed_by(&key, &self.ca).ok()?;
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .ok()?
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .ok()?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let config = Arc::new(config);
        leaves.insert(host.to_owned(), config.clone());
        Some(config)
    }
}
