//! The module layers of "How the code is laid out" (docs/architecture.md): every `crate::…`
//! reference in `src/` points from a module to one strictly below it, so no module imports a
//! stage or a store it serves, and no import circle can form.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The top-level modules, lowest first. A module may use only those of a lower rank.
const LAYERS: &[(&str, u32)] = &[
    ("redacted", 0),
    ("failure", 0),
    ("cancel", 0),
    ("untrusted", 0),
    ("jwt", 0),
    ("auth_file", 1),
    ("seal", 1),
    ("checkout", 1),
    ("workflow", 2),
    ("net", 3),
    ("github", 4),
    ("config", 5),
    ("codex_home", 6),
    ("context", 6),
    ("codex", 7),
    ("store", 7),
    ("stage", 8),
    ("inspect", 8),
    ("seed", 9),
    ("cli", 10),
];

fn rank(module: &str) -> Option<u32> {
    LAYERS.iter().find(|(m, _)| *m == module).map(|(_, r)| *r)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules a source file names with `crate::x` or `use crate::{x, y::…}`.
fn references(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    for (at, _) in text.match_indices("crate::") {
        let rest = &text[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Top-level names of a grouped import: those at brace depth 0 after a `{` or `,`.
            let mut depth = 0;
            let mut expect_name = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => expect_name = true,
                    c if expect_name && depth == 0 && c.is_ascii_alphabetic() => {
                        found.insert(ident(&group[i..]));
                        expect_name = false;
                    }
                    _ => {}
                }
            }
        } else {
            found.insert(ident(rest));
        }
    }
    found
}

#[test]
fn modules_only_use_modules_below_them() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut violations = Vec::new();
    let mut seen = BTreeSet::new();
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        let module = relative
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .unwrap()
            .trim_end_matches(".rs")
            .to_owned();
        if module == "lib" || module == "main" {
            continue;
        }
        let from = rank(&module).unwrap_or_else(|| {
            panic!("src/{module} is not in the layer table of tests/integration/architecture.rs")
        });
        seen.insert(module.clone());
        let text = std::fs::read_to_string(file).unwrap();
        for used in references(&text) {
            if used == module || used.is_empty() {
                continue;
            }
            match rank(&used) {
                Some(to) if to < from => {}
                _ => violations.push(format!("{} uses crate::{used}", relative.display())),
            }
        }
    }
    assert_eq!(
        violations,
        Vec::<String>::new(),
        "a module uses one at its own level or above"
    );
    // The table names only modules that exist.
    for (module, _) in LAYERS {
        assert!(
            seen.contains(*module),
            "src/{module} is gone: update LAYERS"
        );
    }
}

#[test]
fn the_checker_sees_grouped_and_nested_imports() {
    let found = references(
        "use crate::{auth_file::AuthFile, stage::{a, b}, workflow};\nlet x = crate::store::open();",
    );
    assert_eq!(
        found.into_iter().collect::<Vec<_>>(),
        ["auth_file", "stage", "store", "workflow"]
    );
}

/// The stores are storage only (docs/architecture.md): they answer with typed facts and know
/// nothing of the stage or the mode that opened them; every word the user reads about a load
/// or a save is the stages' (`src/stage/wording/`).
#[test]
fn stores_know_no_stage_or_mode_and_word_no_failure() {
    let store = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/store");
    let mut files = Vec::new();
    rust_files(&store, &mut files);
    assert!(files.len() >= 5, "{files:?}");
    let mut found = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for forbidden in [
            "Failure",
            "Mode",
            "Stage",
            "Phase",
            "reseed_hint",
            "reseed the",
        ] {
            for (number, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or_default();
                if code.contains(forbidden) {
                    found.push(format!("{}:{}: {forbidden}", file.display(), number + 1));
                }
            }
        }
    }
    assert_eq!(found, Vec::<String>::new());
}
