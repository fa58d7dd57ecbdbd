//! Following Codex releases (RELEASING.md): `scripts/bump-codex` on a copy of the files it
//! rewrites, against a stand-in npm, moves every pin and nothing else, and refuses a release
//! without a Linux package or a version that is not exact, changing nothing; and
//! `.github/workflows/codex-bump.yml` runs weekly with only the grants it needs and dispatches
//! CI on the branch it pushes.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use pretty_assertions::assert_eq;
use yaml_rust2::{Yaml, YamlLoader};

/// The release the stand-in npm calls latest.
const NEW: &str = "0.999.0";
/// A release the stand-in npm has, but without a linux-arm64 package.
const NO_ARM64: &str = "0.999.1";
/// Made-up integrity hashes, with the `+` and `/` of base64 in them.
const NEW_AMD64: &str = "sha512-Am+/Am+/Am+/Am+/Am+/Am+/Am+/Am+/Am+/Am+/Am+/Am+/Am+/Am+/Am+/Am+/Am+/Am+/Am+/Am+/Am+/d6==";
const NEW_ARM64: &str = "sha512-Ar/+Ar/+Ar/+Ar/+Ar/+Ar/+Ar/+Ar/+Ar/+Ar/+Ar/+Ar/+Ar/+Ar/+Ar/+Ar/+Ar/+Ar/+Ar/+Ar/+Ar/+m6==";
const NO_ARM64_AMD64: &str = "sha512-Xx+/Xx+/Xx+/Xx+/Xx+/Xx+/Xx+/Xx+/Xx+/Xx+/Xx+/Xx+/Xx+/Xx+/Xx+/Xx+/Xx+/Xx+/Xx+/Xx+/Xx+/x6==";

/// The pages that record what was observed with a version: a person re-checks them, the
/// script leaves them alone.
const OBSERVATIONS: &[&str] = &["docs/facts.md", "docs/architecture.md", "docs/benchmark.md"];

fn repository() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The version the repository pins now, from the Dockerfile.
fn pinned() -> String {
    let dockerfile = fs::read_to_string(repository().join("Dockerfile")).unwrap();
    dockerfile
        .lines()
        .find_map(|line| line.strip_prefix("ARG CODEX_VERSION="))
        .unwrap()
        .to_owned()
}

/// Every file under `dir`, by its path relative to `dir` (a file that is not UTF-8, such as an
/// image, lossily: compared, never rewritten).
fn read_tree(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut files = BTreeMap::new();
    let mut dirs = vec![dir.to_owned()];
    while let Some(next) = dirs.pop() {
        for path in fs::read_dir(next).unwrap().map(|e| e.unwrap().path()) {
            if path.is_dir() {
                dirs.push(path);
            } else {
                let text = String::from_utf8_lossy(&fs::read(&path).unwrap()).into_owned();
                files.insert(path.strip_prefix(dir).unwrap().to_owned(), text);
            }
        }
    }
    files
}

/// A copy of the files `scripts/bump-codex` rewrites (the Dockerfile, `scripts/tools`, the
/// README and `docs/`), and a stand-in npm that answers `npm view` from a table, as the
/// registry would.
struct PinnedFiles {
    dir: tempfile::TempDir,
    original: BTreeMap<PathBuf, String>,
}

/// What one run of the script did.
struct Run {
    success: bool,
    stdout: String,
    stderr: String,
    /// What it appended to GITHUB_OUTPUT.
    output: String,
}

impl PinnedFiles {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("repo");
        let original: BTreeMap<PathBuf, String> = ["Dockerfile", "README.md", "scripts/tools"]
            .into_iter()
            .map(|name| {
                let text = fs::read_to_string(repository().join(name)).unwrap();
                (PathBuf::from(name), text)
            })
            .chain(
                read_tree(&repository().join("docs"))
                    .into_iter()
                    .map(|(path, text)| (Path::new("docs").join(path), text)),
            )
            .collect();
        for (path, text) in &original {
            fs::create_dir_all(root.join(path).parent().unwrap()).unwrap();
            fs::write(root.join(path), text).unwrap();
        }

        let npm = dir.path().join("npm");
        fs::write(
            &npm,
            format!(
                r#"#!/bin/sh
echo "$*" >> "$0.calls"
case "$*" in
  "view @openai/codex dist-tags.latest") echo "${{STAND_IN_LATEST:-{NEW}}}" ;;
  "view @openai/codex@{NEW} version") echo {NEW} ;;
  "view @openai/codex@{NEW}-linux-x64 dist.integrity") echo "{NEW_AMD64}" ;;
  "view @openai/codex@{NEW}-linux-arm64 dist.integrity") echo "{NEW_ARM64}" ;;
  "view @openai/codex@{NO_ARM64} version") echo {NO_ARM64} ;;
  "view @openai/codex@{NO_ARM64}-linux-x64 dist.integrity") echo "{NO_ARM64_AMD64}" ;;
  *) echo "npm error code E404" >&2; echo "npm error 404 No match found for $2" >&2; exit 1 ;;
esac
"#
            ),
        )
        .unwrap();
        fs::set_permissions(&npm, fs::Permissions::from_mode(0o755)).unwrap();
        PinnedFiles { dir, original }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("repo")
    }

    /// `scripts/bump-codex --root <copy> ARGS`, with `latest` as npm's latest tag if given.
    fn bump(&self, args: &[&str], latest: Option<&str>) -> Run {
        let output = self.dir.path().join("github-output");
        fs::write(&output, "").unwrap();
        let mut command = Command::new(repository().join("scripts/bump-codex"));
        command
            .arg("--root")
            .arg(self.root())
            .args(args)
            .env("CODEX_BUMP_NPM", self.dir.path().join("npm"))
            .env("GITHUB_OUTPUT", &output)
            .env_remove("STAND_IN_LATEST");
        if let Some(latest) = latest {
            command.env("STAND_IN_LATEST", latest);
        }
        let result = command.output().unwrap();
        Run {
            success: result.status.success(),
            stdout: String::from_utf8(result.stdout).unwrap(),
            stderr: String::from_utf8(result.stderr).unwrap(),
            output: fs::read_to_string(&output).unwrap(),
        }
    }

    fn files(&self) -> BTreeMap<PathBuf, String> {
        read_tree(&self.root())
    }

    /// The `npm` commands the script ran, one a line.
    fn npm_calls(&self) -> String {
        fs::read_to_string(self.dir.path().join("npm.calls")).unwrap_or_default()
    }
}

/// `text` with each line that starts with a key of `pins` replaced by that key and its value.
fn set_lines(text: &str, pins: &[(&str, &str)]) -> String {
    text.split_inclusive('\n')
        .map(
            |line| match pins.iter().find(|(key, _)| line.starts_with(key)) {
                Some((key, value)) => format!("{key}{value}\n"),
                None => line.to_owned(),
            },
        )
        .collect()
}

/// The copy as it should be after a bump from `old` to `NEW`, file by file.
fn bumped(original: &BTreeMap<PathBuf, String>, old: &str) -> BTreeMap<PathBuf, String> {
    original
        .iter()
        .map(|(path, text)| {
            let name = path.to_str().unwrap();
            let text = match name {
                "Dockerfile" => set_lines(
                    text,
                    &[
                        ("ARG CODEX_VERSION=", NEW),
                        ("ARG CODEX_INTEGRITY_AMD64=", NEW_AMD64),
                        ("ARG CODEX_INTEGRITY_ARM64=", NEW_ARM64),
                    ],
                ),
                "scripts/tools" => set_lines(text, &[("CODEX_VERSION=", NEW)]),
                _ if OBSERVATIONS.contains(&name) => text.clone(),
                _ if name.ends_with(".md")
                    || (name.starts_with("docs/examples/") && name.ends_with(".yml")) =>
                {
                    text.replace(
                        &format!("@openai/codex@{old}"),
                        &format!("@openai/codex@{NEW}"),
                    )
                }
                _ => text.clone(),
            };
            (path.clone(), text)
        })
        .collect()
}

#[test]
fn every_pin_moves_to_the_latest_release_and_nothing_else_changes() {
    let old = pinned();
    let copy = PinnedFiles::new();
    let original = &copy.original;
    // The pins are there to move: both stages' ARG, both integrity hashes, scripts/tools and
    // the install lines people copy.
    let dockerfile = &original[Path::new("Dockerfile")];
    assert_eq!(
        dockerfile
            .matches(&format!("\nARG CODEX_VERSION={old}\n"))
            .count(),
        2
    );
    assert!(dockerfile.contains("\nARG CODEX_INTEGRITY_AMD64=sha512-"));
    assert!(dockerfile.contains("\nARG CODEX_INTEGRITY_ARM64=sha512-"));
    assert!(original[Path::new("scripts/tools")].contains(&format!("\nCODEX_VERSION={old}\n")));
    for page in ["docs/examples/restore-host-steps.yml", "docs/host-face.md"] {
        assert!(
            original[Path::new(page)].contains(&format!("npm install -g @openai/codex@{old}")),
            "{page} has no install line for {old}"
        );
    }

    let run = copy.bump(&[], None);
    assert!(run.success, "{}", run.stderr);
    let expected = bumped(original, &old);
    assert_eq!(copy.files(), expected);
    assert_ne!(copy.files(), *original);
    for page in OBSERVATIONS {
        assert_eq!(copy.files()[Path::new(page)], original[Path::new(page)]);
    }
    assert!(
        run.stdout.starts_with(&format!("Codex {old} -> {NEW}\n")),
        "{}",
        run.stdout
    );
    for (path, text) in &expected {
        let named = run.stdout.contains(&format!("\n{}:\n", path.display()));
        assert_eq!(
            named,
            *text != original[path],
            "the output names exactly the changed files:\n{}",
            run.stdout
        );
    }
    assert_eq!(run.output, format!("version={NEW}\nchanged=true\n"));

    // Run again, with the version given and as the weekly run does: nothing to do.
    for args in [&[NEW][..], &[]] {
        let again = copy.bump(args, None);
        assert!(again.success, "{}", again.stderr);
        assert_eq!(again.stdout, format!("already at {NEW}\n"));
        assert_eq!(again.output, format!("version={NEW}\nchanged=false\n"));
        assert_eq!(copy.files(), expected);
    }

    // npm's latest tag behind the pin (a prerelease pinned by hand): the weekly run keeps it.
    let behind = copy.bump(&[], Some(&old));
    assert!(behind.success, "{}", behind.stderr);
    assert!(
        behind.stdout.contains(&format!("left at {NEW}")),
        "{}",
        behind.stdout
    );
    assert_eq!(behind.output, format!("version={NEW}\nchanged=false\n"));
    assert_eq!(copy.files(), expected);
}

#[test]
fn a_release_without_a_linux_package_changes_nothing() {
    let copy = PinnedFiles::new();
    let run = copy.bump(&[NO_ARM64], None);
    assert!(!run.success);
    assert!(
        run.stderr
            .contains(&format!("@openai/codex@{NO_ARM64}-linux-arm64")),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("no linux-arm64 package"),
        "{}",
        run.stderr
    );
    assert_eq!(copy.files(), copy.original);
    assert_eq!(run.output, "");

    let unpublished = copy.bump(&["0.999.2"], None);
    assert!(!unpublished.success);
    assert!(
        unpublished
            .stderr
            .contains("npm has no @openai/codex 0.999.2"),
        "{}",
        unpublished.stderr
    );
    assert_eq!(copy.files(), copy.original);
}

#[test]
fn only_an_exact_version_is_accepted() {
    let copy = PinnedFiles::new();
    for version in [
        "^0.170",
        "latest",
        "v0.999.0",
        "0.999",
        "0.999.0 || 1.0.0",
        "01.2.3",
    ] {
        let run = copy.bump(&[version], None);
        assert!(!run.success, "{version} was accepted");
        assert!(
            run.stderr.contains("is not an exact version"),
            "{version}: {}",
            run.stderr
        );
        assert_eq!(copy.files(), copy.original);
    }
    assert_eq!(copy.npm_calls(), "", "a refused version reached npm");
}

#[test]
fn the_script_uses_the_configured_registry() {
    let script = fs::read_to_string(repository().join("scripts/bump-codex")).unwrap();
    assert!(!script.contains("://"), "scripts/bump-codex names a host");
    assert!(!script.contains("--registry"));
}

fn workflow(name: &str) -> Yaml {
    let path = repository().join(".github/workflows").join(name);
    YamlLoader::load_from_str(&fs::read_to_string(path).unwrap())
        .unwrap()
        .remove(0)
}

#[test]
fn the_bump_workflow_proposes_and_dispatches_ci() {
    let bump = workflow("codex-bump.yml");
    let on = &bump["on"];
    let schedule = on["schedule"].as_vec().unwrap();
    assert!(schedule[0]["cron"].as_str().is_some());
    assert!(!on["workflow_dispatch"].is_badvalue());
    assert!(bump["permissions"].as_hash().unwrap().is_empty());

    let jobs = bump["jobs"].as_hash().unwrap();
    assert_eq!(jobs.len(), 1);
    let job = jobs.values().next().unwrap();
    let granted: BTreeMap<&str, &str> = job["permissions"]
        .as_hash()
        .unwrap()
        .iter()
        .map(|(scope, level)| (scope.as_str().unwrap(), level.as_str().unwrap()))
        .collect();
    assert_eq!(
        granted,
        BTreeMap::from([
            ("actions", "write"),
            ("contents", "write"),
            ("pull-requests", "write"),
        ])
    );

    let steps = job["steps"].as_vec().unwrap();
    let checkout = steps
        .iter()
        .find(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("actions/checkout@"))
        })
        .unwrap();
    let sha = checkout["uses"]
        .as_str()
        .unwrap()
        .split('@')
        .nth(1)
        .unwrap();
    assert!(
        sha.len() == 40 && sha.chars().all(|c| c.is_ascii_hexdigit()),
        "{sha}"
    );
    assert_eq!(
        checkout["with"]["persist-credentials"].as_bool(),
        Some(false)
    );

    let runs: Vec<&str> = steps.iter().filter_map(|s| s["run"].as_str()).collect();
    assert!(runs.iter().any(|r| r.contains("scripts/bump-codex")));
    let propose = runs
        .iter()
        .find(|r| r.contains("gh pr create"))
        .expect("a step opens the pull request");
    assert!(propose.contains("gh workflow run ci.yml --ref \"$branch\""));
    assert!(propose.contains("codex-bump/$VERSION"));
    assert!(propose.contains("docs/facts.md"));
    assert!(!propose.contains("--auto") && !propose.contains("gh pr merge"));
    for run in &runs {
        assert!(
            !run.contains("${{"),
            "pass values through env:, not into run:\n{run}"
        );
    }

    // What a person must do for it: the repository setting, and the checks before merging.
    let releasing = fs::read_to_string(repository().join("RELEASING.md")).unwrap();
    for needle in [
        "## Following Codex releases",
        "Allow GitHub Actions to create and approve pull requests",
        "scripts/bump-codex",
        "docs/facts.md",
        "image size",
    ] {
        assert!(
            releasing.contains(needle),
            "RELEASING.md must say {needle:?}"
        );
    }

    let ci = workflow("ci.yml");
    assert!(
        !ci["on"]["workflow_dispatch"].is_badvalue(),
        "ci.yml must allow workflow_dispatch: codex-bump.yml starts it"
    );
}
