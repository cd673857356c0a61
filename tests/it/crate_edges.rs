//! The workspace's shape, checked: the dependency edges between our crates
//! are exactly the table in ARCHITECTURE.md ("Dependency direction"), each
//! with its reason, and every crate has one integration-test binary,
//! `tests/it/main.rs`, that names every file beside it.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

/// The package name without its `vc-` prefix, as ARCHITECTURE.md names it.
fn short(package: &str) -> String {
    package.strip_prefix("vc-").unwrap_or(package).to_owned()
}

fn manifest(dir: &Path) -> toml::Table {
    let path = dir.join("Cargo.toml");
    let text =
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.parse::<toml::Table>()
        .unwrap_or_else(|e| panic!("{} is not TOML: {e}", path.display()))
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The directory of every package of the workspace, the root included.
fn package_dirs() -> Vec<String> {
    let root_manifest = manifest(root());
    let members = root_manifest["workspace"]["members"]
        .as_array()
        .expect("workspace.members is a list");
    std::iter::once(".".to_owned())
        .chain(
            members
                .iter()
                .map(|m| m.as_str().expect("a member is a path").to_owned()),
        )
        .collect()
}

/// `(crate, dependency)` for every normal dependency of one of our packages
/// on another, from the manifests.
fn edges_in_manifests() -> BTreeSet<(String, String)> {
    let root_manifest = manifest(root());
    let workspace_deps = root_manifest["workspace"]["dependencies"]
        .as_table()
        .expect("workspace.dependencies");
    // The key a manifest uses -> the package it names, for our own crates.
    let ours = |key: &str| -> Option<String> {
        let entry = workspace_deps.get(key)?.as_table()?;
        entry.get("path")?;
        let package = entry.get("package").and_then(|p| p.as_str()).unwrap_or(key);
        Some(short(package))
    };
    let mut edges = BTreeSet::new();
    for dir in package_dirs() {
        let m = manifest(&root().join(&dir));
        let name = short(m["package"]["name"].as_str().expect("package.name"));
        let mut tables: Vec<&toml::Table> = Vec::new();
        if let Some(deps) = m.get("dependencies").and_then(|d| d.as_table()) {
            tables.push(deps);
        }
        if let Some(targets) = m.get("target").and_then(|t| t.as_table()) {
            for target in targets.values() {
                if let Some(deps) = target.get("dependencies").and_then(|d| d.as_table()) {
                    tables.push(deps);
                }
            }
        }
        for deps in tables {
            for (key, spec) in deps {
                let package = spec
                    .as_table()
                    .and_then(|t| t.get("package"))
                    .and_then(|p| p.as_str())
                    .map(short);
                let path = spec.as_table().and_then(|t| t.get("path")).is_some();
                let dep = match (ours(key), package, path) {
                    (Some(dep), _, _) => dep,
                    (None, Some(package), true) => package,
                    (None, None, true) => short(key),
                    _ => continue,
                };
                edges.insert((name.clone(), dep));
            }
        }
    }
    edges
}

/// `(crate, dependency, why)` from the table under "Dependency direction".
fn edges_in_architecture_md() -> Vec<(String, String, String)> {
    let text = fs::read_to_string(root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let section = text
        .split("\n## Dependency direction\n")
        .nth(1)
        .expect("ARCHITECTURE.md has a section \"Dependency direction\"");
    let section = section.split("\n## ").next().unwrap_or(section);
    let mut rows = Vec::new();
    for line in section.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        let [from, to, why] = cells[..] else {
            panic!("ARCHITECTURE.md: an edge row has three cells: {line}");
        };
        rows.push((
            from.trim_matches('`').to_owned(),
            to.trim_matches('`').to_owned(),
            why.to_owned(),
        ));
    }
    rows
}

#[test]
fn crate_edges_are_the_table_in_architecture_md_each_with_a_reason() {
    let actual = edges_in_manifests();
    assert!(
        actual.len() > 10,
        "found only {} edges between our crates: wrong root?",
        actual.len()
    );
    let rows = edges_in_architecture_md();
    let without_reason: Vec<_> = rows
        .iter()
        .filter(|(_, _, why)| why.len() < 10)
        .map(|(from, to, _)| format!("{from} -> {to}"))
        .collect();
    let drawn: BTreeSet<(String, String)> =
        rows.into_iter().map(|(from, to, _)| (from, to)).collect();
    let unexplained: Vec<_> = actual
        .difference(&drawn)
        .map(|(from, to)| format!("{from} -> {to}"))
        .collect();
    let stale: Vec<_> = drawn
        .difference(&actual)
        .map(|(from, to)| format!("{from} -> {to}"))
        .collect();
    assert!(
        unexplained.is_empty() && stale.is_empty() && without_reason.is_empty(),
        "ARCHITECTURE.md's table of crate edges and the manifests disagree\n\
         in a Cargo.toml, not in the table (add a row saying why): {unexplained:?}\n\
         in the table, not in any Cargo.toml (remove the row): {stale:?}\n\
         rows without a reason: {without_reason:?}"
    );
}

/// Shared helpers a crate's test binary keeps beside its test modules.
const TESTS_DIR_EXCEPTIONS: &[(&str, &str)] = &[
    // Installs the process-wide tracing subscriber: in a shared binary it
    // would capture (and slow down) every other test.
    (".", "secrets_in_logs.rs"),
];

#[test]
fn every_crate_has_one_test_binary_naming_every_module() {
    let mut wrong = Vec::new();
    for dir in package_dirs() {
        let tests = root().join(&dir).join("tests");
        let Ok(entries) = fs::read_dir(&tests) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == "it" || TESTS_DIR_EXCEPTIONS.contains(&(dir.as_str(), name.as_str())) {
                continue;
            }
            wrong.push(format!(
                "{dir}/tests/{name}: move it into {dir}/tests/it/ and name it in main.rs"
            ));
        }
        let it = tests.join("it");
        let Ok(main) = fs::read_to_string(it.join("main.rs")) else {
            wrong.push(format!("{dir}/tests/it/main.rs is missing"));
            continue;
        };
        let declared: BTreeSet<&str> = main
            .lines()
            .filter_map(|l| l.trim().strip_prefix("mod "))
            .filter_map(|l| l.strip_suffix(';'))
            .collect();
        for entry in fs::read_dir(&it).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let module = name.strip_suffix(".rs").unwrap_or(&name);
            if name == "main.rs" || declared.contains(module) {
                continue;
            }
            wrong.push(format!(
                "{dir}/tests/it/{name} is compiled by nobody: add `mod {module};` to main.rs"
            ));
        }
    }
    assert!(wrong.is_empty(), "test layout:\n{}", wrong.join("\n"));
}

/// The `pub mod` lines of a crate root: each is a module path its users can
/// name, which a `pub use` of the item itself would not expose.
fn pub_mods(lib_rs: &str) -> Vec<String> {
    lib_rs
        .lines()
        .map(str::trim_start)
        .filter(|line| line.starts_with("pub mod ") || line.starts_with("pub(in "))
        .filter(|line| line.contains("mod "))
        .map(str::to_owned)
        .collect()
}

#[test]
fn pub_mods_finds_exported_modules_and_spares_private_ones() {
    let lib = "mod a;\npub(crate) mod b;\n#[cfg(x)]\npub mod c;\n    pub mod d {}\npub use a::X;\n";
    assert_eq!(pub_mods(lib), ["pub mod c;", "pub mod d {}"]);
}

/// vc-actors exports its API item by item: every module of its root is
/// private, so the gateway, the binary and the tests name `vc_actors::Item`
/// and never the crate's inner layout (`actors/README.md`, "Public API").
#[test]
fn actors_exports_items_not_modules() {
    let path = root().join("actors/src/lib.rs");
    let text =
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let found = pub_mods(&text);
    assert!(
        found.is_empty(),
        "{} declares public modules {found:?}: declare them `mod NAME;` and export \
         what callers need with a documented `pub use NAME::Item;` at the crate root",
        path.display()
    );
}
