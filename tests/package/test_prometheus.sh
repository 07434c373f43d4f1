#!/usr/bin/env bash
# test_prometheus.sh SOURCE_DIR - the alert rules of docs/ pass `promtool check rules`, and the
# Grafana dashboard of docs/ is a dashboard whose every query promtool can parse.
set -euo pipefail
source_dir=$1
command -v promtool >/dev/null ||
  { echo "SKIP: promtool is not installed (tools/install-deps.sh installs prometheus)"; exit 77; }
promtool check rules "$source_dir/docs/prometheus-alerts.yml"

# Each panel query of the dashboard as a recording rule, with Grafana's variables filled in:
# promtool parses every expression.
dashboard="$source_dir/docs/grafana-dashboard.json"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
{
  echo "groups:"
  echo "  - name: dashboard"
  echo "    rules:"
  n=0
  grep -o '"expr": *"[^"]*\(\\"[^"]*\)*"' "$dashboard" | sed 's/^"expr": *"//; s/"$//' |
    while IFS= read -r expr; do
      n=$((n + 1))
      expr=${expr//\\\"/\"}
      # Grafana's variables, as Grafana would fill them in
      expr=${expr//\$__rate_interval/5m}
      expr=${expr//\$instance/.*}
      printf '      - record: dashboard:query_%d\n        expr: %s\n' "$n" "'${expr//\'/\'\'}'"
    done
} >"$work/dashboard-rules.yml"
grep -q "record:" "$work/dashboard-rules.yml" || { echo "FAIL: no query in $dashboard" >&2; exit 1; }
promtool check rules "$work/dashboard-rules.yml"
grep -q '"panels"' "$dashboard" || { echo "FAIL: $dashboard has no panels" >&2; exit 1; }
