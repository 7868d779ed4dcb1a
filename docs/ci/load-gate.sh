#!/bin/sh
# The release gate as a plain shell recipe (docs/ci/github-actions.yml runs it):
# a short scenario with thresholds against the stack (brought up if it is not
# running) or a TARGET, its report.html kept in one known place, and the
# exit status of `python -m loadtest`: 0 when every threshold held, 99 when
# one failed (it is named on stderr), 1 or 2 when the run could not be made.
#
#   docs/ci/load-gate.sh                      # the local stack
#   docs/ci/load-gate.sh --target https://staging.example.org
#
# Environment: SCENARIO (default docs/ci/gate.toml), REPORTS (default
# reports/gate: each run's folder, and report.html of the latest beside them).
# Needs .venv (make venv); any other argument goes to python -m loadtest.
set -u
cd "$(dirname "$0")/../.."
scenario="${SCENARIO:-docs/ci/gate.toml}"
reports="${REPORTS:-reports/gate}"
status=0
.venv/bin/python -m loadtest "$scenario" --reports "$reports" "$@" || status=$?
latest=$(ls -1d "$reports"/*/ 2>/dev/null | tail -n 1)
if [ -n "$latest" ] && [ -f "${latest}report.html" ]; then
    cp "${latest}report.html" "$reports/report.html"
    echo "load gate: report in $reports/report.html"
fi
exit "$status"
