# Shared settings of the kn scripts; every value can be overridden from the environment.
# The defaults match the Helm chart installed as release "converge" in namespace "converge",
# so kn and Helm deployments name the same Secrets, Services and Broker.
: "${NAMESPACE:=converge}"
: "${RELEASE:=converge}"
: "${IMAGE:=ghcr.io/converge-ml/converge-functions:0.1.0}"
: "${CLUSTER_DOMAIN:=cluster.local}"
: "${DEFAULT_MODEL:=demo}"
: "${S3_BUCKET:=converge-models}"
: "${SERVICE_ACCOUNT:=$RELEASE}"
# KN="echo kn" KN_DRY_RUN=1 prints the commands instead of running them.
: "${KN:=kn}"

SVC_SUFFIX="$NAMESPACE.svc.$CLUSTER_DOMAIN"
BROKER="$RELEASE-broker"
DEAD_LETTER_BROKER="$RELEASE-dead-letter"
