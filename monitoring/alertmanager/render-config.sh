#!/bin/sh
# Write Alertmanager's configuration for the stack to stdout, its receiver
# from the environment (docs/observability.md, "Alerts"):
#   ALERT_WEBHOOK_URL          POST every notification as JSON to this URL
#   ALERT_EMAIL_TO             mail it to this address, through
#   ALERT_SMTP_SMARTHOST       host:port of the SMTP server (STARTTLS required)
#   ALERT_SMTP_FROM            the sender address
#   ALERT_SMTP_AUTH_USERNAME   optional SMTP login, with
#   ALERT_SMTP_AUTH_PASSWORD
# Both, one, or neither: without a receiver the alerts stay in Alertmanager
# (its API, `amtool alert query`) and a line on stderr says so.
# A bad setting exits 2 with one line naming it.
set -eu
: "${ALERT_WEBHOOK_URL:=}" "${ALERT_EMAIL_TO:=}" "${ALERT_SMTP_SMARTHOST:=}" "${ALERT_SMTP_FROM:=}"
: "${ALERT_SMTP_AUTH_USERNAME:=}" "${ALERT_SMTP_AUTH_PASSWORD:=}"

fail() {
    echo "alertmanager: $*" >&2
    exit 2
}
# A YAML single-quoted scalar: any character but a line break, ' doubled.
quote() {
    printf "'%s'" "$(printf '%s' "$1" | sed "s/'/''/g")"
}
for name in ALERT_WEBHOOK_URL ALERT_EMAIL_TO ALERT_SMTP_SMARTHOST ALERT_SMTP_FROM \
    ALERT_SMTP_AUTH_USERNAME ALERT_SMTP_AUTH_PASSWORD; do
    eval "value=\$$name"
    [ "$(printf '%s' "$value" | wc -l)" -eq 0 ] || fail "$name must be one line"
done
case $ALERT_WEBHOOK_URL in
    '' | http://?* | https://?*) ;;
    *) fail "ALERT_WEBHOOK_URL must be an http:// or https:// URL, got '$ALERT_WEBHOOK_URL'" ;;
esac
case $ALERT_EMAIL_TO in
    '' | ?*@?*) ;;
    *) fail "ALERT_EMAIL_TO must be an e-mail address, got '$ALERT_EMAIL_TO'" ;;
esac
if [ -n "$ALERT_EMAIL_TO" ]; then
    case $ALERT_SMTP_SMARTHOST in
        ?*:[0-9]*) ;;
        *) fail "ALERT_SMTP_SMARTHOST must be host:port (ALERT_EMAIL_TO is set), got '$ALERT_SMTP_SMARTHOST'" ;;
    esac
    case ${ALERT_SMTP_SMARTHOST##*:} in
        *[!0-9]*) fail "ALERT_SMTP_SMARTHOST must be host:port, got '$ALERT_SMTP_SMARTHOST'" ;;
    esac
    case $ALERT_SMTP_FROM in
        ?*@?*) ;;
        *) fail "ALERT_SMTP_FROM must be an e-mail address (ALERT_EMAIL_TO is set), got '$ALERT_SMTP_FROM'" ;;
    esac
    if [ -n "$ALERT_SMTP_AUTH_PASSWORD" ] && [ -z "$ALERT_SMTP_AUTH_USERNAME" ]; then
        fail "ALERT_SMTP_AUTH_PASSWORD is set but ALERT_SMTP_AUTH_USERNAME is empty"
    fi
fi

# Alertmanager's defaults otherwise: a group's first notification 30 s after
# its first alert, changes every 5 min, a reminder every 4 h.
echo "route:"
echo "  receiver: default"
echo "  group_by: [alertname, job, instance]"
echo "receivers:"
echo "  - name: default"
if [ -n "$ALERT_WEBHOOK_URL" ]; then
    echo "    webhook_configs:"
    echo "      - url: $(quote "$ALERT_WEBHOOK_URL")"
fi
if [ -n "$ALERT_EMAIL_TO" ]; then
    echo "    email_configs:"
    echo "      - to: $(quote "$ALERT_EMAIL_TO")"
    echo "        from: $(quote "$ALERT_SMTP_FROM")"
    echo "        smarthost: $(quote "$ALERT_SMTP_SMARTHOST")"
    if [ -n "$ALERT_SMTP_AUTH_USERNAME" ]; then
        echo "        auth_username: $(quote "$ALERT_SMTP_AUTH_USERNAME")"
        echo "        auth_password: $(quote "$ALERT_SMTP_AUTH_PASSWORD")"
    fi
fi
if [ -z "$ALERT_WEBHOOK_URL$ALERT_EMAIL_TO" ]; then
    echo "alertmanager: no receiver configured (ALERT_WEBHOOK_URL, ALERT_EMAIL_TO):" \
        "alerts are kept in Alertmanager only (its API; amtool alert query)" >&2
fi
