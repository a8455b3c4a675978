//! Kubernetes-style status conditions, updated so that `lastTransitionTime` only moves when a
//! condition's status actually changes.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

/// The new state of one condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionUpdate {
    /// Condition type, e.g. `Ready`.
    pub type_: &'static str,
    /// Whether the condition holds.
    pub status: bool,
    /// A CamelCase reason, for machines.
    pub reason: &'static str,
    /// A sentence, for people.
    pub message: String,
}

impl ConditionUpdate {
    /// A condition that holds.
    pub fn holds(type_: &'static str, reason: &'static str, message: impl Into<String>) -> Self {
        ConditionUpdate {
            type_,
            status: true,
            reason,
            message: message.into(),
        }
    }

    /// A condition that does not hold.
    pub fn fails(type_: &'static str, reason: &'static str, message: impl Into<String>) -> Self {
        ConditionUpdate {
            type_,
            status: false,
            reason,
            message: message.into(),
        }
    }
}

/// Writes `update` into `conditions` for `generation`. The transition time is `now` for a new
/// condition or a changed status and is kept otherwise, as Kubernetes conventions require.
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    update: ConditionUpdate,
    generation: Option<i64>,
    now: Timestamp,
) {
    let status = if update.status { "True" } else { "False" }.to_string();
    let existing = conditions.iter_mut().find(|c| c.type_ == update.type_);
    let last_transition_time = match &existing {
        Some(previous) if previous.status == status => previous.last_transition_time.clone(),
        _ => Time(now),
    };
    let condition = Condition {
        type_: update.type_.to_string(),
        status,
        reason: update.reason.to_string(),
        message: update.message,
        observed_generation: generation,
        last_transition_time,
    };
    match existing {
        Some(slot) => *slot = condition,
        None => conditions.push(condition),
    }
}

/// The status (`"True"`/`"False"`) of the condition of type `type_`, if present.
pub fn condition_status<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a str> {
    conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| c.status.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    #[test]
    fn a_new_condition_transitions_now() {
        let mut conditions = Vec::new();
        set_condition(
            &mut conditions,
            ConditionUpdate::holds("Ready", "Available", "ok"),
            Some(1),
            at(100),
        );
        assert_eq!(conditions[0].last_transition_time, Time(at(100)));
    }

    #[test]
    fn an_unchanged_status_keeps_its_transition_time_but_updates_the_message() {
        let mut conditions = Vec::new();
        set_condition(
            &mut conditions,
            ConditionUpdate::holds("Ready", "Available", "one"),
            Some(1),
            at(100),
        );
        set_condition(
            &mut conditions,
            ConditionUpdate::holds("Ready", "Available", "two"),
            Some(2),
            at(200),
        );
        assert_eq!(
            (
                conditions.len(),
                &conditions[0].last_transition_time,
                conditions[0].message.as_str(),
                conditions[0].observed_generation
            ),
            (1, &Time(at(100)), "two", Some(2))
        );
    }

    #[test]
    fn a_changed_status_moves_the_transition_time() {
        let mut conditions = Vec::new();
        set_condition(
            &mut conditions,
            ConditionUpdate::holds("Ready", "Available", "up"),
            Some(1),
            at(100),
        );
        set_condition(
            &mut conditions,
            ConditionUpdate::fails("Ready", "PodsNotReady", "down"),
            Some(1),
            at(200),
        );
        assert_eq!(conditions[0].last_transition_time, Time(at(200)));
    }

    #[test]
    fn condition_status_reads_by_type() {
        let mut conditions = Vec::new();
        set_condition(
            &mut conditions,
            ConditionUpdate::fails("Degraded", "None", ""),
            None,
            at(1),
        );
        assert_eq!(condition_status(&conditions, "Degraded"), Some("False"));
    }
}
