{{/*
Sharded runs (scan.shards > 1; README "Sharding"): the CronJob's Job becomes an Indexed Job of scan.shards Pods that
split the images, index 0 the only one that takes the run lock and posts to Ephor. Around it the chart makes a
headless Service (the Pods' stable hostnames <job-name>-<index>.<service>), a Secret with the shard token and the
Trivy server's token, the one Trivy server every shard is a client of (with the persistent cache volume), and
optionally a NetworkPolicy. With scan.shards 1 none of this is rendered and the CronJob is exactly the unsharded one.
*/}}

{{/* "true" when runs are sharded (scan.shards > 1). */}}
{{- define "ephor-scanner.sharded" -}}
{{- if gt (include "ephor-scanner.shards" . | int) 1 }}true{{ end -}}
{{- end -}}

{{/* scan.shards as a decimal string (values files give numbers, --set-string gives text). */}}
{{- define "ephor-scanner.shards" -}}
{{- include "ephor-scanner.str" .Values.scan.shards -}}
{{- end -}}

{{/* The shard Pods' fixed label: the headless Service, the NetworkPolicy and the spread select by it, never by
job-name, which changes with every run. */}}
{{- define "ephor-scanner.shardLabels" -}}
{{ include "ephor-scanner.selectorLabels" . }}
app.kubernetes.io/component: scan-shard
{{- end -}}

{{- define "ephor-scanner.trivyServerLabels" -}}
{{ include "ephor-scanner.selectorLabels" . }}
app.kubernetes.io/component: trivy-server
{{- end -}}

{{/* The headless Service that gives each shard Pod its DNS name (the Pod template's subdomain). */}}
{{- define "ephor-scanner.shardService" -}}
{{- include "ephor-scanner.fullname" . }}-shards
{{- end -}}

{{/* The Secret holding shard-token and trivy-server-token: the chart's, or scan.shardSecret.existingSecret. */}}
{{- define "ephor-scanner.shardSecret" -}}
{{- default (printf "%s-shards" (include "ephor-scanner.fullname" .)) .Values.scan.shardSecret.existingSecret -}}
{{- end -}}

{{/* True when the chart runs the Trivy server the shards share (no external trivy.serverUrl). */}}
{{- define "ephor-scanner.ownTrivyServer" -}}
{{- if and (include "ephor-scanner.sharded" .) (not .Values.trivy.serverUrl) }}true{{ end -}}
{{- end -}}

{{/* True when sharded runs have a spool: scan.shardSpool.storageClass names a ReadWriteMany class. */}}
{{- define "ephor-scanner.shardSpool" -}}
{{- if and (include "ephor-scanner.sharded" .) .Values.scan.shardSpool.storageClass }}true{{ end -}}
{{- end -}}

{{/* Where the shard Pods mount the spool claim (SPOOL_DIR); only index 0 writes there. */}}
{{- define "ephor-scanner.shardSpoolDir" -}}
/var/spool/ephor-scanner
{{- end -}}

{{- define "ephor-scanner.trivyServerName" -}}
{{- include "ephor-scanner.fullname" . }}-trivy
{{- end -}}

{{/* TRIVY_SERVER_URL of the shards: the chart's Trivy server Service. */}}
{{- define "ephor-scanner.trivyServerUrl" -}}
{{- printf "http://%s.%s.svc:%s" (include "ephor-scanner.trivyServerName" .) .Release.Namespace (include "ephor-scanner.str" .Values.trivyServer.port) -}}
{{- end -}}

{{/*
Version-gated Indexed Job fields (.Capabilities.KubeVersion: the cluster's at install, --kube-version with helm
template). Each is rendered from the release where its feature gate is on by default, since an API server whose gate
is off drops the field silently (kubernetes/website feature-gates pages): backoffLimitPerIndex beta 1.29 (GA 1.33),
podReplacementPolicy beta 1.29 (GA 1.34), successPolicy beta 1.31 (GA 1.33), and topology spread matchLabelKeys beta
1.27 together with the Job controller's batch.kubernetes.io/controller-uid Pod label (also 1.27).
*/}}
{{- define "ephor-scanner.kubeAtLeast" -}}
{{- if semverCompare (printf ">=%s-0" .version) .root.Capabilities.KubeVersion.Version }}true{{ end -}}
{{- end -}}

{{/*
The Indexed Job's own fields, indented for jobTemplate.spec. backoffLimit is per shard: with backoffLimitPerIndex
each index gets its own retries; on older clusters the Job-wide backoffLimit is scaled by the number of shards.
successPolicy: the run is done when index 0 (the deliverer) succeeded; the other shards are then stopped.
*/}}
{{- define "ephor-scanner.indexedJobSpec" -}}
{{- $n := include "ephor-scanner.shards" . | int64 -}}
completionMode: Indexed
completions: {{ $n }}
parallelism: {{ $n }}
{{- if include "ephor-scanner.kubeAtLeast" (dict "root" . "version" "1.29") }}
backoffLimitPerIndex: {{ int64 .Values.backoffLimit }}
# A replacement Pod starts only once the one it replaces is gone: never two Pods with one index (one hostname).
podReplacementPolicy: Failed
{{- else }}
backoffLimit: {{ mul (int64 .Values.backoffLimit) $n }}
{{- end }}
{{- if include "ephor-scanner.kubeAtLeast" (dict "root" . "version" "1.31") }}
successPolicy:
  rules:
    - succeededIndexes: "0"
{{- end }}
{{- end -}}

{{/* The shard Pod's extra spec fields, indented for the Pod template spec. */}}
{{- define "ephor-scanner.shardPodSpec" -}}
subdomain: {{ include "ephor-scanner.shardService" . }}
# Spread the shards over nodes: each brings its node's CPU, network and disk.
topologySpreadConstraints:
  - maxSkew: 1
    topologyKey: kubernetes.io/hostname
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
        {{- include "ephor-scanner.shardLabels" . | nindent 8 }}
    {{- if include "ephor-scanner.kubeAtLeast" (dict "root" . "version" "1.27") }}
    # Only this run's Pods count, not the finished Pods of earlier runs that the Job history keeps.
    matchLabelKeys:
      - batch.kubernetes.io/controller-uid
    {{- end }}
{{- end -}}

{{/*
The shard container's own variables (CronJob only: the helm test check runs as one process). JOB_NAME comes from the
Pod label job-name, which the Job controller sets on every supported Kubernetes (1.25+); the prefixed
batch.kubernetes.io/job-name exists only from 1.27. $(JOB_NAME) in a later variable is expanded by the kubelet.
*/}}
{{- define "ephor-scanner.shardEnv" -}}
{{- $port := include "ephor-scanner.str" .Values.scan.shardPort -}}
- name: SHARD_COUNT
  value: {{ include "ephor-scanner.shards" . | quote }}
- name: SHARD_LISTEN
  value: {{ printf "0.0.0.0:%s" $port | quote }}
- name: JOB_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.labels['job-name']
- name: SHARD_COORDINATOR_URL
  value: {{ printf "http://$(JOB_NAME)-0.%s:%s" (include "ephor-scanner.shardService" .) $port | quote }}
- name: SHARD_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ include "ephor-scanner.shardSecret" . | quote }}
      key: shard-token
{{- if include "ephor-scanner.shardSpool" . }}
- name: SPOOL_DIR
  value: {{ include "ephor-scanner.shardSpoolDir" . | quote }}
{{- end }}
{{- end -}}

{{/* The chart's Trivy server token for its clients (CronJob and the helm test check). */}}
{{- define "ephor-scanner.trivyServerTokenEnv" -}}
{{- if include "ephor-scanner.ownTrivyServer" . }}
- name: TRIVY_SERVER_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ include "ephor-scanner.shardSecret" . | quote }}
      key: trivy-server-token
{{- end }}
{{- end -}}

{{/*
Sharded values that can never work, one sentence each. The hostname check: a CronJob names each Job
<cronjob>-<minutes since 1970> (11 characters with the dash, kubernetes/kubernetes pkg/controller/cronjob
getJobName), and the Job controller names each Pod's host <job name>-<index>, which must be a DNS label of at most
63 characters.
*/}}
{{- define "ephor-scanner.validate.shards" -}}
{{- include "ephor-scanner.validate.integer" (dict "key" "scan.shards" "value" .Values.scan.shards "min" 1 "max" 100 "what" "scanner Pods per run") -}}
{{- include "ephor-scanner.validate.integer" (dict "key" "scan.shardPort" "value" .Values.scan.shardPort "min" 1024 "max" 65535 "what" "the port index 0 listens on for the other shards; the Pods run as non-root") -}}
{{- include "ephor-scanner.validate.integer" (dict "key" "trivyServer.port" "value" .Values.trivyServer.port "min" 1024 "max" 65535 "what" "the port of the Trivy server the shards share") -}}
{{- if include "ephor-scanner.sharded" . -}}
{{- $n := include "ephor-scanner.shards" . | int -}}
{{- $fullname := include "ephor-scanner.fullname" . -}}
{{- $digits := len (toString (sub $n 1)) -}}
{{- $max := sub 51 $digits -}}
{{- if gt (len $fullname) $max -}}
{{- fail (printf "scan.shards=%d needs a CronJob name of at most %d characters, and %q has %d: each run's Job is named <CronJob name>-<timestamp> (11 characters added) and each shard Pod's hostname <Job name>-<index> must be a DNS label of at most 63 characters, so a manual run (kubectl create job --from=cronjob/%s) needs a Job name of at most %d characters too; install with a shorter release name or set fullnameOverride" $n $max $fullname (len $fullname) $fullname (sub 62 $digits)) -}}
{{- end -}}
{{- if ne (toString .Values.trivy.cacheMode) "server" -}}
{{- fail (printf "scan.shards=%d needs trivy.cacheMode=server (the default), not %q: the shards are clients of one shared Trivy server (the chart's, or trivy.serverUrl), which keeps the layer cache and the vulnerability DB for all of them" $n (toString .Values.trivy.cacheMode)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
