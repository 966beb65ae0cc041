{{/*
Metrics: the METRICS_* settings, the PrometheusRule and the Grafana dashboard. Kept apart from _helpers.tpl.
*/}}

{{/* Label names the scanner's metrics carry themselves: a grouping label of that name would overwrite them. */}}
{{- define "ephor-scanner.metrics.reservedLabels" -}}
job,namespace,severity,result,reason,version,trivy_version
{{- end -}}

{{/* metrics.pushgateway.groupingLabels as METRICS_PUSHGATEWAY_GROUPING: "k=v,k=v", keys sorted. */}}
{{- define "ephor-scanner.metrics.grouping" -}}
{{- $items := list -}}
{{- range $name, $value := .Values.metrics.pushgateway.groupingLabels -}}
{{- $items = append $items (printf "%s=%s" $name (toString $value)) -}}
{{- end -}}
{{- join "," $items -}}
{{- end -}}

{{/* The PromQL selector of this release's group: job="ephor-scanner",cluster="prod-eu" (values quoted, escaped). */}}
{{- define "ephor-scanner.metrics.selector" -}}
{{- $items := list (printf "job=%s" (quote (trim (toString .Values.metrics.pushgateway.job)))) -}}
{{- range $name, $value := .Values.metrics.pushgateway.groupingLabels -}}
{{- $items = append $items (printf "%s=%s" $name (quote (toString $value))) -}}
{{- end -}}
{{- join "," $items -}}
{{- end -}}

{{/*
A duration (13h, 1d12h, 90m; units s m h d w) in seconds; a template failure naming the key otherwise.
Called with (dict "key" "metrics.prometheusRule.staleAfter" "value" <value>).
*/}}
{{- define "ephor-scanner.metrics.seconds" -}}
{{- $text := toString .value | trim -}}
{{- if not (regexMatch "^([0-9]+[smhdw])+$" $text) -}}
{{- fail (printf "%s must be a duration such as 13h, 1d12h or 90m (units s, m, h, d, w), not %q" .key $text) -}}
{{- end -}}
{{- $units := dict "s" 1 "m" 60 "h" 3600 "d" 86400 "w" 604800 -}}
{{- $total := 0 -}}
{{- range regexFindAll "[0-9]+[smhdw]" $text -1 -}}
{{- $unit := substr (sub (len .) 1 | int) (len .) . -}}
{{- $total = add $total (mul (trimSuffix $unit . | atoi) (get $units $unit)) -}}
{{- end -}}
{{- if le (int64 $total) 0 -}}
{{- fail (printf "%s must be longer than 0, not %q" .key $text) -}}
{{- end -}}
{{- $total -}}
{{- end -}}

{{/* Checks of the metrics values, each failure a sentence naming the key and the fix. Included by the ConfigMap. */}}
{{- define "ephor-scanner.metrics.validate" -}}
{{- $pg := .Values.metrics.pushgateway -}}
{{- if and $pg.url (not (regexMatch "^https?://[^\\s/?#@]+(/[^\\s?#]*)?$" $pg.url)) -}}
{{- fail (printf "metrics.pushgateway.url must be an http:// or https:// URL without credentials, query or fragment, e.g. http://prometheus-pushgateway.monitoring:9091, not %q" $pg.url) -}}
{{- end -}}
{{- if not (trim (toString $pg.job)) -}}
{{- fail "metrics.pushgateway.job must not be empty: it is the job label of the pushed metrics (default ephor-scanner)" -}}
{{- end -}}
{{- $reserved := splitList "," (include "ephor-scanner.metrics.reservedLabels" .) -}}
{{- range $name, $value := $pg.groupingLabels -}}
{{- if or (not (regexMatch "^[a-zA-Z_][a-zA-Z0-9_]*$" $name)) (hasPrefix "__" $name) -}}
{{- fail (printf "metrics.pushgateway.groupingLabels: %q is not a Prometheus label name (letters, digits and _, not starting with a digit or __)" $name) -}}
{{- end -}}
{{- if has $name $reserved -}}
{{- fail (printf "metrics.pushgateway.groupingLabels: %q is taken (the job has metrics.pushgateway.job; the scanner's metrics use %s); choose another name, e.g. cluster" $name (join ", " (rest $reserved))) -}}
{{- end -}}
{{- if or (eq (toString $value) "") (contains "," (toString $value)) -}}
{{- fail (printf "metrics.pushgateway.groupingLabels.%s must be a non-empty value without commas, not %q" $name (toString $value)) -}}
{{- end -}}
{{- end -}}
{{- with .Values.metrics.prometheusRule -}}
{{- if .enabled -}}
{{- if not $pg.url -}}
{{- fail "metrics.prometheusRule.enabled needs metrics.pushgateway.url: the alerts read the metrics the scanner pushes there" -}}
{{- end -}}
{{- $_ := include "ephor-scanner.metrics.seconds" (dict "key" "metrics.prometheusRule.staleAfter" "value" .staleAfter) -}}
{{- $_ := include "ephor-scanner.metrics.seconds" (dict "key" "metrics.prometheusRule.dbMaxAge" "value" .dbMaxAge) -}}
{{- end -}}
{{- end -}}
{{- end -}}
