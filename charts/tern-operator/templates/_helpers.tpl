{{/*
Names and labels shared by every template.
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "tern-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Prefix of every object name: fullnameOverride, else "<release>-<name>", shortened to the release
name when that already contains the chart name. Capped so that suffixes ("-leader") still fit
in 63 characters.
*/}}
{{- define "tern-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := include "tern-operator.name" . }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Labels that select the operator pods; never change them in an upgrade. */}}
{{- define "tern-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tern-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels on every object of the release. */}}
{{- define "tern-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "tern-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: tern
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The ServiceAccount the operator runs as. */}}
{{- define "tern-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "tern-operator.fullname" .) .Values.serviceAccount.name }}
{{- else if .Values.serviceAccount.name }}
{{- .Values.serviceAccount.name }}
{{- else }}
{{- fail "serviceAccount.create is false, so serviceAccount.name must name an existing ServiceAccount" }}
{{- end }}
{{- end }}

{{/* The operator image, repository:tag, the tag defaulting to the chart's appVersion. */}}
{{- define "tern-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The image broker pods get when their MqttCluster sets none. */}}
{{- define "tern-operator.brokerImage" -}}
{{- default (include "tern-operator.image" .) .Values.brokerImage }}
{{- end }}

{{/* The leader-election Lease name. */}}
{{- define "tern-operator.leaseName" -}}
{{- default (printf "%s-leader" (include "tern-operator.fullname" .)) .Values.leaderElection.leaseName }}
{{- end }}

{{/*
Whether a Prometheus Operator object is rendered, from its mode (auto, always, never) and the
API versions the cluster serves. Prints "true" or nothing. Call with (list MODE $).
*/}}
{{- define "tern-operator.monitorEnabled" -}}
{{- $mode := index . 0 }}
{{- $root := index . 1 }}
{{- if or (eq $mode "always") (and (eq $mode "auto") ($root.Capabilities.APIVersions.Has "monitoring.coreos.com/v1")) }}true{{- end }}
{{- end }}

{{/*
The namespaced permissions the operator uses, by object it touches. Shared by the ClusterRole
(all namespaces) and the per-namespace Roles (watchNamespaces).
*/}}
{{- define "tern-operator.namespacedRules" -}}
# The two custom resources: watched, finalizers added and removed (patch), status written.
- apiGroups: ["mqtt.tern.dev"]
  resources: ["mqttclusters", "aclpolicies"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["mqtt.tern.dev"]
  resources: ["mqttclusters/status", "aclpolicies/status"]
  verbs: ["get", "patch"]
# Setting blockOwnerDeletion on children needs update on the owner's finalizers.
- apiGroups: ["mqtt.tern.dev"]
  resources: ["mqttclusters/finalizers", "aclpolicies/finalizers"]
  verbs: ["update"]
# The children of an MqttCluster, applied server-side (create + patch; never deleted by the
# operator: owner references let the garbage collector remove them with the cluster): broker
# config (ConfigMap), hashed passwords and keys (Secret; the users' password Secrets are read
# too), client and headless Services, the brokers' ServiceAccount, StatefulSet and
# PodDisruptionBudget.
- apiGroups: [""]
  resources: ["configmaps", "secrets", "services", "serviceaccounts"]
  verbs: ["get", "list", "watch", "create", "patch"]
- apiGroups: ["apps"]
  resources: ["statefulsets"]
  verbs: ["get", "list", "watch", "create", "patch"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["get", "list", "watch", "create", "patch"]
# Broker pods: read for status, and annotated so the kubelet refreshes config volumes at once.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch", "patch"]
# Kubernetes Events about the custom resources.
- apiGroups: ["", "events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}
