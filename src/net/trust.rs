//! Whom the action's requests trust: the built-in roots (Mozilla's, compiled in, and the
//! system's store as rustls-native-certs finds it) and the certificates the runner's
//! conventions name: `SSL_CERT_FILE` (a PEM file), `SSL_CERT_DIR` (directories of PEM files,
//! separated by `:`) and `NODE_EXTRA_CA_CERTS` (a PEM file, what the runner's own Node.js
//! and JavaScript actions read). A company CA (a TLS-inspecting proxy's, GitHub Enterprise
//! Server's) named in any of them is trusted besides the built-in roots, not instead of them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::CertificateDer;

use super::NetError;

/// The CA variables, read.
#[derive(Clone, Debug, Default)]
pub struct Trust {
    /// The certificates each variable named: the variable, its path, the certificates.
    extra: Vec<Named>,
}

#[derive(Clone, Debug)]
struct Named {
    variable: &'static str,
    path: PathBuf,
    certificates: Vec<CertificateDer<'static>>,
}

impl Trust {
    /// Reads the files the variables name (`get`: `None` for unset or blank). A file that
    /// cannot be read or holds no certificate is an error that names the variable.
    pub fn read(get: &dyn Fn(&str) -> Option<String>) -> Result<Self, NetError> {
        let mut extra = Vec::new();
        for variable in ["SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS"] {
            if let Some(path) = get(variable) {
                let path = PathBuf::from(path);
                let certificates = file(variable, &path)?;
                extra.push(Named {
                    variable,
                    path,
                    certificates,
                });
            }
        }
        if let Some(dirs) = get("SSL_CERT_DIR") {
            for dir in std::env::split_paths(&dirs).filter(|d| !d.as_os_str().is_empty()) {
                let certificates = directory(&dir)?;
                extra.push(Named {
                    variable: "SSL_CERT_DIR",
                    path: dir,
                    certificates,
                });
            }
        }
        Ok(Self { extra })
    }

    /// Whether a variable named certificates beyond the built-in roots.
    pub fn has_extra(&self) -> bool {
        !self.extra.is_empty()
    }

    /// Every root trusted: the built-in ones, then the variables'.
    pub fn roots(&self) -> Vec<CertificateDer<'static>> {
        let mut roots: Vec<CertificateDer<'static>> = webpki_root_certs::TLS_SERVER_ROOT_CERTS
            .iter()
            .map(|c| c.clone().into_owned())
            .collect();
        // The system's store (on Linux the bundle OpenSSL would read; unreadable entries are
        // skipped: the compiled-in roots stand in for them).
        roots.extend(rustls_native_certs::load_native_certs().certs);
        roots.extend(
            self.extra
                .iter()
                .flat_map(|n| n.certificates.iter().cloned()),
        );
        roots
    }

    /// The rustls configuration of every request: these roots, ring, TLS 1.2 and 1.3.
    pub fn client_config(&self) -> Result<rustls::ClientConfig, NetError> {
        let mut store = rustls::RootCertStore::empty();
        store.add_parsable_certificates(roots_without_variables());
        for named in &self.extra {
            for certificate in &named.certificates {
                store.add(certificate.clone()).map_err(|e| NetError {
                    variable: named.variable,
                    title: "CA certificate not usable",
                    problem: format!(
                        "names {}, which holds a certificate that cannot be a trust anchor \
                         ({e}): point it at the CA's certificate in PEM form",
                        named.path.display()
                    ),
                })?;
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| NetError {
                variable: "TLS",
                title: "TLS not available",
                problem: e.to_string(),
            })?
            .with_root_certificates(store)
            .with_no_client_auth();
        Ok(config)
    }

    /// Every root as one PEM bundle: what Codex is handed (`CODEX_CA_CERTIFICATE`) so that it
    /// trusts what the action trusts; `None` when no variable named a certificate.
    pub fn bundle(&self) -> Option<String> {
        if !self.has_extra() {
            return None;
        }
        let mut pem = String::new();
        for certificate in self.roots() {
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

/// The built-in roots alone.
fn roots_without_variables() -> Vec<CertificateDer<'static>> {
    Trust::default().roots()
}

/// The certificates of a PEM file.
fn file(variable: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, NetError> {
    let unreadable = |why: String| NetError {
        variable,
        title: "CA file not readable",
        problem: format!(
            "names {}, {why}: point it at the PEM file of the CA to trust (the company's \
             proxy or GitHub Enterprise Server CA), readable by the runner's user, or unset it",
            path.display()
        ),
    };
    let text =
        std::fs::read(path).map_err(|e| unreadable(format!("which cannot be read ({e})")))?;
    let certificates = CertificateDer::pem_slice_iter(&text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| unreadable(format!("which is not PEM ({e})")))?;
    if certificates.is_empty() {
        return Err(unreadable(
            "which holds no -----BEGIN CERTIFICATE----- block".to_owned(),
        ));
    }
    Ok(certificates)
}

/// The certificates of the PEM files in a directory.
fn directory(dir: &Path) -> Result<Vec<CertificateDer<'static>>, NetError> {
    let result = rustls_native_certs::load_certs_from_paths(None, Some(dir));
    if let Some(error) = result.errors.first() {
        if result.certs.is_empty() {
            return Err(NetError {
                variable: "SSL_CERT_DIR",
                title: "CA directory not readable",
                problem: format!(
                    "names {}, which cannot be read ({error}): point it at a directory of \
                     PEM certificates readable by the runner's user, or unset it",
                    dir.display()
                ),
            });
        }
    }
    Ok(result.certs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn read(vars: &[(&str, String)]) -> Result<Trust, NetError> {
        let vars: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        Trust::read(&|name| vars.get(name).cloned())
    }

    /// A real certificate (one of the compiled-in roots) as PEM.
    fn some_pem() -> String {
        let der = &webpki_root_certs::TLS_SERVER_ROOT_CERTS[0];
        let encoded = STANDARD.encode(der.as_ref());
        format!("-----BEGIN CERTIFICATE-----\n{encoded}\n-----END CERTIFICATE-----\n")
    }

    #[test]
    fn files_the_variables_name_are_trusted_besides_the_built_in_roots() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.pem"), some_pem()).unwrap();
        let trust = read(&[
            (
                "NODE_EXTRA_CA_CERTS",
                dir.path().join("a.pem").display().to_string(),
            ),
            ("SSL_CERT_DIR", dir.path().display().to_string()),
        ])
        .unwrap();
        assert!(trust.has_extra());
        let built_in = Trust::default().roots().len();
        assert_eq!(trust.roots().len(), built_in + 2);
        trust.client_config().unwrap();
        let bundle = trust.bundle().unwrap();
        assert_eq!(
            bundle.matches("BEGIN CERTIFICATE").count(),
            built_in + 2,
            "the bundle is the whole trust"
        );
        assert_eq!(
            CertificateDer::pem_slice_iter(bundle.as_bytes()).count(),
            built_in + 2
        );
        assert!(read(&[]).unwrap().bundle().is_none());
    }

    #[test]
    fn an_unreadable_or_empty_file_names_its_variable() {
        let dir = tempfile::tempdir().unwrap();
        let missing = read(&[("SSL_CERT_FILE", "/nonexistent/ca.pem".to_owned())]).unwrap_err();
        assert_eq!(
            (missing.variable, missing.title),
            ("SSL_CERT_FILE", "CA file not readable")
        );
        std::fs::write(dir.path().join("empty.pem"), "not a certificate\n").unwrap();
        let empty = read(&[(
            "NODE_EXTRA_CA_CERTS",
            dir.path().join("empty.pem").display().to_string(),
        )])
        .unwrap_err();
        assert_eq!(empty.variable, "NODE_EXTRA_CA_CERTS");
        assert!(
            empty.problem.contains("no -----BEGIN CERTIFICATE"),
            "{empty}"
        );
        let no_dir = read(&[("SSL_CERT_DIR", "/nonexistent/certs".to_owned())]).unwrap_err();
        assert_eq!(no_dir.title, "CA directory not readable");
    }
}
