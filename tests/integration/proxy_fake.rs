//! The tests' forward proxy (`support::proxy`) against a real, independent client: curl, which
//! reaches the fakes through it by names only the proxy resolves (`.test` names no DNS knows).
//! curl is told where the proxy is by `-x` only: the environment's proxy variables and
//! `~/.curlrc` are kept from it.

use std::collections::BTreeMap;
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::Router;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use pretty_assertions::assert_eq;
use tempfile::TempDir;

use crate::support::proxy::{Inspection, Proxy, ProxyOptions, Seen};
use crate::support::serve::{serve, TestCa};

/// The made-up name of the HTTPS fake.
const HOST: &str = "api.github.proxied.test";
/// The made-up name of the plain-HTTP fake.
const PLAIN: &str = "plain.proxied.test";

/// What curl did.
struct Curl {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs curl (no `~/.curlrc`, no proxy from the environment, silent but for errors).
fn curl(args: &[&str]) -> Curl {
    let mut command = Command::new("curl");
    command.args(["-q", "-sS", "--max-time", "20"]).args(args);
    for var in [
        "http_proxy",
        "HTTP_PROXY",
        "https_proxy",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
        "no_proxy",
        "NO_PROXY",
        "CURL_CA_BUNDLE",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
    ] {
        command.env_remove(var);
    }
    let output = command
        .output()
        .expect("curl must be installed for these tests");
    Curl {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn write(dir: &Path, name: &str, contents: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, contents).unwrap();
    path
}

fn hosts(entries: &[(&str, SocketAddr)]) -> BTreeMap<String, SocketAddr> {
    entries
        .iter()
        .map(|(name, addr)| ((*name).to_owned(), *addr))
        .collect()
}

/// The fakes' routes: fixed answers, a slow one, and what reached the upstream.
fn router() -> Router {
    Router::new()
        .route("/path", get(|| async { "hello through the proxy\n" }))
        .route("/other", get(|| async { "other\n" }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(300)).await;
                "slow\n"
            }),
        )
        .route(
            "/headers",
            get(|headers: HeaderMap| async move {
                format!(
                    "proxy-authorization: {}; proxy-connection: {}; host: {}\n",
                    headers.contains_key("proxy-authorization"),
                    headers.contains_key("proxy-connection"),
                    headers
                        .get("host")
                        .and_then(|host| host.to_str().ok())
                        .unwrap_or_default()
                )
            }),
        )
        .route("/echo", post(|body: Bytes| async move { body }))
}

fn connect_seen(target: &str, authorization: Option<&str>, status: u16) -> Seen {
    Seen {
        method: "CONNECT".to_owned(),
        target: target.to_owned(),
        proxy_authorization: authorization.map(str::to_owned),
        status,
        inside: Vec::new(),
    }
}

#[test]
fn connect_tunnels_to_an_https_fake_by_a_name_only_the_proxy_resolves() {
    let ca = TestCa::with_names(&[HOST]);
    let server = serve(router(), Some(&ca));
    let proxy = Proxy::start(ProxyOptions {
        hosts: hosts(&[(HOST, server.addr)]),
        ..ProxyOptions::default()
    });
    let dir = TempDir::new().unwrap();
    let cacert = write(dir.path(), "fakes.pem", &ca.ca_pem);
    let cacert = cacert.to_str().unwrap();

    // Without the proxy, curl cannot even resolve the name.
    let direct = curl(&["--cacert", cacert, &format!("https://{HOST}/path")]);
    assert_eq!(direct.code, 6, "{}", direct.stderr);

    // Two requests in one curl: one tunnel, kept alive.
    let through = curl(&[
        "-v",
        "--cacert",
        cacert,
        "-x",
        &proxy.url(),
        &format!("https://{HOST}/path"),
        &format!("https://{HOST}/other"),
    ]);
    assert_eq!(through.code, 0, "{}", through.stderr);
    assert_eq!(through.stdout, "hello through the proxy\nother\n");
    assert!(
        through
            .stderr
            .contains("< HTTP/1.1 200 Connection established\r\n"),
        "{}",
        through.stderr
    );
    assert_eq!(
        proxy.seen(),
        vec![connect_seen(&format!("{HOST}:443"), None, 200)]
    );
    assert_eq!(proxy.ca_pem(), None);
    assert_eq!(
        proxy.url(),
        format!("http://127.0.0.1:{}", proxy.addr.port())
    );
}

#[test]
fn concurrent_tunnels() {
    let ca = TestCa::with_names(&[HOST]);
    let server = serve(router(), Some(&ca));
    let proxy = Proxy::start(ProxyOptions {
        hosts: hosts(&[(HOST, server.addr)]),
        ..ProxyOptions::default()
    });
    let dir = TempDir::new().unwrap();
    let cacert = write(dir.path(), "fakes.pem", &ca.ca_pem);
    let url = proxy.url();
    std::thread::scope(|scope| {
        let runs: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    curl(&[
                        "--cacert",
                        cacert.to_str().unwrap(),
                        "-x",
                        &url,
                        &format!("https://{HOST}/slow"),
                    ])
                })
            })
            .collect();
        for run in runs {
            let run = run.join().unwrap();
            assert_eq!(
                (run.code, run.stdout.as_str()),
                (0, "slow\n"),
                "{}",
                run.stderr
            );
        }
    });
    let seen = proxy.seen();
    assert_eq!(seen.len(), 4, "{seen:?}");
    assert!(seen.iter().all(|seen| seen.status == 200), "{seen:?}");
}

#[test]
fn credentials_are_required_and_recorded() {
    let ca = TestCa::with_names(&[HOST]);
    let server = serve(router(), Some(&ca));
    let (user, password) = ("runner", "p@ss:w/rd");
    let proxy = Proxy::start(ProxyOptions {
        hosts: hosts(&[(HOST, server.addr)]),
        credentials: Some((user.to_owned(), password.to_owned())),
        ..ProxyOptions::default()
    });
    let port = proxy.addr.port();
    assert_eq!(
        proxy.url(),
        format!("http://runner:p%40ss%3Aw%2Frd@127.0.0.1:{port}")
    );
    assert_eq!(
        proxy.url_as("proxy.internal"),
        format!("http://runner:p%40ss%3Aw%2Frd@proxy.internal:{port}")
    );
    let dir = TempDir::new().unwrap();
    let cacert = write(dir.path(), "fakes.pem", &ca.ca_pem);
    let cacert = cacert.to_str().unwrap();
    let bare = format!("http://127.0.0.1:{port}");
    let target = format!("https://{HOST}/path");

    let without = curl(&[
        "--cacert",
        cacert,
        "-x",
        &bare,
        "-w",
        "%{http_connect}",
        &target,
    ]);
    assert_ne!(without.code, 0);
    assert_eq!(without.stdout, "407");

    let in_url = curl(&["--cacert", cacert, "-x", &proxy.url(), &target]);
    assert_eq!(in_url.code, 0, "{}", in_url.stderr);
    assert_eq!(in_url.stdout, "hello through the proxy\n");

    let with_flag = curl(&[
        "--cacert",
        cacert,
        "-x",
        &bare,
        "-U",
        &format!("{user}:{password}"),
        &target,
    ]);
    assert_eq!(with_flag.code, 0, "{}", with_flag.stderr);
    assert_eq!(with_flag.stdout, "hello through the proxy\n");

    let wrong = curl(&[
        "--cacert",
        cacert,
        "-x",
        &bare,
        "-U",
        &format!("{user}:wrong"),
        "-w",
        "%{http_connect}",
        &target,
    ]);
    assert_ne!(wrong.code, 0);
    assert_eq!(wrong.stdout, "407");

    let basic = format!("Basic {}", STANDARD.encode(format!("{user}:{password}")));
    let wrong_basic = format!("Basic {}", STANDARD.encode(format!("{user}:wrong")));
    let authority = format!("{HOST}:443");
    assert_eq!(
        proxy.seen(),
        vec![
            connect_seen(&authority, None, 407),
            connect_seen(&authority, Some(&basic), 200),
            connect_seen(&authority, Some(&basic), 200),
            connect_seen(&authority, Some(&wrong_basic), 407),
        ]
    );
}

#[test]
fn absolute_form_is_forwarded_without_the_proxy_headers() {
    let server = serve(router(), None);
    let proxy = Proxy::start(ProxyOptions {
        hosts: hosts(&[(PLAIN, server.addr)]),
        credentials: Some(("runner".to_owned(), "secret".to_owned())),
        ..ProxyOptions::default()
    });
    let basic = format!("Basic {}", STANDARD.encode("runner:secret"));
    let origin = format!("http://{PLAIN}:{}", server.addr.port());

    // Two requests over one connection to the proxy (curl adds Proxy-Connection).
    let headers_url = format!("{origin}/headers?q=1");
    let path_url = format!("{origin}/path");
    let get = curl(&["-x", &proxy.url(), &headers_url, &path_url]);
    assert_eq!(get.code, 0, "{}", get.stderr);
    assert_eq!(
        get.stdout,
        format!(
            "proxy-authorization: false; proxy-connection: false; host: {PLAIN}:{}\n\
             hello through the proxy\n",
            server.addr.port()
        )
    );

    let echo_url = format!("{origin}/echo");
    let echo = curl(&["-x", &proxy.url(), "--data-binary", "a body", &echo_url]);
    assert_eq!(echo.code, 0, "{}", echo.stderr);
    assert_eq!(echo.stdout, "a body");

    // The upstream's status comes back as it was.
    let missing_url = format!("{origin}/missing");
    let missing = curl(&[
        "-x",
        &proxy.url(),
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &missing_url,
    ]);
    assert_eq!(missing.stdout, "404");

    // Without credentials: 407, the request goes nowhere.
    let refused = curl(&[
        "-x",
        &format!("http://{}", proxy.addr),
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &path_url,
    ]);
    assert_eq!(refused.stdout, "407");

    // A request in origin form, as to a server, is not for a proxy.
    let origin_form = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &format!("http://{}/path", proxy.addr),
    ]);
    assert_eq!(origin_form.stdout, "400");

    let seen = |method: &str, target: &str, authorization: Option<&str>, status| Seen {
        method: method.to_owned(),
        target: target.to_owned(),
        proxy_authorization: authorization.map(str::to_owned),
        status,
        inside: Vec::new(),
    };
    assert_eq!(
        proxy.seen(),
        vec![
            seen("GET", &headers_url, Some(&basic), 200),
            seen("GET", &path_url, Some(&basic), 200),
            seen("POST", &echo_url, Some(&basic), 200),
            seen("GET", &missing_url, Some(&basic), 404),
            seen("GET", &path_url, None, 407),
            seen("GET", "/path", None, 400),
        ]
    );
}

#[test]
fn inspection_presents_the_proxys_own_certificate_and_records_the_requests() {
    let ca = TestCa::with_names(&[HOST]);
    let server = serve(router(), Some(&ca));
    let proxy = Proxy::start(ProxyOptions {
        hosts: hosts(&[(HOST, server.addr)]),
        inspect: Some(Inspection {
            upstream_ca_pem: ca.ca_pem.clone(),
        }),
        ..ProxyOptions::default()
    });
    let dir = TempDir::new().unwrap();
    let proxy_ca = write(dir.path(), "proxy.pem", &proxy.ca_pem().unwrap());
    let fakes_ca = write(dir.path(), "fakes.pem", &ca.ca_pem);

    let trusted = curl(&[
        "--cacert",
        proxy_ca.to_str().unwrap(),
        "-x",
        &proxy.url(),
        &format!("https://{HOST}/path"),
        &format!("https://{HOST}/other?x=1"),
    ]);
    assert_eq!(trusted.code, 0, "{}", trusted.stderr);
    assert_eq!(trusted.stdout, "hello through the proxy\nother\n");

    // The fakes' CA alone does not do: the certificate curl got is the proxy's.
    let untrusted = curl(&[
        "--cacert",
        fakes_ca.to_str().unwrap(),
        "-x",
        &proxy.url(),
        &format!("https://{HOST}/path"),
    ]);
    assert_eq!(untrusted.code, 60, "{}", untrusted.stderr);

    // An IP literal gets a certificate for the address.
    let loopback = format!("127.0.0.1:{}", server.addr.port());
    let by_address = curl(&[
        "--cacert",
        proxy_ca.to_str().unwrap(),
        "-x",
        &proxy.url(),
        &format!("https://{loopback}/path"),
    ]);
    assert_eq!(by_address.code, 0, "{}", by_address.stderr);
    assert_eq!(by_address.stdout, "hello through the proxy\n");

    let authority = format!("{HOST}:443");
    assert_eq!(
        proxy.seen(),
        vec![
            Seen {
                inside: vec!["GET /path".to_owned(), "GET /other?x=1".to_owned()],
                ..connect_seen(&authority, None, 200)
            },
            connect_seen(&authority, None, 200),
            Seen {
                inside: vec!["GET /path".to_owned()],
                ..connect_seen(&loopback, None, 200)
            },
        ]
    );
}

#[test]
fn unknown_and_unreachable_hosts_get_502_and_loopback_literals_go_direct() {
    let server = serve(router(), None);
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let proxy = Proxy::start(ProxyOptions {
        hosts: hosts(&[("closed.proxied.test", closed)]),
        ..ProxyOptions::default()
    });
    let connect_code = |target: &str| {
        let run = curl(&["-x", &proxy.url(), "-w", "%{http_connect}", target]);
        assert_ne!(run.code, 0);
        run.stdout
    };
    let http_code = |target: &str| {
        curl(&[
            "-x",
            &proxy.url(),
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            target,
        ])
        .stdout
    };
    assert_eq!(connect_code("https://nowhere.proxied.test/"), "502");
    assert_eq!(http_code("http://nowhere.proxied.test/"), "502");
    assert_eq!(connect_code("https://closed.proxied.test/"), "502");
    assert_eq!(http_code("http://closed.proxied.test/"), "502");

    let port = server.addr.port();
    for host in ["127.0.0.1", "localhost"] {
        let run = curl(&["-x", &proxy.url(), &format!("http://{host}:{port}/path")]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert_eq!(run.stdout, "hello through the proxy\n");
    }

    let statuses: Vec<(String, u16)> = proxy
        .seen()
        .into_iter()
        .map(|seen| (seen.target, seen.status))
        .collect();
    assert_eq!(
        statuses,
        vec![
            ("nowhere.proxied.test:443".to_owned(), 502),
            ("http://nowhere.proxied.test/".to_owned(), 502),
            ("closed.proxied.test:443".to_owned(), 502),
            ("http://closed.proxied.test/".to_owned(), 502),
            (format!("http://127.0.0.1:{port}/path"), 200),
            (format!("http://localhost:{port}/path"), 200),
        ]
    );
}
