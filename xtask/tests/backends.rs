//! `xtask train --device wgpu` and `--device ndarray` from a binary built the way the README
//! says (`--features wgpu,ndarray`; `.ci/run` builds and runs it): each trains a small run to
//! the end and names its device in the summary.
#![cfg(all(feature = "wgpu", feature = "ndarray"))]

mod common;

#[test]
fn the_optional_backends_train_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    // 4 steps of a small GroupNorm ResNet, batch 32, kNN on 50 test images.
    std::fs::write(&config, repr_train::equivalence::small_run(64, 2).to_toml()).unwrap();
    let runs = dir.path().join("runs");
    for device in ["wgpu", "ndarray"] {
        common::succeed(&common::train(
            &runs,
            &config,
            device,
            &["--device", device],
        ));
        let losses = repr_train::equivalence::logged_train_losses(&runs.join(device));
        assert_eq!(losses.len(), 4, "--device {device}");
        assert!(
            losses.iter().all(|(_, l)| l.is_finite()),
            "{device}: {losses:?}"
        );
        let summary: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(runs.join(device).join("summary.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(summary["device"], device);
        assert_eq!(summary["steps"], 4);
    }
}
