//! The artifact store: the refreshed login kept as an encrypted workflow artifact, so that the
//! loop needs no token that can write secrets.
//!
//! - [`crypt`]: XChaCha20-Poly1305 under a key that never rotates, bound to the repository id
//!   and the artifact name;
//! - [`archive`]: the one-entry zip the artifact holds;
//! - [`results`]: uploading with the Actions artifact protocol v4 (the runtime token);
//! - [`rest`]: finding and downloading the newest artifact through the REST API.

pub mod archive;
pub mod crypt;
pub mod rest;
pub mod results;
pub mod stage;

mod http;
