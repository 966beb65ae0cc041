{{/*
Install-time checks of the values, each failure one sentence naming the key, what is wrong and the fix.
Helm checks values.schema.json before rendering and prints the schema's own text (a raw regular expression for a
`pattern`), so the schema keeps only what its messages say well (types, enums, unknown keys) and everything else is
checked here. Included by rbac.yaml and the ConfigMap (which the CronJob includes), so it runs before any object is
made. Metrics values are checked in _metrics.tpl, the Job deadline in _helpers.tpl (scanDeadline).
*/}}
{{- define "ephor-scanner.validate" -}}
{{- include "ephor-scanner.validate.ephor" . -}}
{{- include "ephor-scanner.validate.scan" . -}}
{{- include "ephor-scanner.validate.trivy" . -}}
{{- include "ephor-scanner.validate.volumes" . -}}
{{- include "ephor-scanner.validate.rbac" . -}}
{{- include "ephor-scanner.validate.combinations" . -}}
{{- include "ephor-scanner.validate.shards" . -}}
{{- end -}}

{{- define "ephor-scanner.validate.ephor" -}}
{{- $e := .Values.ephor -}}
{{- $_ := required "ephor.apiUrl is required: the Ephor API base URL, e.g. --set ephor.apiUrl=http://ephor-api:8080" $e.apiUrl -}}
{{- $url := toString $e.apiUrl -}}
{{- /* Credentials and query strings may hold secrets: those messages do not repeat the value. */ -}}
{{- if regexMatch "^[^/?#]*://[^/?#]*@" $url -}}
{{- fail "ephor.apiUrl must not contain credentials (user:password@): set ephor.authHeader and ephor.authValue, or ephor.existingSecret, instead" -}}
{{- end -}}
{{- if regexMatch "[?#]" $url -}}
{{- fail "ephor.apiUrl must not have a query string (?...) or fragment (#...): give the base URL only, e.g. http://ephor-api:8080" -}}
{{- end -}}
{{- if not (regexMatch "(?i)^https?://" $url) -}}
{{- fail (printf "ephor.apiUrl must be an http:// or https:// URL, e.g. http://ephor-api:8080, not %q" $url) -}}
{{- end -}}
{{- if regexMatch "\\s" $url -}}
{{- fail (printf "ephor.apiUrl must not contain spaces: %q" $url) -}}
{{- end -}}
{{- if not (regexMatch "(?i)^https?://[^/]+" $url) -}}
{{- fail (printf "ephor.apiUrl must name a host after %q, e.g. http://ephor-api:8080" $url) -}}
{{- end -}}
{{- with $e.authHeader -}}
{{- if not (regexMatch "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$" .) -}}
{{- fail (printf "ephor.authHeader must be an HTTP header name (letters, digits and '-', e.g. Authorization or X-Api-Key), not %q" .) -}}
{{- end -}}
{{- /* As the scanner (src/config/parse.ts parseHeaderName). */ -}}
{{- if has (lower .) (list "content-type" "content-length" "content-encoding" "host" "user-agent" "x-request-id" "connection" "transfer-encoding") -}}
{{- fail (printf "ephor.authHeader %q is a header the scanner sets itself; choose another, e.g. Authorization or X-Api-Key" .) -}}
{{- end -}}
{{- if hasPrefix "x-forwarded-" (lower .) -}}
{{- fail (printf "ephor.authHeader %q: an X-Forwarded-* header would make Ephor register the scanner as a user; choose another, e.g. Authorization or X-Api-Key" .) -}}
{{- end -}}
{{- end -}}
{{- if $e.existingSecret -}}
{{- if $e.authValue -}}
{{- fail "ephor.authValue and ephor.existingSecret are both set: keep the value in the existing Secret only" -}}
{{- end -}}
{{- else if and $e.authHeader (not $e.authValue) -}}
{{- fail "ephor.authHeader is set but ephor.authValue is empty: set both, or neither, or use ephor.existingSecret" -}}
{{- else if and $e.authValue (not $e.authHeader) -}}
{{- fail "ephor.authValue is set but ephor.authHeader is empty: set both (e.g. --set ephor.authHeader=Authorization)" -}}
{{- end -}}
{{- include "ephor-scanner.validate.duration" (dict "key" "ephor.timeout" "value" $e.timeout) -}}
{{- include "ephor-scanner.validate.integer" (dict "key" "ephor.maxRetries" "value" $e.maxRetries "min" 0 "max" 10 "what" "retries of a failed request") -}}
{{- include "ephor-scanner.validate.payloadSize" (dict "key" "ephor.maxPayloadBytes" "value" $e.maxPayloadBytes) -}}
{{- end -}}

{{- define "ephor-scanner.validate.scan" -}}
{{- $s := .Values.scan -}}
{{- $list := include "ephor-scanner.validate.list" (dict "key" "scan.namespaces" "value" $s.namespaces) | fromJsonArray -}}
{{- if not $list -}}
{{- fail "scan.namespaces is required: --set 'scan.namespaces={default,production}' (a list), --set scan.namespaces='default\\,production' (commas escaped for Helm), or \"*\" for all namespaces" -}}
{{- end -}}
{{- range $list -}}
{{- if and (ne . "*") (or (gt (len .) 63) (not (regexMatch "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$" .))) -}}
{{- fail (printf "scan.namespaces: %q is not a namespace name (lower-case letters, digits and '-', starting and ending with a letter or digit, at most 63 characters)" .) -}}
{{- end -}}
{{- end -}}
{{- if and (has "*" $list) (gt (len (uniq $list)) 1) -}}
{{- fail "scan.namespaces: \"*\" (all namespaces) cannot be combined with namespace names; leave some out with scan.excludeNamespaces instead" -}}
{{- end -}}
{{- $globs := include "ephor-scanner.validate.list" (dict "key" "scan.excludeNamespaces" "value" $s.excludeNamespaces) | fromJsonArray -}}
{{- range $globs -}}
{{- if or (gt (len .) 63) (not (regexMatch "^[a-z0-9*?]([-a-z0-9*?]*[a-z0-9*?])?$" .)) -}}
{{- fail (printf "scan.excludeNamespaces: %q is neither a namespace name nor a glob of one (lower-case letters, digits, '-', '*' for any run of characters, '?' for one)" .) -}}
{{- end -}}
{{- end -}}
{{- $kinds := include "ephor-scanner.validate.list" (dict "key" "scan.otherControllers.exclude" "value" $s.otherControllers.exclude) | fromJsonArray -}}
{{- range $kinds -}}
{{- if and (ne . "none") (not (regexMatch "^[A-Za-z][A-Za-z0-9]*(\\.[a-z0-9][-a-z0-9.]*)?$" .)) -}}
{{- fail (printf "scan.otherControllers.exclude: %q is not an owner kind: write Kind.group, e.g. Workflow.argoproj.io (Kind alone for the core group, e.g. Pod), without a version or resource name" .) -}}
{{- end -}}
{{- end -}}
{{- /* As the scanner does: an exclusion must not remove a namespace that scan.namespaces names explicitly. */ -}}
{{- if not (has "*" $list) -}}
{{- range $glob := $globs -}}
{{- $re := printf "^%s$" ($glob | replace "*" ".*" | replace "?" ".") -}}
{{- range $name := $list -}}
{{- if regexMatch $re $name -}}
{{- fail (printf "scan.excludeNamespaces: %q excludes %q, which scan.namespaces names explicitly; remove one or the other" $glob $name) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- include "ephor-scanner.validate.integer" (dict "key" "scan.concurrency" "value" $s.concurrency "min" 1 "max" 64 "what" "images scanned at the same time") -}}
{{- include "ephor-scanner.validate.choices" (dict "key" "scan.severity" "value" $s.severity "allowed" (list "CRITICAL" "HIGH" "MEDIUM" "LOW" "UNKNOWN") "what" "a severity") -}}
{{- include "ephor-scanner.validate.choices" (dict "key" "scan.workloadTypes" "value" $s.workloadTypes "allowed" (list "Deployment" "StatefulSet" "DaemonSet" "CronJob" "Pod") "what" "a workload type") -}}
{{- include "ephor-scanner.validate.integer" (dict "key" "scan.deadlineMargin" "value" $s.deadlineMargin "min" 0 "what" "seconds kept free at the end of a run") -}}
{{- include "ephor-scanner.validate.bool" (dict "key" "registryAuth.enabled" "value" .Values.registryAuth.enabled) -}}
{{- include "ephor-scanner.validate.duration" (dict "key" "kube.timeout" "value" .Values.kube.timeout) -}}
{{- end -}}

{{- define "ephor-scanner.validate.trivy" -}}
{{- $t := .Values.trivy -}}
{{- if not (hasPrefix "/" (toString $t.cacheDir)) -}}
{{- fail (printf "trivy.cacheDir must be an absolute path, e.g. /tmp/trivy-cache, not %q" (toString $t.cacheDir)) -}}
{{- end -}}
{{- if eq $t.cacheMode "redis" -}}
{{- if not $t.cacheBackend -}}
{{- fail "trivy.cacheMode=redis needs trivy.cacheBackend, e.g. redis://redis:6379" -}}
{{- end -}}
{{- end -}}
{{- /* The URL may hold a password: not repeated. */ -}}
{{- if and $t.cacheBackend (not (regexMatch "^rediss?://\\S+$" (toString $t.cacheBackend))) -}}
{{- fail "trivy.cacheBackend must be a redis:// or rediss:// URL, e.g. redis://redis:6379 (a password goes in it as redis://:PASSWORD@redis:6379)" -}}
{{- end -}}
{{- include "ephor-scanner.validate.duration" (dict "key" "trivy.timeout" "value" $t.timeout) -}}
{{- include "ephor-scanner.validate.duration" (dict "key" "trivy.dbUpdateTimeout" "value" $t.dbUpdateTimeout) -}}
{{- range $key := list "dbRepo" "javaDbRepo" -}}
{{- range include "ephor-scanner.validate.list" (dict "key" (printf "trivy.%s" $key) "value" (get $t $key)) | fromJsonArray -}}
{{- if or (regexMatch "\\s" .) (regexMatch "(?i)^[a-z]+://" .) -}}
{{- fail (printf "trivy.%s: %q is not a repository reference; give it without a scheme, e.g. registry.internal/aquasec/trivy-db:2" $key .) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- include "ephor-scanner.validate.bool" (dict "key" "trivy.skipDbUpdate" "value" $t.skipDbUpdate) -}}
{{- include "ephor-scanner.validate.bool" (dict "key" "sbom.enabled" "value" .Values.sbom.enabled) -}}
{{- end -}}

{{- define "ephor-scanner.validate.volumes" -}}
{{- range $key, $value := dict "cache.size" .Values.cache.size "tmp.sizeLimit" .Values.tmp.sizeLimit "scan.shardSpool.size" .Values.scan.shardSpool.size -}}
{{- if not (regexMatch "^[0-9]+(\\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$" (toString $value)) -}}
{{- fail (printf "%s must be a Kubernetes quantity such as 1Gi or 500Mi, not %q" $key (toString $value)) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "ephor-scanner.validate.rbac" -}}
{{- $list := splitList "," (include "ephor-scanner.namespaces" .) -}}
{{- if and .Values.rbac.create (eq .Values.rbac.scope "namespaced") (has "*" $list) -}}
{{- fail "rbac.scope=namespaced needs explicit scan.namespaces; with \"*\" use rbac.scope=cluster" -}}
{{- end -}}
{{- if and .Values.rbac.create (eq .Values.rbac.scope "namespaced") (include "ephor-scanner.namespaceSelector" .) -}}
{{- fail "rbac.scope=namespaced cannot grant the namespace list that scan.namespaceSelector needs: use rbac.scope=cluster, or drop the selector and list the namespaces" -}}
{{- end -}}
{{- if and .Values.rbac.create (not .Values.serviceAccount.create) (not .Values.serviceAccount.name) -}}
{{- fail (printf "rbac.create=true with serviceAccount.create=false would grant the scanner's rules (pull secrets included) to the ServiceAccount \"default\", which every Pod of namespace %q runs as unless it names another: set serviceAccount.name to a dedicated account, or serviceAccount.create=true" .Release.Namespace) -}}
{{- end -}}
{{- $name := include "ephor-scanner.runLock.name" . -}}
{{- if or (gt (len $name) 253) (not (regexMatch "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$" $name)) -}}
{{- fail (printf "runLock.name must be a Lease name (lower-case letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253 characters), e.g. ephor-scanner, not %q" $name) -}}
{{- end -}}
{{- $ns := .Values.runLock.namespace | toString | trim -}}
{{- if and $ns (or (gt (len $ns) 63) (not (regexMatch "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$" $ns))) -}}
{{- fail (printf "runLock.namespace must be a namespace name (lower-case letters, digits and '-', at most 63 characters) or empty for the release namespace, not %q" $ns) -}}
{{- end -}}
{{- /* RUN_LOCK_WAIT may be 0 (give up at once), unlike the timeouts; empty = computed from the Job's deadline. */}}
{{- $wait := include "ephor-scanner.str" .Values.runLock.wait -}}
{{- if and $wait (ne $wait "0") -}}
{{- include "ephor-scanner.validate.duration" (dict "key" "runLock.wait" "value" .Values.runLock.wait) -}}
{{- end -}}
{{- end -}}

{{/* Values that are each valid but together can never work. */}}
{{- define "ephor-scanner.validate.combinations" -}}
{{- $t := .Values.trivy -}}
{{- $server := $t.serverUrl -}}
{{- if and (eq (include "ephor-scanner.bool" $t.skipDbUpdate) "true") (not .Values.cache.enabled) (not $server) -}}
{{- $cacheDir := trimSuffix "/" (toString $t.cacheDir) -}}
{{- $dbMounted := false -}}
{{- range .Values.extraVolumeMounts -}}
{{- $path := trimSuffix "/" (toString .mountPath) -}}
{{- if or (eq $path $cacheDir) (hasPrefix (printf "%s/" $cacheDir) $path) }}{{ $dbMounted = true }}{{ end -}}
{{- end -}}
{{- if not $dbMounted -}}
{{- fail (printf "trivy.skipDbUpdate=true needs a vulnerability DB that is already in trivy.cacheDir, but with cache.enabled=false that is an emptyDir that starts empty every run, so every scan would fail: set cache.enabled=true (a persistent cache that keeps the DB between runs), or trivy.skipDbUpdate=false (download the DB each run; trivy.dbRepo for a mirror), or use an external Trivy server (trivy.serverUrl), or mount a volume holding the DB under trivy.cacheDir with extraVolumes and extraVolumeMounts") -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
Namespaces that get a Role must exist: Helm would otherwise stop half-way with its own "namespaces not found". Only
checked against a live cluster (`lookup` returns nothing under `helm template`, `helm lint` and --dry-run=client).
A namespace counts as missing only when another looked-up namespace (or the release namespace) exists, which proves
that lookups reach a cluster. The release namespace itself is not required: --create-namespace makes it after
rendering. The installing user needs `get` on these namespaces (cluster admins, and namespace admins through the
built-in admin, edit and view roles, have it).
*/}}
{{- define "ephor-scanner.validate.roleNamespacesExist" -}}
{{- $scanned := without (compact (splitList "," (include "ephor-scanner.rbac.roleNamespaces" .))) .Release.Namespace -}}
{{- $lock := without (list (include "ephor-scanner.runLock.namespace" .)) .Release.Namespace -}}
{{- if or $scanned $lock -}}
{{- $live := false -}}
{{- $exists := dict -}}
{{- range $ns := concat $scanned $lock (list .Release.Namespace) | uniq -}}
{{- if lookup "v1" "Namespace" "" $ns }}{{ $live = true }}{{ $_ := set $exists $ns true }}{{ end -}}
{{- end -}}
{{- $missing := list -}}
{{- range $scanned }}{{ if not (hasKey $exists .) }}{{ $missing = append $missing . }}{{ end }}{{ end -}}
{{- if and $live $missing -}}
{{- $many := gt (len $missing) 1 -}}
{{- $pullSecrets := ternary " and pull secrets" "" (eq (include "ephor-scanner.bool" .Values.registryAuth.enabled) "true") -}}
{{- $create := ternary "create them first (kubectl create namespace NAME, for each)" (printf "create it first (kubectl create namespace %s)" (first $missing)) $many -}}
{{- fail (printf "scan.namespaces: %s %s %s not exist, and the chart makes a Role in each scanned namespace (to read its workloads%s there and nowhere else): %s and install again, or leave %s out of scan.namespaces for now" (ternary "namespaces" "namespace" $many) (join ", " $missing) (ternary "do" "does" $many) $pullSecrets $create (ternary "them" "it" $many)) -}}
{{- end -}}
{{- range $lock -}}
{{- if and $live (not (hasKey $exists .)) -}}
{{- fail (printf "runLock.namespace: namespace %q does not exist, and the chart makes the run lock's Role there: create it first (kubectl create namespace %s), or leave runLock.namespace empty to keep the lock in the release namespace" . .) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* A list value or a comma string as a JSON array of trimmed items; an empty item fails naming the key. */}}
{{- define "ephor-scanner.validate.list" -}}
{{- $items := list -}}
{{- if kindIs "slice" .value -}}
{{- range .value }}{{ $items = append $items (toString . | trim) }}{{ end -}}
{{- else if not (kindIs "invalid" .value) -}}
{{- $text := toString .value | trim -}}
{{- if $text }}{{ range splitList "," $text }}{{ $items = append $items (trim .) }}{{ end }}{{ end -}}
{{- end -}}
{{- if and (has "" $items) (compact $items) -}}
{{- $shown := ternary (toJson $items) (printf "%q" (toString .value)) (kindIs "slice" .value) -}}
{{- fail (printf "%s has an empty entry in %s: remove the trailing or doubled comma (entries are separated by single commas)" .key $shown) -}}
{{- end -}}
{{- compact $items | toJson -}}
{{- end -}}

{{/* An integer from .min to .max, or from .min up without .max (int, float from a values file, or string). */}}
{{- define "ephor-scanner.validate.integer" -}}
{{- $text := include "ephor-scanner.str" .value -}}
{{- $range := ternary (printf " from %d to %d" (int .min) (int .max)) (printf ", %d or more" (int .min)) (hasKey . "max") -}}
{{- if or (not (regexMatch "^[0-9]{1,9}$" $text)) (lt (atoi $text) (int .min)) (and (hasKey . "max") (gt (atoi $text) (int .max))) -}}
{{- fail (printf "%s must be a whole number%s (%s), not %q" .key $range .what $text) -}}
{{- end -}}
{{- end -}}

{{/* true or false, as a boolean or a string in any case. */}}
{{- define "ephor-scanner.validate.bool" -}}
{{- if not (or (kindIs "bool" .value) (has (lower (toString .value)) (list "true" "false"))) -}}
{{- fail (printf "%s must be true or false, not %q" .key (toString .value)) -}}
{{- end -}}
{{- end -}}

{{/* A non-empty list of words from .allowed, in any case. */}}
{{- define "ephor-scanner.validate.choices" -}}
{{- $items := include "ephor-scanner.validate.list" (dict "key" .key "value" .value) | fromJsonArray -}}
{{- if not $items -}}
{{- fail (printf "%s must name at least one of %s" .key (join ", " .allowed)) -}}
{{- end -}}
{{- $allowed := list -}}
{{- range .allowed }}{{ $allowed = append $allowed (lower .) }}{{ end -}}
{{- range $items -}}
{{- if not (has (lower .) $allowed) -}}
{{- fail (printf "%s: %q is not %s; choose from %s (any case)" $.key . $.what (join ", " $.allowed)) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
Seconds (300) or a Go duration (90s, 10m, 1h30m; units ns us ms s m h, decimals allowed), longer than 0 and at most
24h: what the scanner accepts (src/config/parse.ts parseDurationMs).
*/}}
{{- define "ephor-scanner.validate.duration" -}}
{{- $text := include "ephor-scanner.str" .value -}}
{{- $ms := 0.0 -}}
{{- if regexMatch "^[0-9]{1,9}$" $text -}}
{{- $ms = mulf (float64 $text) 1000 -}}
{{- else if regexMatch "^([0-9]+(\\.[0-9]+)?(ns|us|µs|μs|ms|s|m|h))+$" $text -}}
{{- $units := dict "ns" 0.000001 "us" 0.001 "µs" 0.001 "μs" 0.001 "ms" 1.0 "s" 1000.0 "m" 60000.0 "h" 3600000.0 -}}
{{- range regexFindAll "[0-9]+(\\.[0-9]+)?(ns|us|µs|μs|ms|s|m|h)" $text -1 -}}
{{- $number := regexFind "^[0-9]+(\\.[0-9]+)?" . -}}
{{- $ms = addf $ms (mulf (float64 $number) (get $units (trimPrefix $number .))) -}}
{{- end -}}
{{- else -}}
{{- fail (printf "%s must be whole seconds (300) or a duration such as 90s, 10m or 1h30m, not %q" .key $text) -}}
{{- end -}}
{{- if lt $ms 1.0 -}}
{{- fail (printf "%s must be longer than 0, not %q" .key $text) -}}
{{- end -}}
{{- if gt $ms 86400000.0 -}}
{{- fail (printf "%s must be at most 24h (86400 seconds), not %q" .key $text) -}}
{{- end -}}
{{- end -}}

{{/* EPHOR_MAX_PAYLOAD_BYTES: bytes, or with k/Ki/M/Mi/G/Gi (any case), from 64Ki to 1Gi. */}}
{{- define "ephor-scanner.validate.payloadSize" -}}
{{- $text := include "ephor-scanner.str" .value -}}
{{- $rule := "a size from 64Ki to 1Gi: bytes (1048576) or with a suffix (512Ki, 8Mi)" -}}
{{- if not (regexMatch "(?i)^[0-9]{1,12}(k|ki|m|mi|g|gi)?$" $text) -}}
{{- fail (printf "%s must be %s, not %q" .key $rule $text) -}}
{{- end -}}
{{- $number := regexFind "^[0-9]+" $text -}}
{{- $units := dict "" 1.0 "k" 1000.0 "ki" 1024.0 "m" 1000000.0 "mi" 1048576.0 "g" 1000000000.0 "gi" 1073741824.0 -}}
{{- $bytes := mulf (float64 $number) (get $units (lower (trimPrefix $number $text))) -}}
{{- if or (lt $bytes 65536.0) (gt $bytes 1073741824.0) -}}
{{- fail (printf "%s must be %s, not %q" .key $rule $text) -}}
{{- end -}}
{{- end -}}
