//! Test support: real local servers (GitHub's API, OpenAI's token endpoint and backend) and a
//! job that runs the action's stages as the runner does.

#![allow(dead_code)]

pub mod artifacts;
pub mod github;
pub mod job;
pub mod npm;
pub mod openai;
pub mod openapi;
pub mod proxy;
pub mod raw;
pub mod runner_log;
pub mod serve;
pub mod world;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::Value;

/// An unsigned JWT (`alg: none`), which Codex accepts: it never verifies the signature.
pub fn jwt(claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    format!(
        "{header}.{}.unsigned",
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

/// Sends `signal` (`TERM`, `KILL`, …) to a process, which must still be there.
pub fn send_signal(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signal} {pid} failed");
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}
