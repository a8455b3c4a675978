"""Scenario: retained message lifecycle.

Publishes retained "first", replaces it with retained "second"; a new subscriber receives the
replay. Then clears it with an empty retained payload; another new subscriber receives nothing
retained (a live sentinel proves it subscribed). Prints
{"after_replace": [messages], "after_clear": [messages]}.
"""

from common import Client, emit, parse_args

args = parse_args(__doc__)
TOPIC = "paho/retained"

publisher = Client(args, "paho-ret-pub")
publisher.connect()
publisher.publish(TOPIC, "first", qos=1, retain=True)
publisher.publish(TOPIC, "second", qos=1, retain=True)

first = Client(args, "paho-ret-sub1")
first.connect()
first.subscribe(TOPIC, 1)
after_replace = first.wait_messages(1)
first.disconnect()

publisher.publish(TOPIC, b"", qos=1, retain=True)
second = Client(args, "paho-ret-sub2")
second.connect()
second.subscribe(TOPIC, 1)
publisher.publish(TOPIC, "sentinel", qos=1)
after_clear = second.wait_messages(1)
second.disconnect()
publisher.disconnect()
emit({"after_replace": after_replace, "after_clear": after_clear})
