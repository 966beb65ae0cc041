{{/* Chart name, 63 characters at most. */}}
{{- define "ephor-scanner.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Full name: fullnameOverride, else the release name when it already contains the chart name
(release "ephor-scanner" -> "ephor-scanner"), else "<release>-<chart>".
Kept to 52 characters: the longest a CronJob name may be (its Jobs append a suffix).
*/}}
{{- define "ephor-scanner.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "ephor-scanner.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "ephor-scanner.imageTag" -}}
{{- default .Chart.AppVersion (toString .Values.image.tag) -}}
{{- end -}}

{{- define "ephor-scanner.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ephor-scanner.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "ephor-scanner.labels" -}}
helm.sh/chart: {{ include "ephor-scanner.chart" . }}
{{ include "ephor-scanner.selectorLabels" . }}
app.kubernetes.io/version: {{ include "ephor-scanner.imageTag" . | trunc 63 | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "ephor-scanner.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "ephor-scanner.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
A list value or a comma string -> "a,b,c": items trimmed, empty items dropped.
Used for scan.namespaces, scan.excludeNamespaces, scan.severity, scan.workloadTypes, trivy.dbRepo, trivy.javaDbRepo.
*/}}
{{- define "ephor-scanner.csv" -}}
{{- $items := list -}}
{{- if kindIs "slice" . -}}
{{- range . }}{{ $items = append $items (toString . | trim) }}{{ end -}}
{{- else if not (kindIs "invalid" .) -}}
{{- range (splitList "," (toString .)) }}{{ $items = append $items (trim .) }}{{ end -}}
{{- end -}}
{{- $items | compact | join "," -}}
{{- end -}}

{{/* "true" for true, "true", "True", "TRUE"; "false" otherwise (the schema admits only those spellings). */}}
{{- define "ephor-scanner.bool" -}}
{{- if eq (lower (toString .)) "true" }}true{{ else }}false{{ end -}}
{{- end -}}

{{/* A number given as int, float (values files) or string -> its decimal string. */}}
{{- define "ephor-scanner.str" -}}
{{- if or (kindIs "float64" .) (kindIs "int64" .) (kindIs "int" .) -}}
{{- int64 . -}}
{{- else -}}
{{- toString . | trim -}}
{{- end -}}
{{- end -}}

{{- define "ephor-scanner.namespaces" -}}
{{- include "ephor-scanner.csv" .Values.scan.namespaces | splitList "," | uniq | join "," -}}
{{- end -}}

{{- define "ephor-scanner.excludeNamespaces" -}}
{{- include "ephor-scanner.csv" .Values.scan.excludeNamespaces | splitList "," | uniq | join "," -}}
{{- end -}}

{{- define "ephor-scanner.namespaceSelector" -}}
{{- with .Values.scan.namespaceSelector }}{{ trim . }}{{ end -}}
{{- end -}}

{{/* True when the scanner lists the namespaces themselves: scan.namespaces "*" or a namespace selector. */}}
{{- define "ephor-scanner.listsNamespaces" -}}
{{- if or (eq (include "ephor-scanner.namespaces" .) "*") (include "ephor-scanner.namespaceSelector" .) -}}
true
{{- end -}}
{{- end -}}

{{/*
SCAN_DEADLINE: activeDeadlineSeconds minus scan.deadlineMargin, as "<seconds>s" (at most 24h, the scanner's limit).
Empty when activeDeadlineSeconds is not set; a template failure when it does not exceed the margin.
*/}}
{{- define "ephor-scanner.scanDeadline" -}}
{{- if not (kindIs "invalid" .Values.activeDeadlineSeconds) -}}
{{- $active := int64 .Values.activeDeadlineSeconds -}}
{{- $margin := int64 (include "ephor-scanner.str" .Values.scan.deadlineMargin) -}}
{{- if le $active $margin -}}
{{- fail (printf "activeDeadlineSeconds (%d) must be larger than scan.deadlineMargin (%d): the scanner stops starting scans scan.deadlineMargin seconds before the Job's deadline so that it can deliver what is done; raise activeDeadlineSeconds or lower scan.deadlineMargin" $active $margin) -}}
{{- end -}}
{{- $seconds := sub $active $margin -}}
{{- if gt $seconds 86400 }}{{ $seconds = 86400 }}{{ end -}}
{{- printf "%ds" $seconds -}}
{{- end -}}
{{- end -}}

{{/* True when the chart's own Secret has at least one key. */}}
{{- define "ephor-scanner.hasSecret" -}}
{{- if or .Values.ephor.authHeader (and (not .Values.ephor.existingSecret) .Values.ephor.authValue) (and (eq .Values.trivy.cacheMode "redis") .Values.trivy.cacheBackend) .Values.trivy.serverToken -}}
true
{{- end -}}
{{- end -}}

{{/* emptyDir source from a dict with optional medium and sizeLimit; "{}" when both are empty. */}}
{{- define "ephor-scanner.emptyDir" -}}
{{- $src := dict -}}
{{- with .medium }}{{ $_ := set $src "medium" (toString .) }}{{ end -}}
{{- with .sizeLimit }}{{ $_ := set $src "sizeLimit" (toString .) }}{{ end -}}
{{- toYaml $src -}}
{{- end -}}

{{/*
The scanner container's environment, shared by the CronJob and the Helm test hook (`helm test`), so that the
preflight check sees exactly what a scan run sees: the ConfigMap, the Secret, the existing Secret's keys, extraEnv.
*/}}
{{- define "ephor-scanner.containerEnv" -}}
{{- $fullname := include "ephor-scanner.fullname" . -}}
envFrom:
  - configMapRef:
      name: {{ $fullname }}
  {{- if include "ephor-scanner.hasSecret" . }}
  - secretRef:
      name: {{ $fullname }}
  {{- end }}
env:
  # The root filesystem is read-only: temp files (Trivy's layers) and anything written
  # to $HOME go to the /tmp emptyDir.
  - name: TMPDIR
    value: /tmp
  - name: HOME
    value: /tmp
  {{- with .Values.ephor.existingSecret }}
  {{- if not $.Values.ephor.authHeader }}
  - name: EPHOR_AUTH_HEADER
    valueFrom:
      secretKeyRef:
        name: {{ . | quote }}
        key: {{ $.Values.ephor.existingSecretKeys.authHeader | quote }}
  {{- end }}
  - name: EPHOR_AUTH_VALUE
    valueFrom:
      secretKeyRef:
        name: {{ . | quote }}
        key: {{ $.Values.ephor.existingSecretKeys.authValue | quote }}
  {{- end }}
  {{- with include "ephor-scanner.trivyServerTokenEnv" . | trim }}
  {{- . | nindent 2 }}
  {{- end }}
  {{- with .Values.extraEnv }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end -}}

{{/* The scanner container's volume mounts (CronJob and test hook). */}}
{{- define "ephor-scanner.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
- name: trivy-cache
  mountPath: {{ .Values.trivy.cacheDir | quote }}
{{- with .Values.extraVolumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The pod's volumes (CronJob and test hook): /tmp, the Trivy cache (PVC or emptyDir), extraVolumes. */}}
{{- define "ephor-scanner.volumes" -}}
- name: tmp
  emptyDir: {{- include "ephor-scanner.emptyDir" (dict "medium" .Values.tmp.medium "sizeLimit" .Values.tmp.sizeLimit) | nindent 4 }}
- name: trivy-cache
  {{- /* Sharded: scratch only; the persistent cache is the Trivy server's (one claim cannot follow Pods over nodes). */}}
  {{- if and .Values.cache.enabled (not (include "ephor-scanner.sharded" .)) }}
  persistentVolumeClaim:
    claimName: {{ include "ephor-scanner.fullname" . }}-cache
  {{- else }}
  emptyDir: {{- include "ephor-scanner.emptyDir" (dict "sizeLimit" .Values.cache.size) | nindent 4 }}
  {{- end }}
{{- with .Values.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end -}}
