//! Deciding an `MqttCluster`'s conditions from what was observed. Pure, so every combination is
//! unit-tested without an API server.

use crate::crd::ConditionUpdate;
use crate::render::BROKER_REPLICA_LIMIT;

/// What the reconciler saw, reduced to what the conditions depend on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterObservation {
    /// `spec.replicas`.
    pub requested_replicas: i32,
    /// Why the spec could not be rendered (reason, message), if it could not.
    pub spec_problem: Option<(&'static str, String)>,
    /// The StatefulSet's rollout.
    pub rollout: RolloutState,
    /// Broker pods not yet signalled the current configuration revision, or reporting that
    /// they run another one.
    pub pods_behind_config: usize,
}

/// The StatefulSet's progress, from its status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RolloutState {
    /// Pods that exist.
    pub replicas: i32,
    /// Pods passing their readiness probe.
    pub ready_replicas: i32,
    /// Pods running the current pod template.
    pub updated_replicas: i32,
    /// Whether the StatefulSet controller has seen the latest StatefulSet spec.
    pub spec_observed: bool,
}

/// Condition types of an `MqttCluster`.
pub mod types {
    /// All desired brokers are ready.
    pub const READY: &str = "Ready";
    /// A rollout or configuration change is under way.
    pub const PROGRESSING: &str = "Progressing";
    /// The spec cannot be honoured as written.
    pub const DEGRADED: &str = "Degraded";
}

/// The `Ready`, `Progressing` and `Degraded` conditions for `seen`.
pub fn cluster_conditions(seen: &ClusterObservation) -> [ConditionUpdate; 3] {
    let desired = seen.requested_replicas.clamp(0, BROKER_REPLICA_LIMIT);
    [
        ready(seen, desired),
        progressing(seen, desired),
        degraded(seen),
    ]
}

fn ready(seen: &ClusterObservation, desired: i32) -> ConditionUpdate {
    let rollout = &seen.rollout;
    if desired == 0 {
        return ConditionUpdate::fails(types::READY, "ScaledToZero", "spec.replicas is 0");
    }
    if rollout.ready_replicas >= desired {
        ConditionUpdate::holds(
            types::READY,
            "BrokersReady",
            format!("{}/{desired} brokers ready", rollout.ready_replicas),
        )
    } else {
        ConditionUpdate::fails(
            types::READY,
            "BrokersNotReady",
            format!("{}/{desired} brokers ready", rollout.ready_replicas),
        )
    }
}

fn progressing(seen: &ClusterObservation, desired: i32) -> ConditionUpdate {
    let rollout = &seen.rollout;
    if !rollout.spec_observed || rollout.updated_replicas < desired || rollout.replicas != desired {
        return ConditionUpdate::holds(
            types::PROGRESSING,
            "RollingOut",
            format!(
                "{}/{desired} brokers run the current pod template",
                rollout.updated_replicas.min(desired)
            ),
        );
    }
    if seen.pods_behind_config > 0 {
        return ConditionUpdate::holds(
            types::PROGRESSING,
            "ConfigPropagating",
            format!(
                "{} broker(s) not yet running the new configuration",
                seen.pods_behind_config
            ),
        );
    }
    ConditionUpdate::fails(
        types::PROGRESSING,
        "Complete",
        "every broker runs the current pod template and configuration",
    )
}

fn degraded(seen: &ClusterObservation) -> ConditionUpdate {
    if let Some((reason, message)) = &seen.spec_problem {
        return ConditionUpdate::holds(types::DEGRADED, reason, message.clone());
    }
    if seen.requested_replicas > BROKER_REPLICA_LIMIT {
        return ConditionUpdate::holds(
            types::DEGRADED,
            "ReplicasUnsupported",
            format!(
                "spec.replicas {} refused: brokers do not form a cluster yet, so at most \
                 {BROKER_REPLICA_LIMIT} runs (isolated brokers would each see only some clients)",
                seen.requested_replicas
            ),
        );
    }
    ConditionUpdate::fails(
        types::DEGRADED,
        "AsExpected",
        "the spec is applied as written",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settled(replicas: i32) -> ClusterObservation {
        ClusterObservation {
            requested_replicas: replicas,
            spec_problem: None,
            rollout: RolloutState {
                replicas: replicas.min(1),
                ready_replicas: replicas.min(1),
                updated_replicas: replicas.min(1),
                spec_observed: true,
            },
            pods_behind_config: 0,
        }
    }

    fn find(conditions: &[ConditionUpdate; 3], type_: &str) -> (bool, &'static str) {
        conditions
            .iter()
            .find(|c| c.type_ == type_)
            .map(|c| (c.status, c.reason))
            .unwrap_or((false, "missing"))
    }

    #[test]
    fn a_settled_cluster_is_ready_not_progressing_not_degraded() {
        let conditions = cluster_conditions(&settled(1));
        assert_eq!(
            [
                find(&conditions, types::READY),
                find(&conditions, types::PROGRESSING),
                find(&conditions, types::DEGRADED)
            ],
            [
                (true, "BrokersReady"),
                (false, "Complete"),
                (false, "AsExpected")
            ]
        );
    }

    #[test]
    fn more_than_one_replica_is_degraded_with_a_clear_reason() {
        let conditions = cluster_conditions(&settled(3));
        assert_eq!(
            find(&conditions, types::DEGRADED),
            (true, "ReplicasUnsupported")
        );
    }

    #[test]
    fn more_than_one_replica_still_reports_the_one_broker_ready() {
        let conditions = cluster_conditions(&settled(3));
        assert_eq!(find(&conditions, types::READY), (true, "BrokersReady"));
    }

    #[test]
    fn a_spec_problem_is_degraded_with_its_reason() {
        let mut seen = settled(1);
        seen.spec_problem = Some(("SecretUnavailable", "Secret `x` does not exist".into()));
        assert_eq!(
            find(&cluster_conditions(&seen), types::DEGRADED),
            (true, "SecretUnavailable")
        );
    }

    #[test]
    fn an_unready_broker_is_not_ready() {
        let mut seen = settled(1);
        seen.rollout.ready_replicas = 0;
        assert_eq!(
            find(&cluster_conditions(&seen), types::READY),
            (false, "BrokersNotReady")
        );
    }

    #[test]
    fn a_pod_template_rollout_is_progressing() {
        let mut seen = settled(1);
        seen.rollout.updated_replicas = 0;
        assert_eq!(
            find(&cluster_conditions(&seen), types::PROGRESSING),
            (true, "RollingOut")
        );
    }

    #[test]
    fn a_configuration_not_yet_signalled_is_progressing() {
        let mut seen = settled(1);
        seen.pods_behind_config = 1;
        assert_eq!(
            find(&cluster_conditions(&seen), types::PROGRESSING),
            (true, "ConfigPropagating")
        );
    }

    #[test]
    fn zero_replicas_is_not_ready_but_complete() {
        let seen = settled(0);
        let conditions = cluster_conditions(&seen);
        assert_eq!(
            [
                find(&conditions, types::READY),
                find(&conditions, types::PROGRESSING)
            ],
            [(false, "ScaledToZero"), (false, "Complete")]
        );
    }
}
