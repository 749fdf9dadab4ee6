//! Config files written before `[method]` existed (`recipe = "simclr"` with `[simclr]`,
//! `[triplet]`, `[byol]`, `[masked_patch]`, `[views]`, `label_smoothing` and `[finetune]`, as
//! older run folders have them), read into the current shape: such a run resumes and
//! evaluates as before, and its `config.toml` is written back in the current shape when it
//! resumes. Module records did not change (same variant and field names), so its checkpoints
//! and `model.bpk` load as they are.

use serde_json::{Map, Value};

/// The top-level keys only a file of the old shape has.
const OLD_KEYS: [&str; 8] = [
    "recipe",
    "simclr",
    "triplet",
    "byol",
    "masked_patch",
    "views",
    "label_smoothing",
    "finetune",
];

/// Whether `doc` is a config document of the old shape.
pub(crate) fn is_old(doc: &Value) -> bool {
    doc.as_object()
        .is_some_and(|map| OLD_KEYS.iter().any(|k| map.contains_key(*k)))
}

/// `doc` (of the old shape) in the current shape; an error names a key it cannot place.
pub(crate) fn convert(doc: Value) -> Result<Value, String> {
    let Value::Object(mut top) = doc else {
        return Ok(doc);
    };
    if top.contains_key("method") || top.contains_key("init") {
        let old: Vec<&str> = OLD_KEYS
            .iter()
            .copied()
            .filter(|k| top.contains_key(*k))
            .collect();
        return Err(format!(
            "mixes [method]/[init] with keys of the old shape ({}); use only [method] and [init] \
             (docs/adding-a-method.md shows the shape)",
            old.join(", ")
        ));
    }
    let recipe = match top.remove("recipe") {
        None => "supervised".to_string(),
        Some(Value::String(r)) => r,
        Some(other) => return Err(format!("recipe: expected a string, found {other}")),
    };
    let mut section = |name: &str, known: &[&str]| -> Result<Map<String, Value>, String> {
        let map = match top.remove(name) {
            None => Map::new(),
            Some(Value::Object(map)) => map,
            Some(other) => return Err(format!("{name}: expected a table, found {other}")),
        };
        if let Some(unknown) = map.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(format!(
                "unknown field `{unknown}` in [{name}], expected one of {known:?}"
            ));
        }
        Ok(map)
    };
    let simclr = section(
        "simclr",
        &[
            "temperature",
            "head_hidden",
            "head_output",
            "head_layers",
            "head_batch_norm",
            "chunk_size",
        ],
    )?;
    let triplet = section(
        "triplet",
        &[
            "margin",
            "distance",
            "miner",
            "soft_margin",
            "embedding_dim",
            "classes_per_batch",
            "images_per_class",
        ],
    )?;
    let byol = section("byol", &["hidden", "output", "base_decay"])?;
    let finetune = section(
        "finetune",
        &["from", "keep_stages", "freeze_stages", "backbone_lr_scale"],
    )?;
    let masked_patch = top.remove("masked_patch");
    let views = top.remove("views");
    let smoothing = top.remove("label_smoothing");

    let pick = |from: &Map<String, Value>, pairs: &[(&str, &str)]| -> Map<String, Value> {
        pairs
            .iter()
            .filter_map(|(old, new)| from.get(*old).map(|v| (new.to_string(), v.clone())))
            .collect()
    };
    let mut method = Map::new();
    let kind = match recipe.as_str() {
        "finetune" => "supervised",
        other => other,
    };
    method.insert("kind".into(), Value::String(kind.into()));
    match kind {
        "supervised" => {
            if let Some(smoothing) = smoothing {
                let loss = Map::from_iter([("smoothing".to_string(), smoothing)]);
                method.insert("loss".into(), Value::Object(loss));
            }
        }
        "simclr" => {
            let head = pick(
                &simclr,
                &[
                    ("head_hidden", "hidden"),
                    ("head_output", "output"),
                    ("head_layers", "layers"),
                    ("head_batch_norm", "batch_norm"),
                ],
            );
            let loss = pick(
                &simclr,
                &[("temperature", "temperature"), ("chunk_size", "chunk_size")],
            );
            method.insert("head".into(), Value::Object(head));
            method.insert("loss".into(), Value::Object(loss));
        }
        "triplet" => {
            method.extend(pick(
                &triplet,
                &[
                    ("embedding_dim", "embedding_dim"),
                    ("classes_per_batch", "classes_per_batch"),
                    ("images_per_class", "images_per_class"),
                ],
            ));
            let mut loss = pick(
                &triplet,
                &[
                    ("margin", "margin"),
                    ("distance", "distance"),
                    ("miner", "miner"),
                    ("soft_margin", "soft_margin"),
                ],
            );
            // The old trainer always averaged over the triplets with a positive loss.
            loss.insert("reduction".into(), Value::String("mean-non-zero".into()));
            method.insert("loss".into(), Value::Object(loss));
        }
        "byol" => method.extend(byol),
        "masked-patch" => {
            if let Some(masked_patch) = masked_patch {
                method.insert("loss".into(), masked_patch);
            }
        }
        other => {
            return Err(format!(
                "unknown variant `{other}` of recipe, expected one of supervised, simclr, \
                 triplet, byol, masked-patch, finetune"
            ));
        }
    }
    if matches!(kind, "simclr" | "byol")
        && let Some(views) = views
    {
        method.insert("views".into(), views);
    }
    top.insert("method".into(), Value::Object(method));
    if recipe == "finetune" {
        let mut init = finetune;
        init.entry("from")
            .or_insert_with(|| Value::String(String::new()));
        top.insert("init".into(), Value::Object(init));
    }
    Ok(Value::Object(top))
}
