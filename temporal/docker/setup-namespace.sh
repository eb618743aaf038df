#!/bin/sh
# Creates the namespace and registers Podplane's custom search attributes (compose `temporal-setup` job).
# The attribute list must match SEARCH_ATTRIBUTES in src/workflows/shared.ts (a test checks it).
set -eu
: "${TEMPORAL_ADDRESS:?}"
NAMESPACE=${TEMPORAL_NAMESPACE:-default}
SEARCH_ATTRIBUTES="TenantId CustomerId CloudPodId SubscriptionId InvoiceId PodplaneStatus"

until temporal operator cluster health --address "$TEMPORAL_ADDRESS" >/dev/null 2>&1; do
  echo "waiting for Temporal at $TEMPORAL_ADDRESS"; sleep 1
done
temporal operator namespace describe --address "$TEMPORAL_ADDRESS" --namespace "$NAMESPACE" >/dev/null 2>&1 ||
  temporal operator namespace create --address "$TEMPORAL_ADDRESS" --namespace "$NAMESPACE" --retention 72h
for name in $SEARCH_ATTRIBUTES; do
  temporal operator search-attribute create --address "$TEMPORAL_ADDRESS" --namespace "$NAMESPACE" \
    --name "$name" --type Keyword --yes 2>/dev/null || echo "search attribute $name already registered"
done
echo "namespace $NAMESPACE ready"
