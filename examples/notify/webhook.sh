#!/bin/sh
# A wavectl [notify] hook: POST each event to a webhook, as the JSON `wavectl --json`
# prints for it (on this hook's stdin). In the rollout spec:
#
#   [notify]
#   command = "../examples/notify/webhook.sh"     # relative to the spec's directory
#   events = ["paused", "rolled-back", "done"]
#
# The URL comes from the controller's environment, never from the spec (it is a secret):
#   WAVECTL_WEBHOOK_URL=https://hooks.example.com/wavectl wavectl apply rollouts/x.toml
# wavectl kills the hook after `notify.timeout` (30 s by default); curl gives up first.
set -eu
url=${WAVECTL_WEBHOOK_URL:?set WAVECTL_WEBHOOK_URL to the webhook URL}
exec curl --fail --silent --show-error --max-time 20 \
    --header 'Content-Type: application/json' \
    --header "X-Wavectl-Event: ${WAVECTL_EVENT}" \
    --data-binary @- "$url"
