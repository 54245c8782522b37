{{/*
Checks that span several values, all in one place (as Bitnami charts do): every broken combination
is collected and the release fails once, naming the values to set. Called once, from NOTES.txt,
which Helm renders on every install, upgrade, template and lint. Checks of one value on its own
live in values.schema.json.
*/}}
{{- define "converge.validateValues" -}}
{{- $v := .Values -}}
{{- $checks := list
  (list (and (not $v.postgresql.enabled) (not $v.externalDatabase.host)) "externalDatabase.host is required when postgresql.enabled is false")
  (list (and (not $v.postgresql.enabled) (not $v.externalDatabase.existingSecret)) "externalDatabase.existingSecret is required when postgresql.enabled is false")
  (list (and $v.migrations.enabled (not $v.postgresql.enabled) (not $v.migrations.existingSecret)) "migrations.existingSecret is required when migrations.enabled is true and postgresql.enabled is false: the migration role's password")
  (list (and (not $v.redis.enabled) (not $v.externalRedis.host)) "externalRedis.host is required when redis.enabled is false")
  (list (and (not $v.redis.enabled) (not $v.externalRedis.existingSecret)) "externalRedis.existingSecret is required when redis.enabled is false")
  (list (and (not $v.minio.enabled) (not $v.externalS3.endpoint)) "externalS3.endpoint is required when minio.enabled is false (e.g. https://s3.us-east-1.amazonaws.com)")
  (list (and (not $v.minio.enabled) (not $v.externalS3.existingSecret)) "externalS3.existingSecret is required when minio.enabled is false")
  (list (and $v.mage.enabled (not $v.h2o.enabled) (not $v.externalH2o.url)) "externalH2o.url is required when mage.enabled is true and h2o.enabled is false: training needs an H2O cluster")
  (list (and $v.mage.enabled $v.mage.webserver.enabled $v.mage.ingress.enabled (not (and $v.mage.ingress.host $v.mage.ingress.tlsSecretName))) "mage.ingress.host and mage.ingress.tlsSecretName are required when mage.ingress.enabled is true")
  (list (and $v.functions.enabled $v.functions.predict.enabled $v.functions.domainMapping.enabled (not (and $v.functions.domainMapping.host $v.functions.domainMapping.tlsSecretName))) "functions.domainMapping.host and functions.domainMapping.tlsSecretName are required when functions.domainMapping.enabled is true")
  (list (and $v.eventing.oidc.enabled (not (or $v.eventing.oidc.jwksUrl $v.eventing.oidc.jwksConfigMap))) "eventing.oidc.jwksUrl or eventing.oidc.jwksConfigMap is required when eventing.oidc.enabled is true: the key set the tokens are checked against")
-}}
{{- $messages := list -}}
{{- range $checks -}}
{{- if index . 0 -}}
{{- $messages = append $messages (printf "- %s" (index . 1)) -}}
{{- end -}}
{{- end -}}
{{- if $messages -}}
{{- fail (printf "\nVALUES VALIDATION:\n%s" (join "\n" $messages)) -}}
{{- end -}}
{{- end -}}
