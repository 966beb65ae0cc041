{{/*
Server mode and the layer cache (TRIVY_CACHE_MODE, TRIVY_SERVER_*, TRIVY_SCAN_CACHE_MAX_SIZE); see README "Persistent cache".
*/}}

{{/* A Kubernetes quantity (5Gi, 1.5Gi, 512Mi, 500M, or plain bytes) in whole bytes; a template failure for anything
else (templates/_validate.tpl checks cache.size first, with its own sentence). */}}
{{- define "ephor-scanner.quantityBytes" -}}
{{- $text := toString . -}}
{{- $number := regexFind "^[0-9]+(\\.[0-9]+)?" $text -}}
{{- $unit := trimPrefix $number $text -}}
{{- $factors := dict "" 1 "Ki" 1024 "Mi" 1048576 "Gi" 1073741824 "Ti" 1099511627776 "Pi" 1125899906842624 "Ei" 1152921504606846976 "k" 1000 "M" 1000000 "G" 1000000000 "T" 1000000000000 "P" 1000000000000000 "E" 1000000000000000000 -}}
{{- if or (not $number) (not (hasKey $factors $unit)) -}}
{{- fail (printf "cache.size %q is not a size the chart can halve for the layer cache bound: use a number with Ki, Mi, Gi, Ti, Pi, Ei, k, M, G, T, P or E, e.g. 5Gi" $text) -}}
{{- end -}}
{{- if contains "." $number -}}
{{- mulf (float64 $number) (get $factors $unit) | floor | int64 -}}
{{- else -}}
{{- mul (atoi $number) (get $factors $unit) -}}
{{- end -}}
{{- end -}}

{{/* The mode scans run in: TRIVY_SERVER_URL makes every scan a client of that server, whatever trivy.cacheMode says. */}}
{{- define "ephor-scanner.ownLayerCache" -}}
{{- if and (not .Values.trivy.serverUrl) (not (include "ephor-scanner.sharded" .)) (has .Values.trivy.cacheMode (list "server" "shared")) -}}
true
{{- end -}}
{{- end -}}

{{/*
TRIVY_SCAN_CACHE_MAX_SIZE: half of cache.size, in bytes, where the layer cache lives on the cache volume (server and
shared modes without an external server). The other half holds the vulnerability DB (about 0.5 GiB) and the Java DB
(about 1 GiB; goharbor/harbor#20702 shows 474M and 1010M), their replacement while they are updated, and the spool.
*/}}
{{- define "ephor-scanner.scanCacheMaxSize" -}}
{{- if include "ephor-scanner.ownLayerCache" . -}}
{{- div (include "ephor-scanner.quantityBytes" .Values.cache.size | int64) 2 -}}
{{- end -}}
{{- end -}}

{{/* Server mode's values, checked at install as the scanner checks them. */}}
{{- define "ephor-scanner.cache.validate" -}}
{{- $url := toString (.Values.trivy.serverUrl | default "") -}}
{{- if and $url (not (regexMatch "^https?://[^\\s@?#]+$" $url)) -}}
{{- fail (printf "trivy.serverUrl must be the http(s) URL of a Trivy server without credentials, query or fragment, e.g. http://trivy-server.trivy:4954, not %q" $url) -}}
{{- end -}}
{{- with .Values.trivy.serverTokenHeader -}}
{{- if not (regexMatch "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$" (toString .)) -}}
{{- fail (printf "trivy.serverTokenHeader must be an HTTP header name (letters, digits and '-', e.g. Trivy-Token), not %q" (toString .)) -}}
{{- end -}}
{{- end -}}
{{- if and .Values.trivy.serverToken (not .Values.trivy.serverUrl) -}}
{{- fail "trivy.serverToken is set but trivy.serverUrl is empty: the token is sent only to an external Trivy server; set both, or neither" -}}
{{- end -}}
{{- end -}}
