{{/*
RBAC: which rules the scanner's ServiceAccount gets, and where. Least privilege: read-only everywhere, the only write
is on the run lock's one Lease, and nothing cluster-wide that the configuration does not need.

  Role <fullname> in each namespace of an explicit scan.namespaces: read the workloads and their Pods, and (with
  registryAuth.enabled) get secrets and serviceaccounts, in the scanned namespaces only.
  ClusterRole <fullname>, only with rbac.scope=cluster (nodes also with rbac.nodes=true): with scan.namespaces "*"
  the same read rules in every namespace plus list on namespaces; with a selector list on namespaces; list on nodes.
  Role <fullname>-run-lock in the lock's namespace: get and update on the Lease runLock.name, create on leases.
*/}}

{{/* Read the workloads and attribute their running Pods: granted where the scanner scans. */}}
{{- define "ephor-scanner.rbac.readRules" -}}
- apiGroups: ["apps"]
  resources: ["deployments", "statefulsets", "daemonsets"]
  verbs: ["get", "list"]
- apiGroups: ["batch"]
  resources: ["cronjobs"]
  verbs: ["get", "list"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list"]
{{- /* Listed metadata-only to follow Pod -> ReplicaSet -> Deployment and Pod -> Job -> CronJob */}}
- apiGroups: ["apps"]
  resources: ["replicasets"]
  verbs: ["list"]
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["list"]
{{- if eq (include "ephor-scanner.bool" .Values.registryAuth.enabled) "true" }}
{{- /* The Pods' and ServiceAccounts' imagePullSecrets, read by name to pull private images */}}
- apiGroups: [""]
  resources: ["secrets", "serviceaccounts"]
  verbs: ["get"]
{{- end }}
{{- end -}}

{{/* "true" when the scanner reads node labels (kubernetes.io/os, kubernetes.io/arch) to scan for each Pod's platform. */}}
{{- define "ephor-scanner.rbac.listsNodes" -}}
{{- $nodes := .Values.rbac.nodes -}}
{{- if kindIs "invalid" $nodes -}}
{{- if eq .Values.rbac.scope "cluster" }}true{{ end -}}
{{- else if $nodes -}}
true
{{- end -}}
{{- end -}}

{{/* The ClusterRole's rules; empty when nothing cluster-wide is needed. */}}
{{- define "ephor-scanner.rbac.clusterRules" -}}
{{- $all := eq (include "ephor-scanner.namespaces" .) "*" -}}
{{- if and (eq .Values.rbac.scope "cluster") $all }}
{{ include "ephor-scanner.rbac.readRules" . }}
{{- end }}
{{- if and (eq .Values.rbac.scope "cluster") (include "ephor-scanner.listsNamespaces" .) }}
{{- /* "*" or a selector makes the scanner list the namespaces themselves; only then is this rule granted */}}
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["list"]
{{- end }}
{{- if include "ephor-scanner.rbac.listsNodes" . }}
{{- /* Node labels give each Pod's platform (os/arch), so that multi-arch images are scanned for the right one */}}
- apiGroups: [""]
  resources: ["nodes"]
  verbs: ["list"]
{{- end }}
{{- end -}}

{{/* The namespaces that get a Role with the read rules: the explicit scan.namespaces, none for "*". */}}
{{- define "ephor-scanner.rbac.roleNamespaces" -}}
{{- $ns := include "ephor-scanner.namespaces" . -}}
{{- if ne $ns "*" }}{{ $ns }}{{ end -}}
{{- end -}}

{{/* The run lock's Lease name (RUN_LOCK_NAME). */}}
{{- define "ephor-scanner.runLock.name" -}}
{{- .Values.runLock.name | toString | trim -}}
{{- end -}}

{{/* The run lock's namespace (RUN_LOCK_NAMESPACE): runLock.namespace, else the release namespace. */}}
{{- define "ephor-scanner.runLock.namespace" -}}
{{- default .Release.Namespace (.Values.runLock.namespace | toString | trim) -}}
{{- end -}}

{{/*
The run lock: get and update on its one Lease (by name), and create, which RBAC cannot restrict by name (the name
is only in the request body). No delete, list or watch: the scanner releases the lock by updating it.
*/}}
{{- define "ephor-scanner.rbac.leaseRules" -}}
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  resourceNames: [{{ include "ephor-scanner.runLock.name" . | quote }}]
  verbs: ["get", "update"]
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  verbs: ["create"]
{{- end -}}

{{/* A RoleBinding or ClusterRoleBinding subject list: the scanner's ServiceAccount. */}}
{{- define "ephor-scanner.rbac.subjects" -}}
- kind: ServiceAccount
  name: {{ include "ephor-scanner.serviceAccountName" . }}
  namespace: {{ .Release.Namespace }}
{{- end -}}
