"""Scenario (MQTT 5.0): publish one message carrying every application property and report what
the subscriber received.

Prints {"received": message} where message["properties"] holds PayloadFormatIndicator,
ContentType, ResponseTopic, CorrelationData (hex), UserProperty ([[k, v], ...]) and
MessageExpiryInterval as delivered by the broker.
"""

from common import Client, PacketTypes, Properties, emit, parse_args

args = parse_args(__doc__)
subscriber = Client(args, "paho-props-sub")
subscriber.connect()
subscriber.subscribe("paho/props", 1)
publisher = Client(args, "paho-props-pub")
publisher.connect()
props = Properties(PacketTypes.PUBLISH)
props.PayloadFormatIndicator = 1
props.ContentType = "application/json"
props.ResponseTopic = "paho/props/reply"
props.CorrelationData = b"\x00\x01corr"
props.UserProperty = [("origin", "paho"), ("origin", "again"), ("k", "v")]
props.MessageExpiryInterval = 3600
publisher.publish("paho/props", '{"x": 1}', qos=1, properties=props)
received = subscriber.wait_messages(1)
publisher.disconnect()
subscriber.disconnect()
emit({"received": received[0]})
