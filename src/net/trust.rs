//! Whom the action's requests trust: the built-in roots (Mozilla's, compiled in, and the
//! system's store: on Linux the directories OpenSSL would read, whatever the variables say) and
//! the certificates the runner's conventions name: `SSL_CERT_FILE` (a PEM file), `SSL_CERT_DIR`
//! (directories of PEM files, separated by `:`) and `NODE_EXTRA_CA_CERTS` (a PEM file, what the
//! runner's own Node.js and JavaScript actions read). A company CA (a TLS-inspecting proxy's,
//! GitHub Enterprise Server's) named in any of them is trusted besides the built-in roots, not
//! instead of them.
//!
//! The variables are read in two steps: [`CaVariables`] (the values, read with the rest of the
//! configuration) and [`CaVariables::load`] (the files, read when the stage is ready to: the
//! post stage only after dropping what a later step set). Each file is opened without waiting
//! (a FIFO does not block), must be a regular file of at most [`MAX_FILE`] bytes, and
//! certificates that cannot be trust anchors are skipped, as OpenSSL skips them.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::Path;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::CertificateDer;
use sha2::{Digest as _, Sha256};

use super::NetError;

/// The largest CA file read (a system bundle is about 200 KB).
pub const MAX_FILE: u64 = 4 << 20;

/// The CA variables as the step's environment sets them: each variable and its value, not
/// read yet.
#[derive(Clone, Debug, Default)]
pub struct CaVariables(Vec<(&'static str, String)>);

impl CaVariables {
    /// The variables set (`get`: `None` for unset or blank).
    pub fn read(get: &dyn Fn(&str) -> Option<String>) -> Self {
        Self(
            ["SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS", "SSL_CERT_DIR"]
                .into_iter()
                .filter_map(|variable| get(variable).map(|value| (variable, value)))
                .collect(),
        )
    }

    /// Reads the files the variables name: the trust, and for each variable whose files
    /// cannot be read or hold no usable certificate, why (that variable is left out).
    pub fn load(&self) -> (Trust, Vec<NetError>) {
        let mut trust = Trust::default();
        let mut problems = Vec::new();
        for (variable, value) in &self.0 {
            let loaded = match *variable {
                "SSL_CERT_DIR" => std::env::split_paths(value)
                    .filter(|d| !d.as_os_str().is_empty())
                    .map(|dir| directory(&dir))
                    .collect::<Result<Vec<_>, _>>()
                    .map(|dirs| dirs.concat()),
                _ => file(variable, Path::new(value)),
            };
            match loaded {
                Ok(certificates) => trust.extra.push(Named {
                    variable,
                    certificates,
                }),
                Err(problem) => problems.push(problem),
            }
        }
        (trust, problems)
    }
}

/// The certificates the CA variables named, loaded.
#[derive(Clone, Debug, Default)]
pub struct Trust {
    extra: Vec<Named>,
}

#[derive(Clone, Debug)]
struct Named {
    variable: &'static str,
    certificates: Vec<CertificateDer<'static>>,
}

impl Trust {
    /// Whether a variable named certificates beyond the built-in roots.
    pub fn has_extra(&self) -> bool {
        !self.extra.is_empty()
    }

    /// The variables whose certificates are trusted, with a digest of what each named: the
    /// main stage hands these to the post stage, which trusts no certificate a step between
    /// them added or changed.
    pub fn digests(&self) -> BTreeMap<String, String> {
        let mut digests: BTreeMap<String, Sha256> = BTreeMap::new();
        for named in &self.extra {
            let hasher = digests.entry(named.variable.to_owned()).or_default();
            for certificate in &named.certificates {
                hasher.update((certificate.len() as u64).to_be_bytes());
                hasher.update(certificate.as_ref());
            }
        }
        digests
            .into_iter()
            .map(|(variable, hasher)| (variable, hex::encode(hasher.finalize())))
            .collect()
    }

    /// The trust without the certificates `variable` named.
    pub fn without(&self, variable: &str) -> Self {
        Self {
            extra: self
                .extra
                .iter()
                .filter(|n| n.variable != variable)
                .cloned()
                .collect(),
        }
    }

    /// Every root trusted: the built-in ones, then the variables'.
    pub fn roots(&self) -> Vec<CertificateDer<'static>> {
        let mut roots = built_in();
        roots.extend(
            self.extra
                .iter()
                .flat_map(|n| n.certificates.iter().cloned()),
        );
        roots
    }

    /// The rustls configuration of every request: these roots (those that parse as trust
    /// anchors), ring, TLS 1.2 and 1.3.
    pub fn client_config(&self) -> Result<rustls::ClientConfig, NetError> {
        let mut store = rustls::RootCertStore::empty();
        store.add_parsable_certificates(self.roots());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Ok(rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| NetError {
                variable: "TLS",
                title: "TLS not available",
                problem: e.to_string(),
            })?
            .with_root_certificates(store)
            .with_no_client_auth())
    }

    /// Every root as one PEM bundle, those that parse as trust anchors only (Codex's client
    /// refuses to start on one that does not): what Codex is handed (`CODEX_CA_CERTIFICATE`)
    /// so that it trusts what the action trusts; `None` when no variable named a certificate.
    pub fn bundle(&self) -> Option<String> {
        if !self.has_extra() {
            return None;
        }
        let mut pem = String::new();
        for certificate in self.roots().into_iter().filter(is_anchor) {
            pem.push_str("-----BEGIN CERTIFICATE-----\n");
            let encoded = STANDARD.encode(certificate.as_ref());
            for line in encoded.as_bytes().chunks(64) {
                pem.push_str(&String::from_utf8_lossy(line));
                pem.push('\n');
            }
            pem.push_str("-----END CERTIFICATE-----\n");
        }
        Some(pem)
    }
}

/// The certificates of PEM text that can be trust anchors (others skipped, as OpenSSL does).
fn anchors(pem: &[u8]) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_slice_iter(pem)
        .filter_map(Result::ok)
        .filter(is_anchor)
        .collect()
}

fn is_anchor(certificate: &CertificateDer<'static>) -> bool {
    rustls::RootCertStore::empty()
        .add(certificate.clone())
        .is_ok()
}

/// The built-in roots: Mozilla's, compiled in, and the system's store, read once per process
/// (every client built, the post stage's after each dropped variable, shares them).
fn built_in() -> Vec<CertificateDer<'static>> {
    static ROOTS: std::sync::OnceLock<Vec<CertificateDer<'static>>> = std::sync::OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let mut roots: Vec<CertificateDer<'static>> = webpki_root_certs::TLS_SERVER_ROOT_CERTS
                .iter()
                .map(|c| c.clone().into_owned())
                .collect();
            roots.extend(system_store());
            roots
        })
        .clone()
}

/// The system's store, whatever `SSL_CERT_FILE`/`SSL_CERT_DIR` say (they come on top): on
/// Linux the directories OpenSSL reads (a company CA installed with update-ca-certificates is
/// there); unreadable entries are skipped.
#[cfg(all(unix, not(target_os = "macos")))]
fn system_store() -> Vec<CertificateDer<'static>> {
    openssl_probe::candidate_cert_dirs()
        .flat_map(|dir| rustls_native_certs::load_certs_from_paths(None, Some(dir)).certs)
        .collect()
}

/// The system's store (the keychain, the Windows store); where `SSL_CERT_FILE`/`SSL_CERT_DIR`
/// are set, rustls-native-certs reads those instead, which the variables add anyway.
#[cfg(not(all(unix, not(target_os = "macos"))))]
fn system_store() -> Vec<CertificateDer<'static>> {
    rustls_native_certs::load_native_certs().certs
}

/// The usable certificates of a PEM file the variable names.
fn file(variable: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, NetError> {
    let unusable = |why: String| NetError {
        variable,
        title: "CA file not readable",
        problem: format!(
            "names {}, {why}: point it at the PEM file of the CA to trust (the company's \
             proxy or GitHub Enterprise Server CA), readable by the runner's user, or unset it",
            path.display()
        ),
    };
    let certificates: Vec<CertificateDer<'static>> =
        anchors(&read_regular(path).map_err(unusable)?);
    if certificates.is_empty() {
        return Err(unusable(
            "which holds no -----BEGIN CERTIFICATE----- block usable as a CA".to_owned(),
        ));
    }
    Ok(certificates)
}

/// The usable certificates of the PEM files in a directory (others skipped).
fn directory(dir: &Path) -> Result<Vec<CertificateDer<'static>>, NetError> {
    let entries = std::fs::read_dir(dir).map_err(|e| NetError {
        variable: "SSL_CERT_DIR",
        title: "CA directory not readable",
        problem: format!(
            "names {}, which cannot be read ({e}): point it at a directory of PEM \
             certificates readable by the runner's user, or unset it",
            dir.display()
        ),
    })?;
    let mut certificates = Vec::new();
    for entry in entries.flatten() {
        if let Ok(text) = read_regular(&entry.path()) {
            certificates.extend(anchors(&text));
        }
    }
    Ok(certificates)
}

/// A regular file's bytes, at most [`MAX_FILE`], opened without blocking (a FIFO) and checked
/// on the open handle (a device, a directory or a larger file is refused).
fn read_regular(path: &Path) -> Result<Vec<u8>, String> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32);
    }
    let file = options
        .open(path)
        .map_err(|e| format!("which cannot be read ({e})"))?;
    let meta = file
        .metadata()
        .map_err(|e| format!("which cannot be read ({e})"))?;
    if !meta.is_file() {
        return Err("which is not a regular file".to_owned());
    }
    if meta.len() > MAX_FILE {
        return Err(format!("which is larger than {MAX_FILE} bytes"));
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("which cannot be read ({e})"))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(vars: &[(&str, String)]) -> (Trust, Vec<NetError>) {
        let vars: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        CaVariables::read(&|name| vars.get(name).cloned()).load()
    }

    /// A real certificate (one of the compiled-in roots) as PEM.
    fn pem(index: usize) -> String {
        let der = &webpki_root_certs::TLS_SERVER_ROOT_CERTS[index];
        let encoded = STANDARD.encode(der.as_ref());
        format!("-----BEGIN CERTIFICATE-----\n{encoded}\n-----END CERTIFICATE-----\n")
    }

    #[test]
    fn files_the_variables_name_are_trusted_besides_the_built_in_roots() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.pem"), pem(0)).unwrap();
        // A certificate that cannot be a trust anchor is skipped, not an error.
        let junk = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        std::fs::write(dir.path().join("b.pem"), format!("{junk}{}", pem(1))).unwrap();
        let (trust, problems) = load(&[
            (
                "NODE_EXTRA_CA_CERTS",
                dir.path().join("a.pem").display().to_string(),
            ),
            ("SSL_CERT_DIR", dir.path().display().to_string()),
        ]);
        assert!(problems.is_empty(), "{problems:?}");
        assert!(trust.has_extra());
        let built_in = Trust::default().roots().len();
        // a.pem twice (the file, and in the directory), b.pem's one usable certificate.
        assert_eq!(trust.roots().len(), built_in + 3);
        trust.client_config().unwrap();
        let bundle = trust.bundle().unwrap();
        assert_eq!(
            CertificateDer::pem_slice_iter(bundle.as_bytes()).count(),
            trust.roots().into_iter().filter(is_anchor).count(),
            "the bundle is the whole trust, anchors only"
        );
        assert!(!bundle.contains("\nAAAA\n"));
        assert!(Trust::default().bundle().is_none());
        let digests = trust.digests();
        assert_eq!(
            digests.keys().collect::<Vec<_>>(),
            ["NODE_EXTRA_CA_CERTS", "SSL_CERT_DIR"]
        );
        assert!(!trust
            .without("SSL_CERT_DIR")
            .digests()
            .contains_key("SSL_CERT_DIR"));
        // A changed file changes its variable's digest.
        std::fs::write(dir.path().join("a.pem"), pem(2)).unwrap();
        let (again, _) = load(&[(
            "NODE_EXTRA_CA_CERTS",
            dir.path().join("a.pem").display().to_string(),
        )]);
        assert_ne!(
            again.digests()["NODE_EXTRA_CA_CERTS"],
            digests["NODE_EXTRA_CA_CERTS"]
        );
    }

    #[cfg(unix)]
    #[test]
    fn an_unusable_file_names_its_variable_and_never_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let (_, missing) = load(&[("SSL_CERT_FILE", "/nonexistent/ca.pem".to_owned())]);
        assert_eq!(
            (missing[0].variable, missing[0].title),
            ("SSL_CERT_FILE", "CA file not readable")
        );
        std::fs::write(dir.path().join("empty.pem"), "not a certificate\n").unwrap();
        let (_, empty) = load(&[(
            "NODE_EXTRA_CA_CERTS",
            dir.path().join("empty.pem").display().to_string(),
        )]);
        assert_eq!(empty[0].variable, "NODE_EXTRA_CA_CERTS");
        assert!(
            empty[0].problem.contains("no -----BEGIN CERTIFICATE"),
            "{}",
            empty[0]
        );
        let (_, device) = load(&[("SSL_CERT_FILE", "/dev/zero".to_owned())]);
        assert!(
            device[0].problem.contains("not a regular file"),
            "{}",
            device[0]
        );
        let fifo = dir.path().join("fifo");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let (_, fifo) = load(&[("SSL_CERT_FILE", fifo.display().to_string())]);
        assert!(
            fifo[0].problem.contains("not a regular file"),
            "{}",
            fifo[0]
        );
        let (_, no_dir) = load(&[("SSL_CERT_DIR", "/nonexistent/certs".to_owned())]);
        assert_eq!(no_dir[0].title, "CA directory not readable");
    }
}
