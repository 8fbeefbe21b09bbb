#!/usr/bin/env bash
# Creates the SPIRE registration entries of the auth platform: one node alias for the SPIRE agents
# and one workload entry per service, keyed on the pod's Kubernetes namespace and service
# account. Safe to run again: an entry that already exists is left as it is.
#
#   spire/register-entries.sh            # uses the current kubectl context
#
# Settings (environment): TRUST_DOMAIN (auth.local), APP_NAMESPACE (auth), CLUSTER (authplat, the
# k8s_psat cluster name in server.conf/agent.conf), SPIRE_NAMESPACE (spire), SPIRE_SERVER_POD
# (spire-server-0), X509_SVID_TTL seconds (3600).
#
# The SPIRE server CLI runs inside the server pod via `kubectl exec`; flags as in SPIRE's
# `spire-server entry create|show` reference (-x509SVIDTTL needs SPIRE 1.x).
set -euo pipefail

TRUST_DOMAIN="${TRUST_DOMAIN:-auth.local}"
APP_NAMESPACE="${APP_NAMESPACE:-auth}"
CLUSTER="${CLUSTER:-authplat}"
SPIRE_NAMESPACE="${SPIRE_NAMESPACE:-spire}"
SPIRE_SERVER_POD="${SPIRE_SERVER_POD:-spire-server-0}"
X509_SVID_TTL="${X509_SVID_TTL:-3600}"
SOCKET_PATH="/tmp/spire-server/private/api.sock"

SERVICES=(auth-edge token session-identity iam-policy mfa)
# Every agent that attests with the cluster's PSAT gets this alias, so workload entries need not
# name individual nodes.
AGENT_ALIAS="spiffe://${TRUST_DOMAIN}/ns/${SPIRE_NAMESPACE}/sa/spire-agent"

spire_server() {
  kubectl exec -n "$SPIRE_NAMESPACE" "$SPIRE_SERVER_POD" -c spire-server -- \
    /opt/spire/bin/spire-server "$@" -socketPath "$SOCKET_PATH"
}

# True when an entry with this SPIFFE ID (and parent ID, when given) exists. Exits the script
# when the server cannot be asked, rather than guessing either way.
entry_exists() {
  local output
  local args=(entry show -spiffeID "$1")
  if [[ $# -ge 2 ]]; then args+=(-parentID "$2"); fi
  if ! output="$(spire_server "${args[@]}")"; then
    echo "error: cannot list SPIRE entries for $1" >&2
    exit 1
  fi
  if grep -q '^Found 0 entries' <<<"$output"; then return 1; fi
  if grep -Eq '^Found [0-9]+ entr' <<<"$output"; then return 0; fi
  echo "error: unexpected output of 'spire-server entry show': $output" >&2
  exit 1
}

# Node alias: every agent that attests with this cluster's PSAT, as spire:spire-agent, gets it.
# (A -node entry has no parent ID; SPIRE makes the server its parent.)
if entry_exists "$AGENT_ALIAS"; then
  echo "exists:  $AGENT_ALIAS (node alias)"
else
  spire_server entry create -node -spiffeID "$AGENT_ALIAS" \
    -selector "k8s_psat:cluster:${CLUSTER}" \
    -selector "k8s_psat:agent_ns:${SPIRE_NAMESPACE}" \
    -selector "k8s_psat:agent_sa:spire-agent" >/dev/null
  echo "created: $AGENT_ALIAS (node alias)"
fi

# One entry per service: pods in APP_NAMESPACE running as service account <service> receive
# spiffe://<trust domain>/ns/<namespace>/sa/<service>, the ID the services' allowlists expect.
for service in "${SERVICES[@]}"; do
  spiffe_id="spiffe://${TRUST_DOMAIN}/ns/${APP_NAMESPACE}/sa/${service}"
  if entry_exists "$spiffe_id" "$AGENT_ALIAS"; then
    echo "exists:  $spiffe_id"
    continue
  fi
  spire_server entry create -spiffeID "$spiffe_id" -parentID "$AGENT_ALIAS" \
    -selector "k8s:ns:${APP_NAMESPACE}" \
    -selector "k8s:sa:${service}" \
    -x509SVIDTTL "$X509_SVID_TTL" >/dev/null
  echo "created: $spiffe_id"
done
