#!/bin/sh
# A wavectl [notify] hook for a Slack (or Mattermost, or Teams workflow) incoming
# webhook, which wants {"text": "..."}: one line saying what happened, for on-call.
#
#   [notify]
#   command = "../examples/notify/slack.sh"
#   events = ["unhealthy", "paused", "rolled-back", "incomplete", "done"]
#
#   WAVECTL_SLACK_URL=https://hooks.slack.com/services/T000/B000/XXXX wavectl apply ...
#
# The event (the JSON `wavectl --json` prints) is on stdin; jq turns it into the text.
set -eu
url=${WAVECTL_SLACK_URL:?set WAVECTL_SLACK_URL to the incoming webhook URL}
jq --compact-output \
    --arg run "$WAVECTL_RUN" --arg rollout "$WAVECTL_ROLLOUT" --arg kind "$WAVECTL_EVENT" '
    { text: ("wavectl: rollout *" + $rollout + "*, run `" + $run + "`: " + $kind
        + (if .event == "summary" then " — " + .outcome
           elif .event == "verdict" then " — " + .host + " is " + .verdict.health
           else "" end)) }' |
    curl --fail --silent --show-error --max-time 20 \
        --header 'Content-Type: application/json' --data-binary @- "$url"
