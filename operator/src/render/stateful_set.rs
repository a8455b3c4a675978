//! The StatefulSet running the brokers.
//!
//! The pod template depends only on what genuinely needs a new process — image, resources,
//! scheduling, pod labels/annotations and the metrics port (the probes use it). Listeners,
//! users, JWT keys, TLS material and ACLs reach the pods through the configuration volume, so
//! changing them never rolls the StatefulSet; there is deliberately no configuration hash here.

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapProjection, Container, ContainerPort, EmptyDirVolumeSource,
    HTTPGetAction, PodSecurityContext, PodSpec, PodTemplateSpec, Probe, ProjectedVolumeSource,
    SeccompProfile, SecretProjection, SecurityContext, Volume, VolumeMount, VolumeProjection,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::broker_config::BROKER_REPLICA_LIMIT;
use super::names::ClusterNames;
use super::CONFIG_DIR;
use crate::crd::MqttClusterSpec;

/// The user and group of the broker image (distroless `nonroot`).
const BROKER_UID: i64 = 65532;
const CONFIG_VOLUME: &str = "config";
const TMP_VOLUME: &str = "tmp";
const METRICS_PORT_NAME: &str = "metrics";

/// The StatefulSet, named like the cluster. `replicas` above [`BROKER_REPLICA_LIMIT`] are
/// capped (and reported by the controller), never run as isolated brokers.
pub fn stateful_set(
    names: &ClusterNames,
    spec: &MqttClusterSpec,
    default_image: &str,
) -> StatefulSet {
    StatefulSet {
        metadata: names.metadata(names.cluster.clone()),
        spec: Some(StatefulSetSpec {
            replicas: Some(spec.replicas.clamp(0, BROKER_REPLICA_LIMIT)),
            service_name: Some(names.headless_service()),
            selector: LabelSelector {
                match_labels: Some(names.selector_labels()),
                ..LabelSelector::default()
            },
            template: pod_template(names, spec, default_image),
            ..StatefulSetSpec::default()
        }),
        ..StatefulSet::default()
    }
}

fn pod_template(
    names: &ClusterNames,
    spec: &MqttClusterSpec,
    default_image: &str,
) -> PodTemplateSpec {
    // User labels first, so they can never override the selector labels.
    let mut labels = spec.pod_labels.clone();
    labels.extend(names.labels());
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(labels),
            annotations: (!spec.pod_annotations.is_empty()).then(|| spec.pod_annotations.clone()),
            ..ObjectMeta::default()
        }),
        spec: Some(PodSpec {
            service_account_name: Some(names.cluster.clone()),
            automount_service_account_token: Some(false),
            enable_service_links: Some(false),
            security_context: Some(PodSecurityContext {
                run_as_non_root: Some(true),
                run_as_user: Some(BROKER_UID),
                run_as_group: Some(BROKER_UID),
                fs_group: Some(BROKER_UID),
                seccomp_profile: Some(SeccompProfile {
                    type_: "RuntimeDefault".into(),
                    ..SeccompProfile::default()
                }),
                ..PodSecurityContext::default()
            }),
            containers: vec![broker_container(spec, default_image)],
            volumes: Some(vec![config_volume(names), tmp_volume()]),
            node_selector: (!spec.node_selector.is_empty()).then(|| spec.node_selector.clone()),
            tolerations: (!spec.tolerations.is_empty()).then(|| spec.tolerations.clone()),
            affinity: spec.affinity.clone(),
            ..PodSpec::default()
        }),
    }
}

fn broker_container(spec: &MqttClusterSpec, default_image: &str) -> Container {
    Container {
        name: "broker".into(),
        image: Some(
            spec.image
                .clone()
                .unwrap_or_else(|| default_image.to_string()),
        ),
        args: Some(vec!["--config".into(), CONFIG_DIR.into()]),
        // Only the metrics port is declared: listener ports live in the configuration, and
        // declaring them here would restart the broker whenever a listener changes. Services
        // target them by number, which needs no declaration.
        ports: Some(vec![ContainerPort {
            name: Some(METRICS_PORT_NAME.into()),
            container_port: i32::from(spec.metrics_port),
            protocol: Some("TCP".into()),
            ..ContainerPort::default()
        }]),
        liveness_probe: Some(http_probe("/healthz", 10, 3)),
        readiness_probe: Some(http_probe("/readyz", 5, 1)),
        resources: spec.resources.clone(),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                ..Capabilities::default()
            }),
            ..SecurityContext::default()
        }),
        // Whole directories, never `subPath`: the kubelet does not update subPath mounts.
        volume_mounts: Some(vec![
            VolumeMount {
                name: CONFIG_VOLUME.into(),
                mount_path: CONFIG_DIR.into(),
                read_only: Some(true),
                ..VolumeMount::default()
            },
            VolumeMount {
                name: TMP_VOLUME.into(),
                mount_path: "/tmp".into(),
                ..VolumeMount::default()
            },
        ]),
        ..Container::default()
    }
}

fn http_probe(path: &str, period_seconds: i32, failure_threshold: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String(METRICS_PORT_NAME.into()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period_seconds),
        failure_threshold: Some(failure_threshold),
        ..Probe::default()
    }
}

/// One projected volume holding the ConfigMap's and the Secret's files side by side, so the
/// kubelet swaps both in a single atomic `..data` rename. No `items`: which files exist is up to
/// the two objects, not the pod template.
fn config_volume(names: &ClusterNames) -> Volume {
    Volume {
        name: CONFIG_VOLUME.into(),
        projected: Some(ProjectedVolumeSource {
            // Readable by the broker's group (fsGroup), by no one else.
            default_mode: Some(0o440),
            sources: Some(vec![
                VolumeProjection {
                    config_map: Some(ConfigMapProjection {
                        name: names.config_map(),
                        ..ConfigMapProjection::default()
                    }),
                    ..VolumeProjection::default()
                },
                VolumeProjection {
                    secret: Some(SecretProjection {
                        name: names.secret(),
                        ..SecretProjection::default()
                    }),
                    ..VolumeProjection::default()
                },
            ]),
        }),
        ..Volume::default()
    }
}

fn tmp_volume() -> Volume {
    Volume {
        name: TMP_VOLUME.into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    }
}
