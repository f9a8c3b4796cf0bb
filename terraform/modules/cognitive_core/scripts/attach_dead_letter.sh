#!/usr/bin/env bash
# Attach the dead-letter policy to the Pub/Sub subscription Eventarc created for the
# retrain trigger (Terraform cannot configure that subscription). Idempotent.
# Called by terraform/modules/cognitive_core/pubsub.tf; can be run by hand with the
# same variables (see `terraform output retrain_trigger`).
set -euo pipefail
: "${PROJECT:?}" "${TRIGGER:?}" "${REGION:?}" "${DEAD_LETTER_TOPIC:?}" "${MAX_DELIVERY_ATTEMPTS:?}" "${PUBSUB_AGENT:?}"

subscription=$(gcloud eventarc triggers describe "${TRIGGER##*/}" \
  --project "$PROJECT" --location "$REGION" \
  --format 'value(transport.pubsub.subscription)')
if [[ -z "$subscription" ]]; then
  echo "trigger $TRIGGER has no Pub/Sub subscription yet" >&2
  exit 1
fi

gcloud pubsub subscriptions update "$subscription" --project "$PROJECT" \
  --dead-letter-topic "$DEAD_LETTER_TOPIC" \
  --max-delivery-attempts "$MAX_DELIVERY_ATTEMPTS" \
  --min-retry-delay 10s --max-retry-delay 600s

# Pub/Sub's service agent must be able to pull from the source subscription to
# forward a message to the dead-letter topic.
gcloud pubsub subscriptions add-iam-policy-binding "$subscription" --project "$PROJECT" \
  --member "serviceAccount:$PUBSUB_AGENT" --role roles/pubsub.subscriber >/dev/null

echo "dead-letter policy attached: $subscription -> $DEAD_LETTER_TOPIC (after $MAX_DELIVERY_ATTEMPTS attempts)"
