"""Scenario: a client with a will goes away; report what a watcher subscribed to the will topic
received.

With --graceful the client sends DISCONNECT (no will expected); otherwise its socket is closed
without DISCONNECT (will expected). Afterwards a sentinel message is published on the will topic
so the watcher knows everything before it has arrived. Prints {"received": [messages]}, the
sentinel last.
"""

import time

from common import Client, emit, parse_args


def extra(parser):
    parser.add_argument("--graceful", action="store_true")
    parser.add_argument("--retain", action="store_true")


args = parse_args(__doc__, extra)
TOPIC = "paho/will"

watcher = Client(args, "paho-will-watcher")
watcher.connect()
watcher.subscribe(TOPIC, 1)

mortal = Client(
    args,
    "paho-will-mortal",
    will={"topic": TOPIC, "payload": "gone", "qos": 1, "retain": args.retain},
)
mortal.connect()
if args.graceful:
    mortal.disconnect()
else:
    mortal.kill()
    # The will is published when the broker notices; wait for it before the sentinel.
    watcher.wait_messages(1)
# Give a (wrongly) published will a moment to overtake the sentinel.
time.sleep(0.2)
sentinel = Client(args, "paho-will-sentinel")
sentinel.connect()
sentinel.publish(TOPIC, "sentinel", qos=1)
watcher.wait_for(lambda: any(m["payload"] == "sentinel" for m in watcher.messages), "sentinel")
sentinel.disconnect()
watcher.disconnect()
emit({"received": watcher.messages})
