//! A downloaded artifact is attacker-controlled bytes: unzipping and opening them must give
//! the login or a clear error, never a panic, whatever the zip or the sealed blob holds.
#![no_main]

use codex_auth::store::artifact::archive;
use codex_auth::seal::artifact::{self as crypt, ArtifactKey, Binding};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = ArtifactKey::parse("KasJ/+PTcUQr+7Owz01W1dvTjyqZtVAkkBSvHK5PONs=")
        .unwrap_or_else(|_| ArtifactKey::generate());
    let binding = Binding {
        repository_id: 4711,
        artifact_name: "codex-auth",
    };
    // The bytes as a zip, and as the sealed blob a zip would hold.
    if let Ok(sealed) = archive::unzip(data) {
        let _ = crypt::open(&key, &binding, &sealed);
    }
    let _ = crypt::open(&key, &binding, data);
    // And a well-formed zip around them.
    let _ = archive::unzip(&archive::zip(data)).map(|blob| crypt::open(&key, &binding, &blob));
});
