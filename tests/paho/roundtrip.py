"""Scenario: one client subscribes at --qos, another publishes --count messages at --qos.

Prints {"suback": [codes], "received": [messages in arrival order]}.
"""

from common import Client, emit, parse_args


def extra(parser):
    parser.add_argument("--qos", type=int, choices=[0, 1, 2], default=1)
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--topic", default="paho/roundtrip")


args = parse_args(__doc__, extra)
subscriber = Client(args, "paho-rt-sub")
subscriber.connect()
suback = subscriber.subscribe(args.topic, args.qos)
publisher = Client(args, "paho-rt-pub")
publisher.connect()
for i in range(args.count):
    publisher.publish(args.topic, f"msg-{i}", qos=args.qos)
received = subscriber.wait_messages(args.count)
publisher.disconnect()
subscriber.disconnect()
emit({"suback": suback, "received": received})
