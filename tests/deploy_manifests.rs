//! The Kubernetes manifests as shipped (deploy/kubernetes/), checked offline:
//! every object against the Kubernetes JSON schemas (kubernetes-validate,
//! in the venv tests/run.sh makes at target/test-venv) or, for
//! prometheus-operator's kinds, against deploy/kubernetes/schemas/; each
//! kustomization built and its output checked too
//! (tests/deploy/validate_manifests.py); the PrometheusRule equal to the
//! bundled rule files; the DaemonSet's promises that no schema checks.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_yaml::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn venv_python() -> Option<PathBuf> {
    common::require(
        &repo()
            .join("target/test-venv/bin/python3")
            .to_string_lossy(),
    )
}

fn yaml(path: &Path) -> Value {
    serde_yaml::from_str(&std::fs::read_to_string(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Run the validator on `dirs`: (exit ok, stdout, stderr).
fn validate(python: &Path, dirs: &[&Path]) -> (bool, String, String) {
    let out = Command::new(python)
        .current_dir(repo())
        .arg("tests/deploy/validate_manifests.py")
        .args(dirs)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn every_manifest_validates_against_the_schemas() {
    let Some(python) = venv_python() else { return };
    let (ok, stdout, stderr) = validate(&python, &[Path::new("deploy/kubernetes")]);
    assert!(ok, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let mut kinds: Vec<&str> = report["checked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    kinds.sort();
    kinds.dedup();
    assert_eq!(
        kinds,
        [
            "DaemonSet",
            "Namespace",
            "PodMonitor",
            "PrometheusRule",
            "Secret",
            "Service",
            "ServiceAccount",
            "ServiceMonitor"
        ]
    );
    // Each kustomization builds, with what its README path promises.
    let built = |dir: &str| -> Vec<String> {
        report["builds"][dir]
            .as_array()
            .unwrap_or_else(|| panic!("no build of {dir}: {stdout}"))
            .iter()
            .map(|o| o["kind"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(built("deploy/kubernetes/base").contains(&"DaemonSet".to_string()));
    let operator = built("deploy/kubernetes/prometheus-operator");
    assert!(
        operator.contains(&"ServiceMonitor".to_string()),
        "{operator:?}"
    );
    assert!(
        operator.contains(&"PrometheusRule".to_string()),
        "{operator:?}"
    );
    // The basic-auth overlay's DaemonSet reads the Secret's web config, and
    // its ServiceMonitor scrapes with the Secret's credentials.
    let overlay = report["builds"]["deploy/kubernetes/basic-auth"]
        .as_array()
        .unwrap();
    let ds = overlay.iter().find(|o| o["kind"] == "DaemonSet").unwrap();
    let container = &ds["spec"]["template"]["spec"]["containers"][0];
    assert!(
        container["args"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "--web.config.file=/etc/node-sentinel/web-config.yml"),
        "{container}"
    );
    let sm = overlay
        .iter()
        .find(|o| o["kind"] == "ServiceMonitor")
        .unwrap();
    assert_eq!(
        sm["spec"]["endpoints"][0]["basicAuth"]["password"]["name"],
        "node-sentinel-scrape-auth"
    );
}

#[test]
fn a_wrong_field_fails_validation() {
    let Some(python) = venv_python() else { return };
    let dir = common::TempDir::new("manifests-bad");
    // The same objects with one mistake each: a misspelt core field, a
    // misspelt operator field, a rule that is both alert and record.
    let daemonset = std::fs::read_to_string(repo().join("deploy/kubernetes/base/daemonset.yaml"))
        .unwrap()
        .replace("hostPID: true", "hostPid: true");
    let monitor = std::fs::read_to_string(
        repo().join("deploy/kubernetes/prometheus-operator/servicemonitor.yaml"),
    )
    .unwrap()
    .replace("endpoints:", "endpoint:");
    let rule = "apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata: {name: x}\nspec:\n  groups:\n  - name: g\n    rules:\n    - {alert: A, record: a, expr: up}\n";
    std::fs::write(dir.path().join("daemonset.yaml"), daemonset).unwrap();
    std::fs::write(dir.path().join("servicemonitor.yaml"), monitor).unwrap();
    std::fs::write(dir.path().join("rule.yaml"), rule).unwrap();
    let (ok, _, stderr) = validate(&python, &[dir.path()]);
    assert!(!ok);
    for (file, what) in [
        ("daemonset.yaml", "hostPid"),
        ("servicemonitor.yaml", "endpoint"),
        ("rule.yaml", "PrometheusRule spec/groups/0/rules/0"),
    ] {
        assert!(
            stderr.lines().any(|l| l.contains(file) && l.contains(what)),
            "{file}: {what} not named in\n{stderr}"
        );
    }
}

#[test]
fn the_prometheusrule_is_the_bundled_rules() {
    if common::require("python3").is_none() {
        return;
    }
    let generator = "deploy/kubernetes/prometheus-operator/generate.py";
    let out = Command::new("python3")
        .current_dir(repo())
        .args([generator, "--check"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rule = yaml(&repo().join("deploy/kubernetes/prometheus-operator/prometheusrule.yaml"));
    let mut groups = Vec::new();
    for source in [
        "alerts/node-sentinel.rules.yml",
        "alerts/node-sentinel.recording.yml",
    ] {
        let path = repo().join(source);
        if path.exists() {
            groups.extend(yaml(&path)["groups"].as_sequence().unwrap().clone());
        }
    }
    assert!(!groups.is_empty());
    assert_eq!(rule["spec"]["groups"], Value::Sequence(groups));
    // Prometheus loads what the operator would hand it.
    if let Some(promtool) = common::require("promtool") {
        let dir = common::TempDir::new("prometheusrule");
        let file = dir.path().join("rules.yml");
        std::fs::write(&file, serde_yaml::to_string(&rule["spec"]).unwrap()).unwrap();
        let out = Command::new(promtool)
            .args(["check", "rules"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn the_daemonset_keeps_its_promises() {
    let ds = yaml(&repo().join("deploy/kubernetes/base/daemonset.yaml"));
    let pod = &ds["spec"]["template"]["spec"];
    assert_eq!(pod["hostPID"], true);
    assert_eq!(pod["hostNetwork"], true);
    assert_eq!(pod["priorityClassName"], "system-node-critical");
    assert_eq!(pod["tolerations"][0]["operator"], "Exists");
    let c = &pod["containers"][0];
    // Probes on the paths served without credentials.
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/-/ready");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/-/healthy");
    let sc = &c["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["privileged"], false);
    assert_eq!(
        sc["capabilities"]["drop"],
        serde_yaml::from_str::<Value>("[ALL]").unwrap()
    );
    assert!(c["resources"]["requests"]["memory"].is_string());
    assert!(c["resources"]["limits"]["memory"].is_string());
    // Every mount read-only; every hostPath a directory that any node has
    // (or that is created), never a socket file.
    for m in c["volumeMounts"].as_sequence().unwrap() {
        assert_eq!(m["readOnly"], true, "{m:?}");
    }
    let root = c["volumeMounts"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|m| m["mountPath"] == "/host/root")
        .unwrap();
    assert_eq!(root["mountPropagation"], "HostToContainer");
    for v in pod["volumes"].as_sequence().unwrap() {
        let kind = v["hostPath"]["type"].as_str().unwrap_or("");
        assert!(["Directory", "DirectoryOrCreate"].contains(&kind), "{v:?}");
    }
}

#[test]
fn a_kustomization_kustomize_would_refuse_fails() {
    let Some(python) = venv_python() else { return };
    let dir = common::TempDir::new("manifests-kustomize");
    // An overlay whose base is its own parent (kustomize: cycle detected),
    // and one that names a file outside its root.
    let overlay = dir.path().join("overlay");
    std::fs::create_dir_all(&overlay).unwrap();
    let k = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n";
    std::fs::write(
        dir.path().join("kustomization.yaml"),
        format!("{k}resources: []\n"),
    )
    .unwrap();
    std::fs::write(
        overlay.join("kustomization.yaml"),
        format!("{k}resources:\n  - ..\n  - ../elsewhere.yaml\n"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("elsewhere.yaml"),
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n",
    )
    .unwrap();
    let (ok, _, stderr) = validate(&python, &[dir.path()]);
    assert!(!ok);
    assert!(stderr.contains("cycle detected"), "{stderr}");
    assert!(
        stderr.contains("outside the kustomization's root"),
        "{stderr}"
    );
}
