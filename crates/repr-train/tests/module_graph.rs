//! No module of repr-train imports a module that imports it back, directly or through others:
//! the `crate::` paths of every source file (comments and test modules left out; names
//! re-exported by `lib.rs` resolved to the module that defines them) form a graph without
//! cycles.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module name (`trainer`, `methods::simclr`) → source text, without comments and tests.
fn modules() -> BTreeMap<String, String> {
    fn walk(dir: &Path, src: &Path, out: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, src, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(src).unwrap().with_extension("");
                let name = rel.to_string_lossy().replace("/mod", "").replace('/', "::");
                let text = std::fs::read_to_string(&path).unwrap();
                let code = text.split("#[cfg(test)]").next().unwrap_or("");
                let code: Vec<&str> = code
                    .lines()
                    .filter(|l| !l.trim_start().starts_with("//"))
                    .collect();
                out.insert(name, code.join("\n"));
            }
        }
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = BTreeMap::new();
    walk(&src, &src, &mut out);
    out
}

fn ident_end(s: &str) -> usize {
    s.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(s.len())
}

/// `pub use a::b::{X, Y};` and `pub use a::b::X;` of `lib.rs`: re-exported name → path.
fn reexports(lib: &str) -> BTreeMap<String, String> {
    let mut owner = BTreeMap::new();
    for statement in lib.split(';') {
        let Some(rest) = statement.trim().strip_prefix("pub use ") else {
            continue;
        };
        if let Some((path, names)) = rest.split_once("::{") {
            for name in names.trim_end_matches('}').split(',') {
                let name = name.trim();
                if !name.is_empty() {
                    owner.insert(name.to_string(), path.trim().to_string());
                }
            }
        } else if let Some((path, name)) = rest.rsplit_once("::") {
            owner.insert(name.trim().to_string(), path.trim().to_string());
        }
    }
    owner
}

/// The module a `crate::` path (`trainer::train`, `TrainConfig`) lives in.
fn resolve(
    path: &str,
    modules: &BTreeMap<String, String>,
    owner: &BTreeMap<String, String>,
    depth: usize,
) -> Option<String> {
    let parts: Vec<&str> = path.split("::").filter(|p| !p.is_empty()).collect();
    for i in (1..=parts.len()).rev() {
        let candidate = parts[..i].join("::");
        if modules.contains_key(&candidate) {
            return Some(candidate);
        }
    }
    let first = parts.first()?;
    let through = owner.get(*first)?;
    (depth < 4)
        .then(|| resolve(through, modules, owner, depth + 1))
        .flatten()
}

/// Every `crate::` path a module's code names.
fn crate_paths(code: &str) -> Vec<String> {
    let mut paths = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        let end = ident_end(rest);
        let prefix = &rest[..end];
        if rest[end..].starts_with('{') {
            let close = rest[end..].find('}').map_or(rest.len(), |c| end + c);
            for item in rest[end + 1..close].split(',') {
                let item = item.trim().split("::").next().unwrap_or("");
                if !item.is_empty() && item != "self" {
                    paths.push(format!("{prefix}{item}"));
                }
            }
        } else {
            paths.push(prefix.to_string());
        }
    }
    paths
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let mut modules = modules();
    let lib = modules.remove("lib").expect("src/lib.rs");
    let owner = reexports(&lib);
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (name, code) in &modules {
        let targets = edges.entry(name.clone()).or_default();
        for path in crate_paths(code) {
            if let Some(target) = resolve(&path, &modules, &owner, 0) {
                let nested = target.starts_with(&format!("{name}::"))
                    || name.starts_with(&format!("{target}::"));
                if target != *name && !nested {
                    targets.insert(target);
                }
            }
        }
    }
    assert!(
        edges["trainer"].contains("stepper") && edges["config"].contains("methods"),
        "the graph was not read: {edges:?}"
    );
    // A depth-first search from every module for a path back to it.
    let mut cycles = Vec::new();
    for start in edges.keys() {
        let mut stack = vec![(start.clone(), vec![start.clone()])];
        let mut seen = BTreeSet::new();
        while let Some((node, path)) = stack.pop() {
            for next in edges.get(&node).into_iter().flatten() {
                if next == start {
                    cycles.push(format!("{} -> {start}", path.join(" -> ")));
                } else if seen.insert(next.clone()) {
                    let mut longer = path.clone();
                    longer.push(next.clone());
                    stack.push((next.clone(), longer));
                }
            }
        }
    }
    assert!(cycles.is_empty(), "import cycles: {cycles:#?}");
}
