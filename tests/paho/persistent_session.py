"""Scenario: a persistent session collects QoS 1/2 messages while its client is offline.

The subscriber connects with clean session 0 (3.1.1) / clean start 0 and session expiry 300
(5.0), subscribes at --qos and disconnects; a publisher sends --count messages; the subscriber
reconnects the same way. Prints {"session_present": bool, "received": [messages]}.
"""

from common import Client, emit, parse_args


def extra(parser):
    parser.add_argument("--qos", type=int, choices=[1, 2], default=1)
    parser.add_argument("--count", type=int, default=5)


args = parse_args(__doc__, extra)
TOPIC = "paho/offline"

subscriber = Client(args, "paho-persistent", clean=False, session_expiry=300)
subscriber.connect()
subscriber.subscribe(TOPIC, args.qos)
subscriber.disconnect()

publisher = Client(args, "paho-offline-pub")
publisher.connect()
for i in range(args.count):
    publisher.publish(TOPIC, f"offline-{i}", qos=args.qos)
publisher.disconnect()

subscriber = Client(args, "paho-persistent", clean=False, session_expiry=300)
connack = subscriber.connect()
received = subscriber.wait_messages(args.count)
subscriber.disconnect()
emit({"session_present": connack["session_present"], "received": received})
