#!/usr/bin/env bash
# Broker (with retries, exponential backoff and a dead-letter Broker) and the two Triggers:
# features.ingest -> ingest, model.published and rollout.decided -> reload. Safe to run again: existing objects are
# updated instead of created.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=env.sh
. "$here/env.sh"

# With KN_DRY_RUN set nothing is looked up: every object is printed as a create.
exists() {
  [ -z "${KN_DRY_RUN:-}" ] || return 1
  $KN "$1" describe "$2" --namespace "$NAMESPACE" >/dev/null 2>&1
}

if ! exists broker "$DEAD_LETTER_BROKER"; then
  $KN broker create "$DEAD_LETTER_BROKER" --namespace "$NAMESPACE" --class MTChannelBasedBroker
fi

delivery=(
  --dl-sink "broker:$DEAD_LETTER_BROKER"
  --retry 5
  --backoff-policy exponential
  --backoff-delay PT0.5S
)
if exists broker "$BROKER"; then
  $KN broker update "$BROKER" --namespace "$NAMESPACE" "${delivery[@]}"
else
  $KN broker create "$BROKER" --namespace "$NAMESPACE" --class MTChannelBasedBroker "${delivery[@]}"
fi

# kn trigger has no delivery flags: Triggers inherit the Broker's retries and dead-letter sink.
# The functions accept events only on POST /events, so the sink is the Service's URL with that path.
# trigger-name  event-type  function
TRIGGERS="
ingest features.ingest ingest
reload model.published reload
rollout rollout.decided reload
"
while read -r name type target; do
  [ -n "$name" ] || continue
  verb=create
  if exists trigger "$RELEASE-$name"; then verb=update; fi
  $KN trigger "$verb" "$RELEASE-$name" --namespace "$NAMESPACE" \
    --broker "$BROKER" --filter "type=$type" --sink "http://$RELEASE-$target.$SVC_SUFFIX/events"
done <<<"$TRIGGERS"
