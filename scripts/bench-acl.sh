#!/usr/bin/env bash
# What an ACL of many rules costs per message, counted in instructions rather than seconds.
#
# Usage: scripts/bench-acl.sh [MESSAGES] [RULES] [TOPICS]
#        (defaults: 20000 messages, 10000 rules, 1 topic)
#
# Runs the release `tern-broker` under `valgrind --tool=callgrind` four times: without an ACL
# and with RULES rules, each once carrying no message and once carrying MESSAGES QoS 0 messages
# from one `mosquitto_pub` to one `mosquitto_sub`. The difference between a configuration's two
# runs, divided by MESSAGES, is the broker's instructions per message with startup, the ACL's
# loading and the clients' connects taken out. Instruction counts barely move with machine
# load, so two builds or two configurations compare reliably on a noisy machine, where
# throughput runs of `tern-bench --acl-rules` differ by ±15%.
#
# The rules are those of `tern-bench --acl-rules`: half allow one `device-N` user its own
# `devices/N/#`, half deny everyone `restricted/N/#`; none concerns the benchmark's anonymous
# clients, which the default action (allow) lets through. Every message therefore pays for a
# full lookup in a large rule index without being refused.
#
# A connection remembers its last few publish decisions, so a publisher repeating one topic
# (TOPICS=1, sent by `mosquitto_pub -l`) mostly measures that memory. TOPICS=16 cycles through
# 16 topics (sent by a paho-mqtt script), more than a connection remembers: every message then
# pays for a full rule lookup.
#
# Needs valgrind (with callgrind_annotate) and mosquitto-clients (scripts/install-test-deps.sh installs the latter).
# TERN_BROKER_BIN=path measures another build; BENCH_ACL_KEEP=dir keeps the four callgrind
# profiles there (callgrind.{none,rules}.{0,MESSAGES}) for `callgrind_annotate`. Takes under a
# minute.
set -euo pipefail
cd "$(dirname "$0")/.."

messages="${1:-20000}"
rules="${2:-10000}"
topics="${3:-1}"
port=18830
metrics_port=19090

for tool in valgrind mosquitto_pub mosquitto_sub; do
    command -v "$tool" >/dev/null || { echo "bench-acl: $tool is not installed" >&2; exit 1; }
done

broker="${TERN_BROKER_BIN:-}"
if [[ -z "$broker" ]]; then
    cargo build --release --locked -p tern-broker >&2
    broker="target/release/tern-broker"
fi

work="$(mktemp -d -t tern-bench-acl.XXXXXX)"
trap 'rm -rf "$work"' EXIT

# One configuration directory without ACL, one with the rules.
write_config() { # dir, extra yaml
    mkdir -p "$1"
    cat >"$1/broker.yaml" <<EOF
listeners:
  - { name: mqtt, port: $port, bind: 127.0.0.1, protocol: mqtt }
metrics: { bind: 127.0.0.1, port: $metrics_port }
limits: { maxQueuedMessages: $((messages + 1000)) }
auth: { allowAnonymous: true }
$2
EOF
}
write_config "$work/none" ""
write_config "$work/rules" "acl: { defaultAction: allow, files: [policies.yaml] }"
awk -v rules="$rules" 'BEGIN {
    print "- name: bench"; print "  rules:"
    for (n = 0; n < rules; n++) {
        if (n % 2 == 0)
            printf "    - { effect: Allow, principals: [{ username: device-%d }], actions: [publish, subscribe], topics: [\"devices/%d/#\"] }\n", n, n
        else
            printf "    - { effect: Deny, actions: [publish, subscribe], topics: [\"restricted/%d/#\"] }\n", n
    }
}' >"$work/rules/policies.yaml"
seq 1 "$messages" | sed 's/^/message /' >"$work/payloads"

# Sends `count` QoS 0 messages from one connection, cycling through $topics topics.
publish() { # count
    if ((topics == 1)); then
        head -n "$1" "$work/payloads" |
            timeout 600 mosquitto_pub -h 127.0.0.1 -p "$port" -t bench/a/b -q 0 -l
    else
        timeout 600 python3 - "$port" "$1" "$topics" <<'PY'
import sys
import paho.mqtt.client as mqtt
port, count, topics = (int(arg) for arg in sys.argv[1:])
client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
client.max_queued_messages_set(0)
client.connect("127.0.0.1", port)
client.loop_start()
info = None
for n in range(count):
    info = client.publish(f"bench/{n % topics}/b", f"message {n}", qos=0)
if info is not None:
    info.wait_for_publish(timeout=600)
client.disconnect()
client.loop_stop()
PY
    fi
}

# Instructions the broker executed for one run carrying `count` messages.
run() { # config dir, count
    local out="$work/callgrind.out" log="$work/broker.log" received="$work/received"
    rm -f "$out"
    : >"$received"
    valgrind --tool=callgrind --callgrind-out-file="$out" "$broker" --config "$1" \
        >"$log" 2>&1 &
    local pid=$!
    # Under valgrind the broker starts slowly; wait (bounded) until it takes a retained marker.
    local tries=0
    until mosquitto_pub -h 127.0.0.1 -p "$port" -t bench/ready -r -m ready 2>/dev/null; do
        tries=$((tries + 1))
        if ((tries > 240)) || ! kill -0 "$pid" 2>/dev/null; then
            echo "bench-acl: the broker did not start; its log:" >&2
            cat "$log" >&2
            exit 1
        fi
        sleep 0.5
    done
    # The subscriber's first message is the marker: from then on its subscription is in place.
    timeout 600 mosquitto_sub -h 127.0.0.1 -p "$port" -t 'bench/#' -q 0 -C "$(($2 + 1))" \
        >"$received" &
    local sub=$!
    tries=0
    until [[ -s "$received" ]]; do
        tries=$((tries + 1))
        ((tries < 240)) || { echo "bench-acl: the subscriber got no marker" >&2; exit 1; }
        sleep 0.25
    done
    publish "$2"
    wait "$sub" || { echo "bench-acl: the subscriber did not get all $2 messages" >&2; exit 1; }
    kill -TERM "$pid"
    wait "$pid" || true
    [[ -z "${BENCH_ACL_KEEP:-}" ]] || cp "$out" "$BENCH_ACL_KEEP/callgrind.$(basename "$1").$2"
    # Two numbers: everything the broker executed, and what the publish permission check
    # (ACL view, remembered decisions, rule lookup, its counters) executed within that.
    local total check
    total="$(awk '/^summary:/ { print $2 }' "$out")"
    check="$(callgrind_annotate --inclusive=yes --threshold=100 "$out" |
        awk '/Connection<S>>::may_publish/ { gsub(",", "", $1); if ($1 + 0 > max) max = $1 + 0 }
             END { print max + 0 }')"
    echo "$total $check"
}

# "total check": instructions per message, in all and in the permission check.
per_message() { # config dir
    local idle busy
    read -r -a idle <<<"$(run "$1" 0)"
    read -r -a busy <<<"$(run "$1" "$messages")"
    echo $(((busy[0] - idle[0]) / messages)) $(((busy[1] - idle[1]) / messages))
}

echo "bench-acl: $messages QoS 0 messages on $topics topic(s), 1 publisher -> 1 subscriber," \
    "under callgrind" >&2
read -r -a without <<<"$(per_message "$work/none")"
read -r -a with <<<"$(per_message "$work/rules")"
echo "instructions per message without ACL: ${without[0]} (permission check: ${without[1]})"
echo "instructions per message with $rules rules: ${with[0]} (permission check: ${with[1]})"
# The total moves by a few percent from run to run (how many messages each read of a socket
# brings depends on timing); the permission check's share does not.
awk -v a="${with[0]}" -v b="${without[0]}" -v ca="${with[1]}" -v cb="${without[1]}" 'BEGIN {
    printf "ratio: %.3f (%+.1f%%); the check alone adds %d instructions, %.1f%% of the total without ACL\n",
        a / b, (a / b - 1) * 100, ca - cb, (ca - cb) * 100 / b
}'
