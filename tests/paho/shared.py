"""Scenario: --members clients share `$share/group/paho/shared`; a publisher sends --count
QoS 1 messages. Prints {"counts": [messages per member], "payloads": [sorted payloads]}.
"""

import time

from common import Client, emit, fail, parse_args


def extra(parser):
    parser.add_argument("--members", type=int, default=3)
    parser.add_argument("--count", type=int, default=30)


args = parse_args(__doc__, extra)
members = []
for i in range(args.members):
    member = Client(args, f"paho-share-{i}")
    member.connect()
    member.subscribe("$share/group/paho/shared", 1)
    members.append(member)

publisher = Client(args, "paho-share-pub")
publisher.connect()
for i in range(args.count):
    publisher.publish("paho/shared", f"{i:03}", qos=1)

deadline = time.monotonic() + 5
while sum(len(m.messages) for m in members) < args.count:
    if time.monotonic() > deadline:
        fail(f"only {sum(len(m.messages) for m in members)} of {args.count} arrived")
    time.sleep(0.02)
payloads = sorted(msg["payload"] for m in members for msg in m.messages)
emit({"counts": [len(m.messages) for m in members], "payloads": payloads})
