//! The Markdown table and JSON of `cargo xtask bench models`: every PyTorch number and every
//! ratio against one says whether it is live or stored, and a ratio between numbers measured
//! on different machines carries a `*` explained under the table.

use std::fmt::Write as _;

use anyhow::{Context, Result};
use serde_json::{Value, json};

use super::ModelsArgs;
use super::docs_section::update_docs;
use super::pytorch::{self, Reference, Source};
use super::workloads::Workload;

/// Writes `models.json` and `models.md` under `--out-dir`, prints the table, and replaces the
/// generated section of `--docs`. [`super::prepare_out_dir`] and
/// [`super::docs_section::check_docs`] ran before the
/// measurements, so neither refusal comes after them.
pub fn write(report: &Value, workloads: &[Workload], args: &ModelsArgs) -> Result<()> {
    let mut report = report.clone();
    if args.compare {
        annotate_ratios(&mut report, workloads);
    }
    let table = markdown(&report, workloads, args.compare);
    super::prepare_out_dir(&args.out_dir)?;
    let json_path = args.out_dir.join("models.json");
    std::fs::write(&json_path, serde_json::to_string_pretty(&report)? + "\n")
        .with_context(|| format!("writing {}", json_path.display()))?;
    let md_path = args.out_dir.join("models.md");
    std::fs::write(&md_path, &table).with_context(|| format!("writing {}", md_path.display()))?;
    println!("{table}");
    println!("wrote {} and {}", md_path.display(), json_path.display());
    if let Some(docs) = &args.docs {
        update_docs(docs, &table)?;
        println!("updated {}", docs.display());
    }
    Ok(())
}

/// The PyTorch rows of the report: measured live in this run when `torch` imports (NCHW, the
/// layout of our tensors, on as many threads as our backends use), then the stored ones (NCHW
/// and channels-last) with the machine they were measured on.
pub fn pytorch_rows(workloads: &[Workload], args: &ModelsArgs) -> Vec<Value> {
    let live = match pytorch::torch_version() {
        Ok(version) => {
            eprintln!("PyTorch: torch {version} imports; measuring it live");
            true
        }
        Err(why) => {
            let stored = pytorch::reference("resnet_train")
                .and_then(|r| r.machine)
                .map_or_else(|| "an unrecorded machine".into(), |m| m.describe());
            eprintln!(
                "PyTorch: {why}; comparing with the stored numbers, measured on {stored} \
                 (REPR_PYTHON names an interpreter that imports torch, to measure it live)"
            );
            false
        }
    };
    let threads = rayon::current_num_threads();
    let mut rows = Vec::new();
    for &w in workloads {
        if let (true, Some(bench)) = (live, w.pytorch_bench()) {
            if args.wait_idle > 0 {
                super::measure::wait_idle(
                    std::time::Duration::from_secs(args.wait_idle),
                    args.max_other,
                    5,
                );
            }
            let batch = if bench.ends_with("_train") {
                args.train_batch
            } else {
                args.infer_batch
            };
            eprintln!(
                "{bench} on PyTorch (live, {threads} threads): {} warm-up + {} timed steps",
                args.warmup,
                args.steps.max(3)
            );
            match pytorch::live(bench, batch, args.steps.max(3), args.warmup, threads) {
                Ok(r) => rows.push(r.to_json()),
                Err(e) => eprintln!("PyTorch {bench}: {e:#}; the stored numbers stand in"),
            }
        }
        rows.extend(pytorch_for(w).iter().map(Reference::to_json));
    }
    rows
}

/// Adds `vs_pytorch` to every measured row of a `--compare` report: the ratio the table
/// prints, the PyTorch number's source, and whether it was measured on another machine.
fn annotate_ratios(report: &mut Value, workloads: &[Workload]) {
    let machine = report["machine"].clone();
    let firsts: Vec<(&str, Reference)> = workloads
        .iter()
        .filter_map(|&w| Some((w.name(), references(report, w).into_iter().next()?)))
        .collect();
    let Some(results) = report["results"].as_array_mut() else {
        return;
    };
    for row in results.iter_mut().filter(|r| r["status"] == "ok") {
        let Some((_, t)) = firsts.iter().find(|(w, _)| row["workload"] == *w) else {
            continue;
        };
        let Some(median) = row["ips_median"].as_f64() else {
            continue;
        };
        row["vs_pytorch"] = json!({
            "ratio": (median / t.median * 1000.0).round() / 1000.0,
            "pytorch_bench": t.bench,
            "pytorch_source": t.source.name(),
            "cross_machine": !t.on_machine(&machine),
        });
    }
}

/// The report's PyTorch rows for `workload` (live first), or the stored ones when the report
/// has none.
fn references(report: &Value, workload: Workload) -> Vec<Reference> {
    let Some(bench) = workload.pytorch_bench() else {
        return Vec::new();
    };
    match report["pytorch"].as_array() {
        Some(rows) => rows
            .iter()
            .filter(|r| {
                r["bench"]
                    .as_str()
                    .is_some_and(|b| b == bench || b == format!("{bench}_cl"))
            })
            .map(|r| {
                let source = if r["source"] == "live" {
                    Source::Live
                } else {
                    Source::Stored
                };
                let bench = r["bench"].as_str().unwrap_or("?");
                pytorch::from_record(bench, r, r["pass2_ips_median"].as_f64(), source)
            })
            .collect(),
        None => pytorch_for(workload),
    }
}

/// The stored PyTorch measurements matching `workload`: NCHW first, then channels-last.
fn pytorch_for(workload: Workload) -> Vec<Reference> {
    let Some(bench) = workload.pytorch_bench() else {
        return Vec::new();
    };
    [bench.to_string(), format!("{bench}_cl")]
        .iter()
        .filter_map(|b| pytorch::reference(b))
        .collect()
}

/// The table: one row per workload and backend, PyTorch's rows under each workload.
pub fn markdown(report: &Value, workloads: &[Workload], compare: bool) -> String {
    let results = report["results"].as_array().cloned().unwrap_or_default();
    let baseline = report["baseline"].as_str().unwrap_or("flex");
    let machine = &report["machine"];
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Machine: {} ({} cores{}), {} build, commit `{}`, {}.  ",
        machine["cpu"].as_str().unwrap_or("?"),
        machine["cores"],
        if machine["avx512"] == true {
            ", AVX-512"
        } else {
            ""
        },
        report["profile"].as_str().unwrap_or("?"),
        report["commit"].as_str().unwrap_or("?"),
        report["date"].as_str().unwrap_or("?"),
    );
    let _ = writeln!(
        s,
        "Command: `{}`.\n",
        report["command"].as_str().unwrap_or("?")
    );
    let _ = write!(
        s,
        "| workload | backend | batch | images/s median (min–max) | ms/step median | steps (+warm-up) | peak RSS MiB | vs {baseline} |"
    );
    if compare {
        s.push_str(" vs PyTorch |");
    }
    s.push_str(" other procs (cores) |\n");
    let _ = write!(s, "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    if compare {
        s.push_str(" ---: |");
    }
    s.push_str(" ---: |\n");
    let mut all_refs: Vec<Reference> = Vec::new();
    for &w in workloads {
        let rows: Vec<&Value> = results
            .iter()
            .filter(|r| r["workload"] == w.name())
            .collect();
        let base = rows
            .iter()
            .find(|r| r["device"] == baseline && r["status"] == "ok")
            .and_then(|r| r["ips_median"].as_f64());
        let refs = references(report, w);
        let first = refs.first();
        for r in &rows {
            let device = r["device"].as_str().unwrap_or("?");
            if r["status"] != "ok" {
                let _ = write!(
                    s,
                    "| {} | {device} | | {} | | | | |",
                    w.title(),
                    r["note"].as_str().unwrap_or("failed").replace('|', "/")
                );
                if compare {
                    s.push_str(" |");
                }
                s.push_str(" |\n");
                continue;
            }
            let median = r["ips_median"].as_f64().unwrap_or(f64::NAN);
            let _ = write!(
                s,
                "| {} | {device} | {} | {} ({}–{}) | {:.0} | {} (+{}) | {} | {} |",
                w.title(),
                r["batch_images"],
                num(median),
                num(r["ips_min"].as_f64().unwrap_or(f64::NAN)),
                num(r["ips_max"].as_f64().unwrap_or(f64::NAN)),
                r["ms_median"].as_f64().unwrap_or(f64::NAN),
                r["n"],
                r["warmup"],
                r["peak_rss_mib"]
                    .as_f64()
                    .map_or_else(|| "—".into(), |m| format!("{m:.0}")),
                ratio(median, base, false),
            );
            if compare {
                let cell = first.map_or_else(
                    || "—".into(),
                    |t| {
                        let cross = !t.on_machine(machine);
                        format!(
                            "{} {}",
                            ratio(median, Some(t.median), cross),
                            t.source.name()
                        )
                    },
                );
                let _ = write!(s, " {cell} |");
            }
            let _ = writeln!(
                s,
                " {:.2} |",
                r["other_procs_cores"].as_f64().unwrap_or(f64::NAN)
            );
        }
        if compare {
            for (i, t) in refs.iter().enumerate() {
                let layout = if t.bench.ends_with("_cl") {
                    ", channels-last"
                } else {
                    ""
                };
                let cross = !t.on_machine(machine);
                let vs_pytorch = match first {
                    Some(p) if i > 0 => format!(
                        "{} {}",
                        ratio(t.median, Some(p.median), !t.same_machine_as(p, machine)),
                        p.source.name()
                    ),
                    _ => "1.00×".into(),
                };
                let _ = writeln!(
                    s,
                    "| {} | PyTorch {} CPU{layout} ({}{}) | {} | {} ({}–{}) | {:.0} | {} (+{}) | {:.0} | {} | {vs_pytorch} | {:.2} |",
                    w.title(),
                    t.torch.split('+').next().unwrap_or("?"),
                    t.source.name(),
                    if cross { "*" } else { "" },
                    t.batch,
                    num(t.median),
                    num(t.min),
                    num(t.max),
                    1000.0 * t.batch as f64 / t.median,
                    t.steps,
                    t.warmup,
                    t.maxrss_mib,
                    ratio(t.median, base, cross),
                    t.other_cores
                );
            }
            all_refs.extend(refs);
        }
    }
    s.push('\n');
    s.push_str(
        "images/s: images per second of the median step (SimCLR: source images, two views each). \
         Steps include forward, loss, backward and the SGD step, ended by a device sync and a \
         scalar read. `vs` columns divide this row's median by the baseline's median (same \
         invocation)",
    );
    if compare {
        s.push_str(
            " or by the first PyTorch row of its workload. Each PyTorch row and \"vs PyTorch\" \
             cell names its PyTorch number's source: \"live\" (measured in this invocation by \
             `benches/pytorch/bench_models.py`, when `torch` imports) or \"stored\" (from \
             `benches/pytorch/`, measured on the machine named below)",
        );
    }
    s.push_str(
        ". flex-burn: flex with Burn's own kernels (`REPR_KERNELS=burn`); flex: with \
         repr-kernels. \"other procs\": cores used by other processes during the timed steps. \
         Peak RSS: `VmHWM` of the process measuring that row alone.\n",
    );
    if compare && !all_refs.is_empty() {
        s.push('\n');
        s.push_str(&pytorch::provenance(
            &all_refs.iter().collect::<Vec<_>>(),
            machine,
        ));
    }
    s
}

/// `numerator / denominator` as `0.45×`, with `*` when the two were measured on different
/// machines; `—` without a denominator.
fn ratio(numerator: f64, denominator: Option<f64>, cross_machine: bool) -> String {
    denominator.map_or_else(
        || "—".into(),
        |d| {
            let star = if cross_machine { "*" } else { "" };
            format!("{:.2}×{star}", numerator / d)
        },
    )
}

/// Three significant digits, without a trailing `.0` on large numbers.
fn num(x: f64) -> String {
    if !x.is_finite() {
        "—".into()
    } else if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok_row(workload: &str, device: &str, ips: f64) -> Value {
        json!({"workload": workload, "device": device, "status": "ok", "batch_images": 64,
               "ips_median": ips, "ips_min": ips, "ips_max": ips, "ms_median": 64000.0 / ips,
               "n": 7, "warmup": 2, "peak_rss_mib": 900.0, "other_procs_cores": 0.01})
    }

    fn report_on(cpu: &str, pytorch: Option<Value>) -> Value {
        let mut report = json!({
            "baseline": "flex", "machine": {"cpu": cpu, "cores": 2}, "profile": "release",
            "commit": "abc", "date": "d", "command": "c",
            "results": [
                ok_row("resnet18-train", "flex", 40.0),
                ok_row("resnet18-train", "ndarray", 1.0),
                {"workload": "vit-train", "device": "flex", "status": "skipped",
                 "note": "slow backend here: not in --slow-workloads"},
            ],
        });
        if let Some(rows) = pytorch {
            report["pytorch"] = rows;
        }
        report
    }

    const WORKLOADS: [Workload; 2] = [Workload::Resnet18Train, Workload::VitTrain];

    #[test]
    fn stored_numbers_from_another_machine_are_marked_and_named() {
        let report = report_on("Intel(R) Xeon(R) Processor", None);
        let table = markdown(&report, &WORKLOADS, true);
        assert!(table.contains("| 0.03× |"), "{table}");
        // 40 / 89.2 (PyTorch's stored median), measured on another CPU.
        assert!(table.contains("| 0.45×* stored |"), "{table}");
        assert!(
            table.contains("| PyTorch 2.15.0 CPU (stored*) | 64 | 89.2 (85.4–95.3) | 717 | 10 (+2) | 1592 | 2.23×* | 1.00× |"),
            "{table}"
        );
        // Channels-last against NCHW: both stored on the same machine, so no mark.
        assert!(
            table.contains("| PyTorch 2.15.0 CPU, channels-last (stored*) |"),
            "{table}"
        );
        assert!(table.contains("| 1.24× stored |"), "{table}");
        assert!(
            table.contains(
                "PyTorch stored: `benches/pytorch/pytorch-cpu-results.jsonl`, measured on \
                 AMD EPYC (model not recorded), 2 cores, 2026-11-28 (torch 2.15.0+cu132, \
                 2 threads) — not this machine (Intel(R) Xeon(R) Processor, 2 cores); ratios \
                 across machines are not comparable."
            ),
            "{table}"
        );
        assert!(table.contains("`*`: the ratio divides"), "{table}");
        assert!(!table.contains("same machine"), "{table}");
        assert!(!table.contains("PyTorch live"), "{table}");
        assert!(table.contains("not in --slow-workloads"), "{table}");
    }

    #[test]
    fn stored_numbers_from_the_same_cpu_model_carry_no_mark() {
        let report = report_on("AMD EPYC (model not recorded)", None);
        let table = markdown(&report, &WORKLOADS, true);
        assert!(table.contains("| 0.45× stored |"), "{table}");
        assert!(table.contains("| PyTorch 2.15.0 CPU (stored) |"), "{table}");
        assert!(table.contains("same CPU model and core count"), "{table}");
        assert!(!table.contains('*'), "{table}");
    }

    #[test]
    fn live_numbers_are_named_live_and_stored_ones_beside_them_are_marked() {
        let here = "Intel(R) Xeon(R) Processor";
        let mut live = pytorch::reference("resnet_train").unwrap();
        live.source = Source::Live;
        live.median = 20.0;
        live.torch = "2.9.1+cpu".into();
        live.machine = Some(pytorch::PeerMachine {
            cpu: here.into(),
            cores: 2,
            date: "2026-12-05T10:00Z".into(),
        });
        let stored = pytorch::reference("resnet_train").unwrap();
        let rows = json!([live.to_json(), stored.to_json()]);
        let mut report = report_on(here, Some(rows));
        let table = markdown(&report, &WORKLOADS, true);
        // 40 / 20 (live), same machine: no mark.
        assert!(table.contains("| 2.00× live |"), "{table}");
        assert!(
            table.contains("| PyTorch 2.9.1 CPU (live) | 64 | 20.0 "),
            "{table}"
        );
        // The stored row against the live one crosses machines.
        assert!(table.contains("| 4.46×* live |"), "{table}");
        assert!(
            table.contains(
                "PyTorch live: measured in this invocation on this machine by \
                 `benches/pytorch/bench_models.py` (torch 2.9.1+cpu, 2 threads)."
            ),
            "{table}"
        );
        assert!(table.contains("— not this machine"), "{table}");

        annotate_ratios(&mut report, &WORKLOADS);
        let flex = &report["results"][0]["vs_pytorch"];
        assert_eq!(flex["ratio"], 2.0);
        assert_eq!(flex["pytorch_source"], "live");
        assert_eq!(flex["cross_machine"], false);
        assert!(report["results"][2].get("vs_pytorch").is_none());
        assert_eq!(report["pytorch"][1]["source"], "stored");
        assert_eq!(
            report["pytorch"][1]["machine"]["cpu"],
            "AMD EPYC (model not recorded)"
        );
    }

    #[test]
    fn a_stored_ratio_in_the_json_says_it_crosses_machines() {
        let mut report = report_on("Intel(R) Xeon(R) Processor", None);
        annotate_ratios(&mut report, &WORKLOADS);
        let v = &report["results"][0]["vs_pytorch"];
        assert_eq!(v["pytorch_source"], "stored");
        assert_eq!(v["cross_machine"], true);
        assert!((v["ratio"].as_f64().unwrap() - 0.448).abs() < 1e-9, "{v}");
    }

    #[test]
    fn without_compare_there_is_no_pytorch_column() {
        let table = markdown(&report_on("X", None), &WORKLOADS, false);
        assert!(!table.contains("PyTorch"), "{table}");
    }
}
