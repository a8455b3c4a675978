"""Shared plumbing for the paho-mqtt 2.x scenario scripts.

Every script performs one scenario against a broker given by --host/--port, speaks the protocol
given by --version (311 or 5), prints exactly one JSON document on stdout and exits 0. An overall
deadline (--deadline seconds) turns any hang into exit status 3 with a JSON error on stdout, so the
Rust side never waits forever.
"""

import argparse
import json
import os
import signal
import sys
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

# Timeout for each individual wait inside a scenario (connect, suback, message, ...).
STEP_TIMEOUT = 5.0


def parse_args(description, extra=None):
    """Parses the common arguments plus the scenario's own (`extra(parser)` adds them)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--version", choices=["311", "5"], default="5")
    parser.add_argument("--deadline", type=float, default=20.0)
    parser.add_argument("--transport", choices=["tcp", "websockets"], default="tcp")
    parser.add_argument("--ws-path", default="/mqtt")
    if extra:
        extra(parser)
    args = parser.parse_args()
    arm_deadline(args.deadline)
    return args


def arm_deadline(seconds):
    """Kills the whole script (exit 3) if it is still running after `seconds`."""

    def expired(*_):
        print(json.dumps({"error": f"deadline of {seconds}s exceeded"}), flush=True)
        os._exit(3)

    signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)


def fail(message):
    """Reports a scenario failure as JSON and exits 1."""
    print(json.dumps({"error": message}), flush=True)
    sys.stdout.flush()
    os._exit(1)


def protocol(version):
    return mqtt.MQTTv5 if version == "5" else mqtt.MQTTv311


class Client:
    """A paho client with blocking, bounded helpers for connect/subscribe/publish/receive."""

    def __init__(self, args, client_id, clean=True, session_expiry=None, will=None):
        self.args = args
        self.v5 = args.version == "5"
        kwargs = {
            "client_id": client_id,
            "protocol": protocol(args.version),
            "transport": args.transport,
        }
        if not self.v5:
            kwargs["clean_session"] = clean
        self.clean = clean
        self.session_expiry = session_expiry
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, **kwargs)
        if args.transport == "websockets":
            self.client.ws_set_options(path=args.ws_path)
        self.lock = threading.Condition()
        self.connack = None
        self.subacks = {}
        self.acked = set()
        self.messages = []
        self.disconnected = None
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_publish = self._on_publish
        self.client.on_message = self._on_message
        self.client.on_disconnect = self._on_disconnect
        if will:
            self.client.will_set(**will)

    # -- callbacks (network thread) ------------------------------------------------------------

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        with self.lock:
            self.connack = {
                "session_present": bool(flags.session_present),
                "reason_code": reason_code.value,
                "properties": props_to_dict(properties),
            }
            self.lock.notify_all()

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties):
        with self.lock:
            self.subacks[mid] = [rc.value for rc in reason_codes]
            self.lock.notify_all()

    def _on_publish(self, client, userdata, mid, reason_code, properties):
        with self.lock:
            self.acked.add(mid)
            self.lock.notify_all()

    def _on_message(self, client, userdata, message):
        with self.lock:
            self.messages.append(message_to_dict(message))
            self.lock.notify_all()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        with self.lock:
            self.disconnected = reason_code.value
            self.lock.notify_all()

    # -- blocking helpers ----------------------------------------------------------------------

    def wait_for(self, predicate, what, timeout=STEP_TIMEOUT):
        deadline = time.monotonic() + timeout
        with self.lock:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    fail(f"timed out waiting for {what}")
                self.lock.wait(remaining)

    def connect(self, keepalive=30):
        """Connects, starts the network loop and waits for CONNACK; returns it as a dict."""
        kwargs = {"keepalive": keepalive}
        if self.v5:
            kwargs["clean_start"] = self.clean
            if self.session_expiry is not None:
                props = Properties(PacketTypes.CONNECT)
                props.SessionExpiryInterval = self.session_expiry
                kwargs["properties"] = props
        self.client.connect(self.args.host, self.args.port, **kwargs)
        self.client.loop_start()
        self.wait_for(lambda: self.connack is not None, "CONNACK")
        if self.connack["reason_code"] != 0:
            fail(f"connection refused: {self.connack}")
        return self.connack

    def subscribe(self, topic, qos=0, **options):
        """Subscribes and waits for SUBACK; returns the granted codes."""
        if self.v5:
            opts = mqtt.SubscribeOptions(qos=qos, **options)
            _, mid = self.client.subscribe(topic, options=opts)
        else:
            _, mid = self.client.subscribe(topic, qos)
        self.wait_for(lambda: mid in self.subacks, f"SUBACK for {topic}")
        return self.subacks[mid]

    def publish(self, topic, payload, qos=0, retain=False, properties=None):
        """Publishes and, for QoS 1/2, waits until the broker completed the handshake."""
        info = self.client.publish(topic, payload, qos=qos, retain=retain, properties=properties)
        if qos > 0:
            self.wait_for(lambda: info.mid in self.acked, f"ack of {topic}")
        return info.mid

    def wait_messages(self, count, timeout=STEP_TIMEOUT):
        """Waits until `count` messages arrived; returns all received so far."""
        self.wait_for(lambda: len(self.messages) >= count, f"{count} messages", timeout)
        with self.lock:
            return list(self.messages)

    def disconnect(self):
        self.client.disconnect()
        self.client.loop_stop()

    def kill(self):
        """Ends the connection without DISCONNECT: closes the socket under paho's feet."""
        sock = self.client.socket()
        self.client.loop_stop()
        if sock is not None:
            sock.close()


def props_to_dict(properties):
    """Properties as a JSON-friendly dict; binary values (correlation data) become hex strings
    and user properties a list of [key, value] pairs."""
    if properties is None:
        return {}
    return properties.json()


def message_to_dict(message):
    return {
        "topic": message.topic,
        "payload": message.payload.decode("utf-8", errors="replace"),
        "qos": message.qos,
        "retain": bool(message.retain),
        "dup": bool(message.dup),
        "properties": props_to_dict(getattr(message, "properties", None)),
    }


def emit(result):
    """Prints the scenario's result and exits 0."""
    print(json.dumps(result), flush=True)
    os._exit(0)
