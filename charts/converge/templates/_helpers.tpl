{{/* Names ------------------------------------------------------------------------------------ */}}

{{- define "converge.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* `<release>-<chart>`, shortened so component suffixes still fit in 63 characters. */}}
{{- define "converge.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "converge.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Common labels; call with (dict "ctx" $ "component" "predict"). */}}
{{- define "converge.labels" -}}
helm.sh/chart: {{ include "converge.chart" .ctx }}
{{ include "converge.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: converge
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "converge.selectorLabels" -}}
app.kubernetes.io/name: {{ include "converge.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* metadata: name, namespace, labels, annotations (common + checkov skips). */}}
{{- define "converge.metadata" -}}
name: {{ .name }}
namespace: {{ .ctx.Release.Namespace }}
labels:
  {{- include "converge.labels" . | nindent 2 }}
  {{- with .labels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- $ann := merge (dict) (.annotations | default dict) (.ctx.Values.commonAnnotations | default dict) }}
{{- if $ann }}
annotations:
  {{- toYaml $ann | nindent 2 }}
{{- end }}
{{- end -}}

{{- define "converge.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "converge.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* `repo@digest` when a digest is pinned, else `repo:tag`. */}}
{{- define "converge.image" -}}
{{- if .digest -}}
{{- printf "%s@%s" .repository .digest -}}
{{- else -}}
{{- printf "%s:%s" .repository (toString .tag) -}}
{{- end -}}
{{- end -}}

{{- define "converge.imagePullSecrets" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
{{- range . }}
  - name: {{ . }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Container security context shared by the plain workloads. */}}
{{- define "converge.containerSecurityContext" -}}
runAsNonRoot: true
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
privileged: false
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Checkov skips that hold for the whole chart, each with its reason. */}}
{{- define "converge.checkovSkips" -}}
checkov.io/skip1: CKV_K8S_43=Tags are pinned; digests are set per image via *.image.digest once the registry is known
checkov.io/skip2: CKV_K8S_15=Pinned immutable tags; IfNotPresent keeps scale-from-zero cold starts short
checkov.io/skip3: CKV_K8S_35=The processes read CONVERGE_* variables; values come from secretKeyRef, never literals
{{- end -}}

{{/* Memory quantity (Ki, Mi, Gi, Ti, k, M, G, T or bytes) to whole MiB, rounded down. */}}
{{- define "converge.memoryMiB" -}}
{{- $q := toString . -}}
{{- $num := regexFind "^[0-9.]+" $q -}}
{{- $unit := trimPrefix $num $q -}}
{{- $n := float64 $num -}}
{{- $bytes := 0.0 -}}
{{- if eq $unit "Ki" }}{{ $bytes = mulf $n 1024.0 }}
{{- else if eq $unit "Mi" }}{{ $bytes = mulf $n 1048576.0 }}
{{- else if eq $unit "Gi" }}{{ $bytes = mulf $n 1073741824.0 }}
{{- else if eq $unit "Ti" }}{{ $bytes = mulf $n 1099511627776.0 }}
{{- else if eq $unit "k" }}{{ $bytes = mulf $n 1000.0 }}
{{- else if eq $unit "M" }}{{ $bytes = mulf $n 1000000.0 }}
{{- else if eq $unit "G" }}{{ $bytes = mulf $n 1000000000.0 }}
{{- else if eq $unit "T" }}{{ $bytes = mulf $n 1000000000000.0 }}
{{- else if eq $unit "" }}{{ $bytes = $n }}
{{- else }}{{ fail (printf "unsupported memory unit in %q" $q) }}
{{- end -}}
{{- floor (divf $bytes 1048576.0) | int64 -}}
{{- end -}}

{{/* JVM heap of an H2O node in MiB: heapPercent of limits.memory, so the two cannot drift. */}}
{{- define "converge.h2o.heapMiB" -}}
{{- $limit := required "h2o.resources.limits.memory is required: the JVM heap is computed from it" .Values.h2o.resources.limits.memory -}}
{{- div (mul (include "converge.memoryMiB" $limit | int64) (int64 .Values.h2o.heapPercent)) 100 -}}
{{- end -}}

{{/* A stored secret value: the given one, else the one already in the cluster, else random. */}}
{{- define "converge.secretValue" -}}
{{- if .value -}}
{{- .value -}}
{{- else -}}
{{- $existing := lookup "v1" "Secret" .ctx.Release.Namespace .secret -}}
{{- if and $existing (hasKey $existing.data .key) -}}
{{- index $existing.data .key | b64dec -}}
{{- else -}}
{{- randAlphaNum 32 -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Service hosts ----------------------------------------------------------------------------- */}}

{{- define "converge.svcHost" -}}
{{- printf "%s-%s.%s.svc.%s" (include "converge.fullname" .ctx) .component .ctx.Release.Namespace .ctx.Values.clusterDomain -}}
{{- end -}}

{{/* Database the functions use: PgBouncer, else in-cluster Postgres, else the external one. */}}
{{- define "converge.database.host" -}}
{{- if and .Values.postgresql.enabled .Values.pgbouncer.enabled -}}
{{- include "converge.svcHost" (dict "ctx" . "component" "pgbouncer") -}}
{{- else if .Values.postgresql.enabled -}}
{{- include "converge.svcHost" (dict "ctx" . "component" "postgresql") -}}
{{- else -}}
{{- .Values.externalDatabase.host -}}
{{- end -}}
{{- end -}}

{{- define "converge.database.port" -}}
{{- if and .Values.postgresql.enabled .Values.pgbouncer.enabled -}}
{{- .Values.pgbouncer.port -}}
{{- else if .Values.postgresql.enabled -}}
5432
{{- else -}}
{{- .Values.externalDatabase.port -}}
{{- end -}}
{{- end -}}

{{/* Postgres itself, for Mage's metadata (session features that a transaction pooler breaks). */}}
{{- define "converge.database.directHost" -}}
{{- if .Values.postgresql.enabled -}}
{{- include "converge.svcHost" (dict "ctx" . "component" "postgresql") -}}
{{- else -}}
{{- default .Values.externalDatabase.host .Values.externalDatabase.directHost -}}
{{- end -}}
{{- end -}}

{{- define "converge.database.directPort" -}}
{{- if .Values.postgresql.enabled -}}5432{{- else -}}{{- .Values.externalDatabase.directPort -}}{{- end -}}
{{- end -}}

{{- define "converge.database.user" -}}
{{- if .Values.postgresql.enabled -}}{{ .Values.postgresql.auth.username }}{{- else -}}{{ .Values.externalDatabase.username }}{{- end -}}
{{- end -}}

{{- define "converge.database.name" -}}
{{- if .Values.postgresql.enabled -}}{{ .Values.postgresql.auth.database }}{{- else -}}{{ .Values.externalDatabase.database }}{{- end -}}
{{- end -}}

{{- define "converge.database.secretName" -}}
{{- if .Values.postgresql.enabled -}}
{{- default (printf "%s-postgresql" (include "converge.fullname" .)) .Values.postgresql.auth.existingSecret -}}
{{- else -}}
{{- .Values.externalDatabase.existingSecret -}}
{{- end -}}
{{- end -}}

{{- define "converge.database.secretKey" -}}
{{- if .Values.postgresql.enabled -}}{{ .Values.postgresql.auth.secretKeys.userPasswordKey }}{{- else -}}{{ .Values.externalDatabase.existingSecretPasswordKey }}{{- end -}}
{{- end -}}

{{/* Migrations: the hook phases (see templates/migrations/job.yaml) and the role's Secret. */}}
{{- define "converge.migrations.hook" -}}
{{- if .Values.postgresql.enabled -}}post-install,pre-upgrade{{- else -}}pre-install,pre-upgrade{{- end -}}
{{- end -}}

{{- define "converge.migrations.secretName" -}}
{{- if .Values.migrations.existingSecret -}}
{{- .Values.migrations.existingSecret -}}
{{- else if .Values.postgresql.enabled -}}
{{- printf "%s-migrations" (include "converge.fullname" .) -}}
{{- else -}}
{{- .Values.migrations.existingSecret -}}
{{- end -}}
{{- end -}}

{{/* Secret key of the password of a function's own database role (predict or ingest). */}}
{{- define "converge.database.roleSecretKey" -}}
{{- $ctx := .ctx -}}
{{- if $ctx.Values.postgresql.enabled -}}
{{- index $ctx.Values.postgresql.auth.secretKeys (printf "%sPasswordKey" .role) -}}
{{- else -}}
{{- index $ctx.Values.externalDatabase (printf "existingSecret%sPasswordKey" (title .role)) -}}
{{- end -}}
{{- end -}}

{{- define "converge.redis.url" -}}
{{- if .Values.redis.enabled -}}
{{- printf "redis://:$(CONVERGE_REDIS_PASSWORD)@%s:6379/0" (include "converge.svcHost" (dict "ctx" . "component" "redis")) -}}
{{- else -}}
{{- $host := .Values.externalRedis.host -}}
{{- printf "%s://:$(CONVERGE_REDIS_PASSWORD)@%s:%v/%v" (ternary "rediss" "redis" .Values.externalRedis.tls) $host .Values.externalRedis.port .Values.externalRedis.db -}}
{{- end -}}
{{- end -}}

{{- define "converge.redis.secretName" -}}
{{- if .Values.redis.enabled -}}
{{- default (printf "%s-redis" (include "converge.fullname" .)) .Values.redis.auth.existingSecret -}}
{{- else -}}
{{- .Values.externalRedis.existingSecret -}}
{{- end -}}
{{- end -}}

{{- define "converge.redis.secretKey" -}}
{{- if .Values.redis.enabled -}}{{ .Values.redis.auth.existingSecretPasswordKey }}{{- else -}}{{ .Values.externalRedis.existingSecretPasswordKey }}{{- end -}}
{{- end -}}

{{- define "converge.s3.endpoint" -}}
{{- if .Values.minio.enabled -}}
{{- printf "http://%s:9000" (include "converge.svcHost" (dict "ctx" . "component" "minio")) -}}
{{- else -}}
{{- .Values.externalS3.endpoint -}}
{{- end -}}
{{- end -}}

{{- define "converge.s3.bucket" -}}
{{- if .Values.minio.enabled -}}{{ .Values.minio.bucket }}{{- else -}}{{ .Values.externalS3.bucket }}{{- end -}}
{{- end -}}

{{- define "converge.s3.secretName" -}}
{{- if .Values.minio.enabled -}}
{{- default (printf "%s-minio" (include "converge.fullname" .)) .Values.minio.auth.existingSecret -}}
{{- else -}}
{{- .Values.externalS3.existingSecret -}}
{{- end -}}
{{- end -}}

{{- define "converge.s3.accessKeyKey" -}}
{{- if .Values.minio.enabled -}}{{ .Values.minio.auth.accessKeyKey }}{{- else -}}{{ .Values.externalS3.accessKeyKey }}{{- end -}}
{{- end -}}

{{- define "converge.s3.secretKeyKey" -}}
{{- if .Values.minio.enabled -}}{{ .Values.minio.auth.secretKeyKey }}{{- else -}}{{ .Values.externalS3.secretKeyKey }}{{- end -}}
{{- end -}}

{{- define "converge.s3.readerAccessKeyKey" -}}
{{- if .Values.minio.enabled -}}{{ .Values.minio.auth.readerAccessKeyKey }}{{- else -}}{{ .Values.externalS3.readerAccessKeyKey }}{{- end -}}
{{- end -}}

{{- define "converge.s3.readerSecretKeyKey" -}}
{{- if .Values.minio.enabled -}}{{ .Values.minio.auth.readerSecretKeyKey }}{{- else -}}{{ .Values.externalS3.readerSecretKeyKey }}{{- end -}}
{{- end -}}

{{- define "converge.h2o.url" -}}
{{- if .Values.h2o.enabled -}}
{{- printf "http://%s:54321" (include "converge.svcHost" (dict "ctx" . "component" "h2o")) -}}
{{- else -}}
{{- .Values.externalH2o.url -}}
{{- end -}}
{{- end -}}

{{- define "converge.admin.secretName" -}}
{{- default (printf "%s-admin" (include "converge.fullname" .)) .Values.auth.existingSecret -}}
{{- end -}}

{{- define "converge.broker.name" -}}
{{- printf "%s-broker" (include "converge.fullname" .) -}}
{{- end -}}

{{- define "converge.broker.url" -}}
{{- printf "http://%s/%s/%s" .Values.eventing.brokerIngressHost .Release.Namespace (include "converge.broker.name" .) -}}
{{- end -}}

{{/*
CONVERGE_* environment of every process that uses the shared library (settings.py), for one role
(predict, ingest, reload, training): each gets only its own database role and object-store identity
(predict and ingest their own roles; predict and reload the read-only S3 identity; ingest none).
Call with (dict "ctx" $ "role" "predict").
Secrets come from secretKeyRef; URLs embed them with $(VAR), which Kubernetes expands only for
variables defined earlier in the list, so the password variables come first.
*/}}
{{- define "converge.env" -}}
{{- $role := .role -}}
{{- with .ctx -}}
{{- $dbUser := include "converge.database.user" . -}}
{{- $dbKey := include "converge.database.secretKey" . -}}
{{- if has $role (list "predict" "ingest") }}
{{- $dbUser = printf "%s_%s" $dbUser $role -}}
{{- $dbKey = include "converge.database.roleSecretKey" (dict "ctx" . "role" $role) -}}
{{- end }}
- name: CONVERGE_DB_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "converge.database.secretName" . }}
      key: {{ $dbKey }}
- name: CONVERGE_REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "converge.redis.secretName" . }}
      key: {{ include "converge.redis.secretKey" . }}
- name: CONVERGE_DATABASE_URL
  value: {{ printf "postgresql://%s:$(CONVERGE_DB_PASSWORD)@%s:%v/%s" $dbUser (include "converge.database.host" .) (include "converge.database.port" .) (include "converge.database.name" .) | quote }}
- name: CONVERGE_REDIS_URL
  value: {{ include "converge.redis.url" . | quote }}
- name: CONVERGE_S3_ENDPOINT_URL
  value: {{ include "converge.s3.endpoint" . | quote }}
- name: CONVERGE_S3_REGION
  value: {{ .Values.externalS3.region | quote }}
- name: CONVERGE_S3_BUCKET
  value: {{ include "converge.s3.bucket" . | quote }}
{{- if ne $role "ingest" }}
{{- $reader := has $role (list "predict" "reload") }}
- name: CONVERGE_S3_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "converge.s3.secretName" . }}
      key: {{ include (ternary "converge.s3.readerAccessKeyKey" "converge.s3.accessKeyKey" $reader) . }}
- name: CONVERGE_S3_SECRET_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "converge.s3.secretName" . }}
      key: {{ include (ternary "converge.s3.readerSecretKeyKey" "converge.s3.secretKeyKey" $reader) . }}
{{- end }}
{{- with include "converge.h2o.url" . }}
- name: CONVERGE_H2O_URL
  value: {{ . | quote }}
{{- end }}
- name: CONVERGE_BROKER_URL
  value: {{ include "converge.broker.url" . | quote }}
- name: CONVERGE_DEFAULT_MODEL
  value: {{ .Values.serving.defaultModel | quote }}
- name: CONVERGE_CACHE_TTL_S
  value: {{ .Values.serving.cacheTtlSeconds | quote }}
- name: CONVERGE_SCORER_BACKEND
  value: {{ ternary "auto" "native" (eq .Values.functions.scorer "genmodel") | quote }}
- name: CONVERGE_SERVING_SCORER
  value: {{ .Values.functions.scorer | quote }}
{{- end }}
{{- end -}}

{{/*
Credentials of one role, each only where it is checked or used (least privilege):
reload gets the admin token, the publish key and the rollout key, ingest the ingest token, training
the publish key, predict the rollout key (it asks reload to carry out a recorded promotion).
Call with (dict "ctx" $ "role" "reload").
*/}}
{{- define "converge.credentialsEnv" -}}
{{- $ctx := .ctx -}}
{{- $wanted := get (dict "reload" (list "admin" "publish" "rollout") "ingest" (list "ingest") "training" (list "publish") "predict" (list "rollout")) .role -}}
{{- $keys := dict "admin" (list "CONVERGE_ADMIN_TOKEN" $ctx.Values.auth.existingSecretKey) "publish" (list "CONVERGE_PUBLISH_KEY" $ctx.Values.auth.publishKeyKey) "ingest" (list "CONVERGE_INGEST_TOKEN" $ctx.Values.auth.ingestTokenKey) "rollout" (list "CONVERGE_ROLLOUT_KEY" $ctx.Values.auth.rolloutKeyKey) -}}
{{- range $credential := $wanted }}
{{- $pair := get $keys $credential }}
- name: {{ index $pair 0 }}
  valueFrom:
    secretKeyRef:
      name: {{ include "converge.admin.secretName" $ctx }}
      key: {{ index $pair 1 }}
{{- end }}
{{- if has .role (list "reload" "ingest") }}
- name: CONVERGE_EVENT_MAX_AGE_S
  value: {{ $ctx.Values.auth.eventMaxAgeSeconds | quote }}
{{- $oidc := $ctx.Values.eventing.oidc }}
{{- if $oidc.enabled }}
- name: CONVERGE_EVENT_OIDC_AUDIENCE
  value: {{ default (printf "%s-%s" (include "converge.fullname" $ctx) .role) (index $oidc.audiences .role) | quote }}
- name: CONVERGE_EVENT_OIDC_ISSUER
  value: {{ $oidc.issuer | quote }}
- name: CONVERGE_EVENT_OIDC_SUBJECTS
  value: {{ $oidc.subjects | toJson | quote }}
- name: CONVERGE_EVENT_OIDC_JWKS_URL
  value: {{ ternary "file:///etc/converge/oidc/jwks.json" $oidc.jwksUrl (ne $oidc.jwksConfigMap "") | quote }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Delivery of the Broker and Triggers: retries with backoff, then the dead-letter sink. */}}
{{- define "converge.eventing.delivery" -}}
{{- $ev := .Values.eventing -}}
deadLetterSink:
  {{- if $ev.deadLetter.uri }}
  uri: {{ $ev.deadLetter.uri }}
  {{- else }}
  ref:
    apiVersion: eventing.knative.dev/v1
    kind: Broker
    name: {{ printf "%s-dead-letter" (include "converge.fullname" .) }}
    namespace: {{ .Release.Namespace }}
  {{- end }}
retry: {{ $ev.delivery.retry }}
backoffPolicy: {{ $ev.delivery.backoffPolicy }}
backoffDelay: {{ $ev.delivery.backoffDelay }}
{{- with $ev.delivery.timeout }}
timeout: {{ . }}
{{- end }}
{{- end -}}

{{/*
Cross-field checks, all in one place (as Bitnami's validateValues): every broken combination is
listed at once, then rendering fails. Called from templates/validate-values.yaml.
*/}}
{{- define "converge.validateValues" -}}
{{- $v := .Values -}}
{{- $messages := list -}}
{{- if not $v.postgresql.enabled }}
{{- if not $v.externalDatabase.host }}{{ $messages = append $messages "externalDatabase.host is required when postgresql.enabled is false" }}{{ end }}
{{- if not $v.externalDatabase.existingSecret }}{{ $messages = append $messages "externalDatabase.existingSecret is required when postgresql.enabled is false" }}{{ end }}
{{- if and $v.migrations.enabled (not $v.migrations.existingSecret) }}{{ $messages = append $messages "migrations.existingSecret is required with an external database: the migration role's password" }}{{ end }}
{{- end }}
{{- if not $v.redis.enabled }}
{{- if not $v.externalRedis.host }}{{ $messages = append $messages "externalRedis.host is required when redis.enabled is false" }}{{ end }}
{{- if not $v.externalRedis.existingSecret }}{{ $messages = append $messages "externalRedis.existingSecret is required when redis.enabled is false" }}{{ end }}
{{- end }}
{{- if not $v.minio.enabled }}
{{- if not $v.externalS3.endpoint }}{{ $messages = append $messages "externalS3.endpoint is required when minio.enabled is false (e.g. https://s3.us-east-1.amazonaws.com)" }}{{ end }}
{{- if not $v.externalS3.existingSecret }}{{ $messages = append $messages "externalS3.existingSecret is required when minio.enabled is false" }}{{ end }}
{{- end }}
{{- if and $v.mage.enabled (not $v.h2o.enabled) (not $v.externalH2o.url) }}{{ $messages = append $messages "externalH2o.url is required when h2o.enabled is false and mage.enabled is true: training needs an H2O cluster" }}{{ end }}
{{- if and $v.mage.enabled $v.mage.webserver.enabled $v.mage.ingress.enabled (not (and $v.mage.ingress.host $v.mage.ingress.tlsSecretName)) }}{{ $messages = append $messages "mage.ingress.host and mage.ingress.tlsSecretName are required when mage.ingress.enabled is true: the UI is served over TLS only" }}{{ end }}
{{- if and $v.functions.enabled $v.functions.predict.enabled $v.functions.domainMapping.enabled (not (and $v.functions.domainMapping.host $v.functions.domainMapping.tlsSecretName)) }}{{ $messages = append $messages "functions.domainMapping.host and functions.domainMapping.tlsSecretName are required when functions.domainMapping.enabled is true" }}{{ end }}
{{- if and $v.eventing.oidc.enabled (not (or $v.eventing.oidc.jwksUrl $v.eventing.oidc.jwksConfigMap)) }}{{ $messages = append $messages "eventing.oidc.jwksUrl or eventing.oidc.jwksConfigMap is required when eventing.oidc.enabled is true: the key set that checks the tokens" }}{{ end }}
{{- if gt (int $v.h2o.heapPercent) 70 }}{{ $messages = append $messages "h2o.heapPercent must be <= 70: XGBoost allocates native memory outside the heap" }}{{ end }}
{{- if $messages }}
{{- fail (printf "\nVALUES VALIDATION:\n%s" (join "\n" $messages)) }}
{{- end }}
{{- end -}}
