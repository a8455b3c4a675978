//! Server-side apply, always with the one field manager `tern-operator` and `force`, so the
//! operator owns exactly the fields it renders and takes them back from anyone who edits them.

use std::fmt::Debug;

use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::NamespaceResourceScope;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::context::{Context, Error};
use crate::render::FIELD_MANAGER;

/// The patch parameters of every write the operator makes.
pub fn apply_params() -> PatchParams {
    PatchParams::apply(FIELD_MANAGER).force()
}

/// Applies `object` in its namespace and returns what the server stored.
pub async fn apply<K>(ctx: &Context, object: &K) -> Result<K, Error>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Serialize
        + DeserializeOwned
        + Clone
        + Debug,
{
    let namespace = object.namespace().unwrap_or_default();
    let name = object.name_any();
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &namespace);
    api.patch(&name, &apply_params(), &Patch::Apply(object))
        .await
        .map_err(Error::kube(format!(
            "apply {} {namespace}/{name}",
            K::kind(&())
        )))
}

/// Applies the PodDisruptionBudget under the `policy` version the server serves. The rendered
/// `policy/v1` object is re-labelled with that version; its fields are the same in `v1beta1`.
pub async fn apply_disruption_budget(
    ctx: &Context,
    budget: &PodDisruptionBudget,
) -> Result<(), Error> {
    let namespace = budget.namespace().unwrap_or_default();
    let name = budget.name_any();
    let resource = &ctx.disruption_budget_api;
    let mut value = serde_json::to_value(budget).map_err(|source| Error::Json {
        action: format!("serialize PodDisruptionBudget {namespace}/{name}"),
        source,
    })?;
    value["apiVersion"] = serde_json::Value::from(resource.api_version.as_str());
    let object: DynamicObject = serde_json::from_value(value).map_err(|source| Error::Json {
        action: format!("convert PodDisruptionBudget {namespace}/{name}"),
        source,
    })?;
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), &namespace, resource);
    api.patch(&name, &apply_params(), &Patch::Apply(&object))
        .await
        .map_err(Error::kube(format!(
            "apply PodDisruptionBudget {namespace}/{name}"
        )))?;
    Ok(())
}
