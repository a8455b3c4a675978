//! The PodDisruptionBudget: node drains take down at most one broker at a time.
//!
//! Rendered as `policy/v1`, the only version k8s-openapi 0.29 has types for. The spec fields
//! used here (`maxUnavailable`, `selector`) are identical in `policy/v1beta1`, so the controller
//! applies the same object under whichever of the two versions the API server serves (v1.20
//! serves only `v1beta1`; v1.25+ only `v1`).

use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::names::ClusterNames;

/// The PodDisruptionBudget, named like the cluster.
pub fn disruption_budget(names: &ClusterNames) -> PodDisruptionBudget {
    PodDisruptionBudget {
        metadata: names.metadata(names.cluster.clone()),
        spec: Some(PodDisruptionBudgetSpec {
            // `maxUnavailable` rather than `minAvailable: 1`, which would block every drain of
            // a single-broker cluster's node forever.
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector {
                match_labels: Some(names.selector_labels()),
                ..LabelSelector::default()
            }),
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    }
}
