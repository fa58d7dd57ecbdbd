//! Integration tests: one binary, with real local servers and the real Codex CLI.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod access_only;
mod access_token;
mod action_yml;
mod app_auth;
mod architecture;
mod artifact_protocol;
mod artifact_store;
mod bad_input;
mod bump;
mod codex_version;
mod container;
mod core_loop;
mod docs;
mod examples;
mod gh_client;
mod host_face;
mod hostile;
mod inputs;
mod keeper;
mod libsodium;
mod login;
mod modes;
mod openapi;
mod proxy;
mod proxy_fake;
mod reliability;
mod rescue;
mod sandbox;
mod seed;
mod support;
mod write_proof;
