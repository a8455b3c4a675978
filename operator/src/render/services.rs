//! The client Service (one port per listener) and the headless Service behind the StatefulSet.

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::names::ClusterNames;
use crate::crd::MqttClusterSpec;

/// The Service clients connect to: one TCP port per listener, named after it.
pub fn client_service(names: &ClusterNames, spec: &MqttClusterSpec) -> Service {
    let mut metadata = names.metadata(names.cluster.clone());
    if !spec.service.annotations.is_empty() {
        metadata.annotations = Some(spec.service.annotations.clone());
    }
    let ports = spec
        .listeners
        .iter()
        .map(|listener| tcp_port(&listener.name, listener.port))
        .collect();
    Service {
        metadata,
        spec: Some(ServiceSpec {
            type_: Some(spec.service.type_.as_str().into()),
            selector: Some(names.selector_labels()),
            ports: Some(ports),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

/// The headless Service that gives each broker pod a stable DNS name. It lists the metrics port
/// and includes pods before they are ready, so a scraper can see a broker that is failing its
/// readiness probe.
pub fn headless_service(names: &ClusterNames, spec: &MqttClusterSpec) -> Service {
    Service {
        metadata: names.metadata(names.headless_service()),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".into()),
            selector: Some(names.selector_labels()),
            publish_not_ready_addresses: Some(true),
            ports: Some(vec![tcp_port("metrics", spec.metrics_port)]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

/// A TCP port forwarding to the same port on the pod. The protocol is spelled out because
/// server-side apply on older API servers (v1.20) needs it: it is part of the list's merge key.
fn tcp_port(name: &str, port: u16) -> ServicePort {
    ServicePort {
        name: Some(name.into()),
        port: i32::from(port),
        target_port: Some(IntOrString::Int(i32::from(port))),
        protocol: Some("TCP".into()),
        ..ServicePort::default()
    }
}
