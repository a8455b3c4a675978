//! The test control plane is a real Kubernetes API server: custom resources round-trip through
//! it, the admin kubeconfig may do anything, and with kube-controller-manager running, objects
//! whose owner is deleted are garbage-collected.
//!
//! These tests need the binaries from `scripts/kube-test-env.sh` (or `$TERN_KUBE_ASSETS`) and
//! fail, saying so, without them.

use std::time::{Duration, Instant};

use tern_e2e::control_plane::{ControlPlane, ControlPlaneOptions};

/// How long the garbage collector may take to delete an orphaned dependent.
const GARBAGE_COLLECTION_TIMEOUT: Duration = Duration::from_secs(60);

const GADGET_CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.example.tern.dev
spec:
  group: example.tern.dev
  scope: Namespaced
  names: { plural: gadgets, singular: gadget, kind: Gadget }
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                size: { type: integer, minimum: 1 }
"#;

const GADGET: &str = r#"
apiVersion: example.tern.dev/v1
kind: Gadget
metadata: { name: sprocket, namespace: default }
spec: { size: 3 }
"#;

/// Runs kubectl, fails the test with its stderr unless it succeeds, and returns its stdout.
fn kubectl_ok(cluster: &ControlPlane, args: &[&str], stdin: &str) -> String {
    let output = cluster
        .kubectl_with_stdin(args, stdin)
        .unwrap_or_else(|error| panic!("{error:#}"));
    assert!(
        output.status.success(),
        "kubectl {} failed ({}): {}\n{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr),
        cluster.log_tails()
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn custom_object_round_trips_through_an_applied_crd() -> anyhow::Result<()> {
    let cluster = ControlPlane::start(ControlPlaneOptions::default())?;
    kubectl_ok(&cluster, &["apply", "-f", "-"], GADGET_CRD);
    cluster.wait_established(&["gadgets.example.tern.dev"])?;

    kubectl_ok(&cluster, &["apply", "-f", "-"], GADGET);

    let size = kubectl_ok(
        &cluster,
        &["get", "gadget", "sprocket", "-o", "jsonpath={.spec.size}"],
        "",
    );
    assert_eq!(size, "3");
    Ok(())
}

#[test]
fn crd_schema_rejects_an_invalid_custom_object() -> anyhow::Result<()> {
    let cluster = ControlPlane::start(ControlPlaneOptions::default())?;
    kubectl_ok(&cluster, &["apply", "-f", "-"], GADGET_CRD);
    cluster.wait_established(&["gadgets.example.tern.dev"])?;

    let output =
        cluster.kubectl_with_stdin(&["apply", "-f", "-"], &GADGET.replace("size: 3", "size: 0"))?;

    assert!(
        !output.status.success() && String::from_utf8_lossy(&output.stderr).contains("spec.size"),
        "size 0 is below the schema's minimum; kubectl said: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

#[test]
fn admin_kubeconfig_may_do_anything() -> anyhow::Result<()> {
    let cluster = ControlPlane::start(ControlPlaneOptions::default())?;

    let answer = kubectl_ok(
        &cluster,
        &["auth", "can-i", "*", "*", "--all-namespaces"],
        "",
    );

    assert_eq!(answer.trim(), "yes");
    Ok(())
}

#[test]
fn owned_config_map_is_garbage_collected_after_its_owner_is_deleted() -> anyhow::Result<()> {
    let cluster = ControlPlane::start(ControlPlaneOptions {
        controller_manager: true,
    })?;
    kubectl_ok(
        &cluster,
        &["create", "configmap", "owner", "--from-literal=role=owner"],
        "",
    );
    let owner_uid = kubectl_ok(
        &cluster,
        &[
            "get",
            "configmap",
            "owner",
            "-o",
            "jsonpath={.metadata.uid}",
        ],
        "",
    );
    let dependent = format!(
        r#"
apiVersion: v1
kind: ConfigMap
metadata:
  name: dependent
  namespace: default
  ownerReferences:
    - {{ apiVersion: v1, kind: ConfigMap, name: owner, uid: "{owner_uid}" }}
data: {{ role: dependent }}
"#
    );
    kubectl_ok(&cluster, &["apply", "-f", "-"], &dependent);

    kubectl_ok(&cluster, &["delete", "configmap", "owner"], "");

    let deadline = Instant::now() + GARBAGE_COLLECTION_TIMEOUT;
    loop {
        let output = cluster.kubectl(&["get", "configmap", "dependent", "--ignore-not-found"])?;
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        if output.stdout.is_empty() {
            return Ok(());
        }
        assert!(
            Instant::now() < deadline,
            "dependent ConfigMap still exists {GARBAGE_COLLECTION_TIMEOUT:?} after its owner \
             was deleted; logs:\n{}",
            cluster.log_tails()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}
