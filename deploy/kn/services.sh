#!/usr/bin/env bash
# Create or update the Knative Services (predict, predict-grpc, reload, ingest) with `kn service apply`:
# one image, FUNCTION_TARGET picks the entry point; secrets by reference; scale to zero.
# kn cannot set readOnlyRootFilesystem or NetworkPolicies: the Helm chart is the hardened path, this
# script is for clusters where the data plane already exists and only the functions change.
# predict-grpc is predict's V2 gRPC endpoint: its own Service because Knative routes one port per
# Service and gRPC needs the port named h2c (HTTP/2 cleartext); it runs as predict's roles.
# Usage: services.sh [predict|predict-grpc|reload|ingest]   (no argument: all four)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=env.sh
. "$here/env.sh"

# target  max-scale  target-concurrency  concurrency-limit  scale-down-delay  visibility
FUNCTIONS="
predict 20 50 0 60s public
predict-grpc 20 50 0 60s public
reload  2  1  1 30s cluster-local
ingest  10 20 0 30s cluster-local
"

apply_function() {
  local target=$1 max=$2 target_conc=$3 limit=$4 delay=$5 visibility=$6
  # Least privilege: predict and ingest log in as their own database roles; predict and reload
  # read artifacts with the read-only object-store identity; ingest gets no S3 credentials.
  local role=${target%-grpc} db_user=converge db_key=password
  case $role in
    predict | ingest) db_user="converge_$role" db_key="$role-password" ;;
  esac
  # gRPC: HTTP/2 cleartext on the port named h2c; kn has no gRPC probe, so both probes are TCP.
  local port=http1:8080 liveness=http::8080:/healthz readiness=http::8080:/readyz
  if [ "$target" = predict-grpc ]; then
    port=h2c:8080 liveness=tcp::8080 readiness=tcp::8080
  fi
  local args=(
    service apply "$RELEASE-$target"
    --namespace "$NAMESPACE"
    --image "$IMAGE"
    --port "$port"
    --service-account "$SERVICE_ACCOUNT"
    --env "FUNCTION_TARGET=$target"
    # Passwords first: the URLs below expand them with $(VAR).
    --env-value-from "CONVERGE_DB_PASSWORD=secret:$RELEASE-postgresql:$db_key"
    --env-value-from "CONVERGE_REDIS_PASSWORD=secret:$RELEASE-redis:redis-password"
    --env "CONVERGE_DATABASE_URL=postgresql://$db_user:"'$(CONVERGE_DB_PASSWORD)@'"$RELEASE-pgbouncer.$SVC_SUFFIX:6432/converge"
    --env 'CONVERGE_REDIS_URL=redis://:$(CONVERGE_REDIS_PASSWORD)@'"$RELEASE-redis.$SVC_SUFFIX:6379/0"
    --env "CONVERGE_S3_ENDPOINT_URL=http://$RELEASE-minio.$SVC_SUFFIX:9000"
    --env "CONVERGE_S3_BUCKET=$S3_BUCKET"
    --env "CONVERGE_H2O_URL=http://$RELEASE-h2o.$SVC_SUFFIX:54321"
    --env "CONVERGE_BROKER_URL=http://broker-ingress.knative-eventing.svc.$CLUSTER_DOMAIN/$NAMESPACE/$BROKER"
    --env "CONVERGE_DEFAULT_MODEL=$DEFAULT_MODEL"
    --scale-min 0
    --scale-max "$max"
    --scale-init 1
    --scale-metric concurrency
    --scale-target "$target_conc"
    --concurrency-limit "$limit"
    --annotation-revision "autoscaling.knative.dev/scale-down-delay=$delay"
    --probe-liveness "$liveness"
    --probe-readiness "$readiness"
    --request cpu=250m,memory=512Mi
    --limit cpu=1,memory=1Gi
    --security-context strict
    --user 10001
    --mount /tmp=ed:tmp
  )
  # Each credential only where it is checked: the admin token and publish key in reload, the
  # ingest token in ingest; the rollout key in predict (it signs rollout.decided) and reload.
  if [ "$target" != ingest ]; then
    args+=(--env-value-from "CONVERGE_S3_ACCESS_KEY=secret:$RELEASE-minio:reader-access-key"
           --env-value-from "CONVERGE_S3_SECRET_KEY=secret:$RELEASE-minio:reader-secret-key")
  fi
  case $target in
    reload) args+=(--env-value-from "CONVERGE_ADMIN_TOKEN=secret:$RELEASE-admin:admin-token"
                   --env-value-from "CONVERGE_PUBLISH_KEY=secret:$RELEASE-admin:publish-key"
                   --env-value-from "CONVERGE_ROLLOUT_KEY=secret:$RELEASE-admin:rollout-key") ;;
    predict | predict-grpc)
      args+=(--env-value-from "CONVERGE_ROLLOUT_KEY=secret:$RELEASE-admin:rollout-key") ;;
    ingest) args+=(--env-value-from "CONVERGE_INGEST_TOKEN=secret:$RELEASE-admin:ingest-token") ;;
  esac
  if [ "$visibility" = cluster-local ]; then
    args+=(--cluster-local)
  fi
  $KN "${args[@]}"
}

only=${1:-}
while read -r target max target_conc limit delay visibility; do
  [ -n "$target" ] || continue
  if [ -z "$only" ] || [ "$only" = "$target" ]; then
    apply_function "$target" "$max" "$target_conc" "$limit" "$delay" "$visibility"
  fi
done <<<"$FUNCTIONS"
