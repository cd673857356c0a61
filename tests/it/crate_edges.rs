//! The workspace's shape, checked: the dependency edges between our crates
//! are exactly the table in ARCHITECTURE.md ("Dependency direction"), each
//! with its reason, and every crate has one integration-test binary,
//! `tests/it/main.rs`, that names every file beside it; and the parties'
//! side (`vc-client`) does not reach the issuer.

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

/// What the parties' side must never link: the issuer (its actors, redb
/// stores and read models), the issuer's gateway, the actor framework.
const CLIENT_NEVER_REACHES: &[&str] = &[
    "vc-actors",
    "vc-projections",
    "vc-gateway",
    "vc-cluster",
    "vc-pg-store",
    "actix",
];

/// Every package `from` reaches in `Cargo.lock` (normal, build and, for our
/// own crates, dev dependencies: a superset of what it links).
fn reached_in_cargo_lock(from: &str) -> BTreeSet<String> {
    let text = fs::read_to_string(root().join("Cargo.lock")).expect("Cargo.lock");
    let lock: toml::Table = text.parse().expect("Cargo.lock is TOML");
    let packages = lock["package"]
        .as_array()
        .expect("Cargo.lock lists packages");
    // "name version" -> its dependencies, as Cargo.lock writes them
    // ("name", or "name version" when several versions are locked).
    let mut deps_of = std::collections::BTreeMap::<String, Vec<String>>::new();
    let mut versions_of = std::collections::BTreeMap::<String, Vec<String>>::new();
    for p in packages {
        let name = p["name"].as_str().expect("name").to_owned();
        let version = p["version"].as_str().expect("version").to_owned();
        let deps = p
            .get("dependencies")
            .and_then(|d| d.as_array())
            .map(|d| {
                d.iter()
                    .filter_map(|x| x.as_str())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        deps_of.insert(format!("{name} {version}"), deps);
        versions_of.entry(name).or_default().push(version);
    }
    let key = |dep: &str| -> String {
        let mut words = dep.split_whitespace();
        let name = words.next().expect("a dependency has a name");
        match words.next() {
            Some(version) => format!("{name} {version}"),
            None => {
                let versions = &versions_of[name];
                assert_eq!(versions.len(), 1, "Cargo.lock: {name} is ambiguous");
                format!("{name} {}", versions[0])
            }
        }
    };
    let mut seen = BTreeSet::new();
    let mut todo = vec![key(from)];
    while let Some(next) = todo.pop() {
        if !seen.insert(next.clone()) {
            continue;
        }
        todo.extend(deps_of[&next].iter().map(|d| key(d)));
    }
    seen.into_iter()
        .map(|k| k.split_whitespace().next().unwrap_or_default().to_owned())
        .collect()
}

/// The purse and merchant code (`vc-client`: clients, wallet, merchant
/// server, purse page) does not link the issuer: neither through our
/// crates' manifests nor through anything `Cargo.lock` resolves for it.
#[test]
fn the_client_crate_does_not_reach_the_issuer() {
    let edges = edges_in_manifests();
    let mut reached = BTreeSet::new();
    let mut todo = vec!["client".to_owned()];
    while let Some(next) = todo.pop() {
        for (from, to) in &edges {
            if *from == next && reached.insert(to.clone()) {
                todo.push(to.clone());
            }
        }
    }
    assert!(
        reached.contains("protocol") && reached.contains("purse"),
        "vc-client's manifest edges were not read: {reached:?}"
    );
    let in_manifests: Vec<_> = CLIENT_NEVER_REACHES
        .iter()
        .filter(|p| reached.contains(&short(p)))
        .collect();
    let locked = reached_in_cargo_lock("vc-client");
    assert!(locked.contains("ureq"), "vc-client not found in Cargo.lock");
    // The walk does find the issuer where it is.
    let gateway = reached_in_cargo_lock("vc-gateway");
    assert!(
        gateway.contains("vc-actors") && gateway.contains("actix"),
        "Cargo.lock's walk misses vc-gateway's issuer: {gateway:?}"
    );
    let in_lock: Vec<_> = CLIENT_NEVER_REACHES
        .iter()
        .filter(|p| locked.contains(**p))
        .collect();
    assert!(
        in_manifests.is_empty() && in_lock.is_empty(),
        "vc-client reaches the issuer: through our manifests {in_manifests:?}, \
         in Cargo.lock {in_lock:?}"
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
