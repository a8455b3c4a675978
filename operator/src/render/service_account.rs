//! The brokers' ServiceAccount. Brokers never call the Kubernetes API, so it has no roles and
//! its token is not mounted.

use k8s_openapi::api::core::v1::ServiceAccount;

use super::names::ClusterNames;

/// The ServiceAccount, named like the cluster.
pub fn service_account(names: &ClusterNames) -> ServiceAccount {
    ServiceAccount {
        metadata: names.metadata(names.cluster.clone()),
        automount_service_account_token: Some(false),
        ..ServiceAccount::default()
    }
}
