#!/usr/bin/env python3
"""Raw AMQP 0-9-1 edge-case probe: compares how two brokers answer bad or
unusual protocol input.

Stdlib only. Every scenario uses its own connection(s); the client does the
handshake itself (protocol header, start-ok PLAIN, tune-ok echoing the
server's channel_max/frame_max with heartbeat 0, open vhost '/').

For each scenario it records what the broker answers: decoded reply frames
(connection.close / channel.close as code, text, class, method; other methods
by name with their interesting fields), "socket closed", or "silence(Ns)".
After the scenario, if the connection is still usable, any server-initiated
channel.close is acknowledged and a liveness check opens channel 99
("[alive]" when channel.open-ok comes back).

Usage:
  python3 interop/protocol/probe.py                       # RabbitMQ :5672 vs Warren :5690
  python3 interop/protocol/probe.py --a 127.0.0.1:5672 --b 127.0.0.1:5690
  python3 interop/protocol/probe.py --only ack_ --jobs 4  # subset (substring of scenario id)
  python3 interop/protocol/probe.py --single 127.0.0.1:5690 --only hdr_   # one broker, print answers
  python3 interop/protocol/probe.py --list

Outputs (next to this script unless --out-dir): DIFF.md (differences table,
then identical scenarios), results-a.json / results-b.json (raw answers).
"""

import argparse
import concurrent.futures
import json
import os
import random
import re
import socket
import string
import struct
import sys
import threading
import time

FRAME_METHOD, FRAME_HEADER, FRAME_BODY, FRAME_HEARTBEAT = 1, 2, 3, 8
FRAME_END = 0xCE
PROTO_HEADER = b"AMQP\x00\x00\x09\x01"

METHOD_NAMES = {
    (10, 10): "connection.start", (10, 11): "connection.start-ok",
    (10, 20): "connection.secure", (10, 21): "connection.secure-ok",
    (10, 30): "connection.tune", (10, 31): "connection.tune-ok",
    (10, 40): "connection.open", (10, 41): "connection.open-ok",
    (10, 50): "connection.close", (10, 51): "connection.close-ok",
    (10, 60): "connection.blocked", (10, 61): "connection.unblocked",
    (10, 70): "connection.update-secret", (10, 71): "connection.update-secret-ok",
    (20, 10): "channel.open", (20, 11): "channel.open-ok",
    (20, 20): "channel.flow", (20, 21): "channel.flow-ok",
    (20, 40): "channel.close", (20, 41): "channel.close-ok",
    (40, 10): "exchange.declare", (40, 11): "exchange.declare-ok",
    (40, 20): "exchange.delete", (40, 21): "exchange.delete-ok",
    (40, 30): "exchange.bind", (40, 31): "exchange.bind-ok",
    (40, 40): "exchange.unbind", (40, 51): "exchange.unbind-ok",
    (50, 10): "queue.declare", (50, 11): "queue.declare-ok",
    (50, 20): "queue.bind", (50, 21): "queue.bind-ok",
    (50, 30): "queue.purge", (50, 31): "queue.purge-ok",
    (50, 40): "queue.delete", (50, 41): "queue.delete-ok",
    (50, 50): "queue.unbind", (50, 51): "queue.unbind-ok",
    (60, 10): "basic.qos", (60, 11): "basic.qos-ok",
    (60, 20): "basic.consume", (60, 21): "basic.consume-ok",
    (60, 30): "basic.cancel", (60, 31): "basic.cancel-ok",
    (60, 40): "basic.publish", (60, 50): "basic.return",
    (60, 60): "basic.deliver", (60, 70): "basic.get",
    (60, 71): "basic.get-ok", (60, 72): "basic.get-empty",
    (60, 80): "basic.ack", (60, 90): "basic.reject",
    (60, 100): "basic.recover-async", (60, 110): "basic.recover",
    (60, 111): "basic.recover-ok", (60, 120): "basic.nack",
    (85, 10): "confirm.select", (85, 11): "confirm.select-ok",
    (90, 10): "tx.select", (90, 11): "tx.select-ok",
    (90, 20): "tx.commit", (90, 21): "tx.commit-ok",
    (90, 30): "tx.rollback", (90, 31): "tx.rollback-ok",
}


# --------------------------------------------------------------------------
# encoding

def b_(s):
    return s.encode() if isinstance(s, str) else s


def octet(v):
    return struct.pack(">B", v)


def short(v):
    return struct.pack(">H", v)


def long_(v):
    return struct.pack(">I", v)


def longlong(v):
    return struct.pack(">Q", v)


def ss(s):
    s = b_(s)
    return struct.pack(">B", len(s)) + s


def ls(s):
    s = b_(s)
    return struct.pack(">I", len(s)) + s


def bits(*flags):
    v = 0
    for i, f in enumerate(flags):
        if f:
            v |= 1 << i
    return octet(v)


def field_value(v):
    """Python value -> tagged field value. Tuples give an explicit tag:
    ('I', -1), ('l', -1), ('S', 'x'), ('raw', b'...') (raw bytes after key)."""
    if isinstance(v, tuple):
        tag, val = v
        if tag == "raw":
            return val
        if tag == "t":
            return b"t" + octet(1 if val else 0)
        if tag == "b":
            return b"b" + struct.pack(">b", val)
        if tag == "s":
            return b"s" + struct.pack(">h", val)
        if tag == "I":
            return b"I" + struct.pack(">i", val)
        if tag == "l":
            return b"l" + struct.pack(">q", val)
        if tag == "S":
            return b"S" + ls(val)
        if tag == "d":
            return b"d" + struct.pack(">d", val)
        raise ValueError(tag)
    if isinstance(v, bool):
        return b"t" + octet(1 if v else 0)
    if isinstance(v, int):
        if -2 ** 31 <= v < 2 ** 31:
            return b"I" + struct.pack(">i", v)
        return b"l" + struct.pack(">q", v)
    if isinstance(v, (str, bytes)):
        return b"S" + ls(v)
    if isinstance(v, dict):
        return b"F" + table(v)
    if isinstance(v, list):
        body = b"".join(field_value(x) for x in v)
        return b"A" + long_(len(body)) + body
    raise TypeError(type(v))


def table(d):
    d = d or {}
    body = b"".join(ss(k) + field_value(v) for k, v in d.items())
    return long_(len(body)) + body


def frame(ftype, ch, payload, end=FRAME_END):
    return struct.pack(">BHI", ftype, ch, len(payload)) + payload + octet(end)


def mframe(ch, method_payload):
    return frame(FRAME_METHOD, ch, method_payload)


def header_payload(size, cls=60, weight=0, flags=0, props=b""):
    return struct.pack(">HHQH", cls, weight, size, flags) + props


def props(content_type=None, headers=None, delivery_mode=None, priority=None,
          reply_to=None, expiration=None, message_id=None, user_id=None):
    flags, out = 0, b""
    if content_type is not None:
        flags |= 1 << 15
        out += ss(content_type)
    if headers is not None:
        flags |= 1 << 13
        out += table(headers)
    if delivery_mode is not None:
        flags |= 1 << 12
        out += octet(delivery_mode)
    if priority is not None:
        flags |= 1 << 11
        out += octet(priority)
    if reply_to is not None:
        flags |= 1 << 9
        out += ss(reply_to)
    if expiration is not None:
        flags |= 1 << 8
        out += ss(expiration)
    if message_id is not None:
        flags |= 1 << 7
        out += ss(message_id)
    if user_id is not None:
        flags |= 1 << 4
        out += ss(user_id)
    return flags, out


class M:
    """Method payload builders (class id + method id + arguments)."""

    @staticmethod
    def raw(cls, mid, args=b""):
        return struct.pack(">HH", cls, mid) + args

    # connection
    @staticmethod
    def start_ok(mechanism="PLAIN", response=b"\x00guest\x00guest", caps=True, locale="en_US"):
        cp = {"product": "warren-probe", "platform": "python", "version": "1"}
        if caps:
            cp["capabilities"] = {
                "publisher_confirms": True, "exchange_exchange_bindings": True,
                "basic.nack": True, "consumer_cancel_notify": True,
                "connection.blocked": True, "authentication_failure_close": True,
                "per_consumer_qos": True,
            }
        return M.raw(10, 11, table(cp) + ss(mechanism) + ls(response) + ss(locale))

    @staticmethod
    def tune_ok(channel_max, frame_max, heartbeat=0):
        return M.raw(10, 31, struct.pack(">HIH", channel_max, frame_max, heartbeat))

    @staticmethod
    def conn_open(vhost="/"):
        return M.raw(10, 40, ss(vhost) + ss("") + bits(0))

    @staticmethod
    def conn_close(code=200, text="bye", cls=0, mid=0):
        return M.raw(10, 50, short(code) + ss(text) + short(cls) + short(mid))

    @staticmethod
    def conn_close_ok():
        return M.raw(10, 51)

    # channel
    @staticmethod
    def ch_open():
        return M.raw(20, 10, ss(""))

    @staticmethod
    def ch_flow(active):
        return M.raw(20, 20, bits(active))

    @staticmethod
    def ch_close(code=200, text="bye", cls=0, mid=0):
        return M.raw(20, 40, short(code) + ss(text) + short(cls) + short(mid))

    @staticmethod
    def ch_close_ok():
        return M.raw(20, 41)

    # exchange
    @staticmethod
    def ex_declare(name, type_="direct", passive=0, durable=0, auto_delete=0, internal=0,
                   nowait=0, args=None):
        return M.raw(40, 10, short(0) + ss(name) + ss(type_) +
                     bits(passive, durable, auto_delete, internal, nowait) + table(args))

    @staticmethod
    def ex_delete(name, if_unused=0, nowait=0):
        return M.raw(40, 20, short(0) + ss(name) + bits(if_unused, nowait))

    @staticmethod
    def ex_bind(dest, src, rk="", nowait=0, args=None):
        return M.raw(40, 30, short(0) + ss(dest) + ss(src) + ss(rk) + bits(nowait) + table(args))

    # queue
    @staticmethod
    def q_declare(name, passive=0, durable=0, exclusive=0, auto_delete=0, nowait=0, args=None):
        return M.raw(50, 10, short(0) + ss(name) +
                     bits(passive, durable, exclusive, auto_delete, nowait) + table(args))

    @staticmethod
    def q_bind(q, ex, rk="", nowait=0, args=None):
        return M.raw(50, 20, short(0) + ss(q) + ss(ex) + ss(rk) + bits(nowait) + table(args))

    @staticmethod
    def q_purge(q, nowait=0):
        return M.raw(50, 30, short(0) + ss(q) + bits(nowait))

    @staticmethod
    def q_delete(q, if_unused=0, if_empty=0, nowait=0):
        return M.raw(50, 40, short(0) + ss(q) + bits(if_unused, if_empty, nowait))

    @staticmethod
    def q_unbind(q, ex, rk="", args=None):
        return M.raw(50, 50, short(0) + ss(q) + ss(ex) + ss(rk) + table(args))

    # basic
    @staticmethod
    def qos(size=0, count=0, global_=0):
        return M.raw(60, 10, long_(size) + short(count) + bits(global_))

    @staticmethod
    def consume(q, tag="", no_local=0, no_ack=0, exclusive=0, nowait=0, args=None):
        return M.raw(60, 20, short(0) + ss(q) + ss(tag) +
                     bits(no_local, no_ack, exclusive, nowait) + table(args))

    @staticmethod
    def cancel(tag, nowait=0):
        return M.raw(60, 30, ss(tag) + bits(nowait))

    @staticmethod
    def publish(ex, rk, mandatory=0, immediate=0):
        return M.raw(60, 40, short(0) + ss(ex) + ss(rk) + bits(mandatory, immediate))

    @staticmethod
    def get(q, no_ack=0):
        return M.raw(60, 70, short(0) + ss(q) + bits(no_ack))

    @staticmethod
    def ack(tag, multiple=0):
        return M.raw(60, 80, longlong(tag) + bits(multiple))

    @staticmethod
    def reject(tag, requeue=0):
        return M.raw(60, 90, longlong(tag) + bits(requeue))

    @staticmethod
    def recover_async(requeue):
        return M.raw(60, 100, bits(requeue))

    @staticmethod
    def recover(requeue):
        return M.raw(60, 110, bits(requeue))

    @staticmethod
    def nack(tag, multiple=0, requeue=0):
        return M.raw(60, 120, longlong(tag) + bits(multiple, requeue))

    @staticmethod
    def confirm_select(nowait=0):
        return M.raw(85, 10, bits(nowait))

    @staticmethod
    def tx_select():
        return M.raw(90, 10)

    @staticmethod
    def tx_commit():
        return M.raw(90, 20)

    @staticmethod
    def tx_rollback():
        return M.raw(90, 30)


# --------------------------------------------------------------------------
# decoding

class Reader:
    def __init__(self, data):
        self.d, self.i = data, 0

    def take(self, n):
        if self.i + n > len(self.d):
            raise ValueError("short")
        v = self.d[self.i:self.i + n]
        self.i += n
        return v

    def octet(self):
        return self.take(1)[0]

    def short(self):
        return struct.unpack(">H", self.take(2))[0]

    def long(self):
        return struct.unpack(">I", self.take(4))[0]

    def longlong(self):
        return struct.unpack(">Q", self.take(8))[0]

    def shortstr(self):
        return self.take(self.octet()).decode("utf-8", "replace")

    def longstr(self):
        return self.take(self.long())

    def table(self):
        r = Reader(self.longstr())
        out = {}
        while r.i < len(r.d):
            k = r.shortstr()
            out[k] = r.value()
        return out

    def value(self):
        t = chr(self.octet())
        if t == "t":
            return bool(self.octet())
        if t == "b":
            return struct.unpack(">b", self.take(1))[0]
        if t == "B":
            return self.octet()
        if t in "sU":
            return struct.unpack(">h", self.take(2))[0]
        if t == "u":
            return self.short()
        if t == "I":
            return struct.unpack(">i", self.take(4))[0]
        if t == "i":
            return self.long()
        if t in "lL":
            return struct.unpack(">q", self.take(8))[0]
        if t == "f":
            return struct.unpack(">f", self.take(4))[0]
        if t == "d":
            return struct.unpack(">d", self.take(8))[0]
        if t == "D":
            self.take(5)
            return "decimal"
        if t in "Sx":
            return self.longstr().decode("utf-8", "replace")
        if t == "T":
            return self.longlong()
        if t == "F":
            return self.table()
        if t == "A":
            r = Reader(self.longstr())
            out = []
            while r.i < len(r.d):
                out.append(r.value())
            return out
        if t == "V":
            return None
        raise ValueError("tag " + t)


def describe_method(ch, payload):
    """Returns (text, cls, mid, fields)."""
    if len(payload) < 4:
        return "ch%d method frame with %d-byte payload" % (ch, len(payload)), None, None, {}
    cls, mid = struct.unpack(">HH", payload[:4])
    name = METHOD_NAMES.get((cls, mid), "method(%d,%d)" % (cls, mid))
    r = Reader(payload[4:])
    f = {}
    det = ""
    try:
        if (cls, mid) in ((10, 50), (20, 40)):
            f["code"], f["text"], f["class_id"], f["method_id"] = r.short(), r.shortstr(), r.short(), r.short()
            det = "(%d, %r, %d, %d)" % (f["code"], f["text"], f["class_id"], f["method_id"])
        elif (cls, mid) == (10, 30):
            f["channel_max"], f["frame_max"], f["heartbeat"] = r.short(), r.long(), r.short()
            det = "(channel_max=%d, frame_max=%d, heartbeat=%d)" % (f["channel_max"], f["frame_max"], f["heartbeat"])
        elif (cls, mid) == (10, 10):
            f["major"], f["minor"] = r.octet(), r.octet()
            f["server_properties"] = r.table()
            f["mechanisms"] = r.longstr().decode()
            f["locales"] = r.longstr().decode()
            det = "(mechanisms=%r)" % f["mechanisms"]
        elif (cls, mid) == (10, 60):
            det = "(%r)" % r.shortstr()
        elif (cls, mid) == (20, 21) or (cls, mid) == (20, 20):
            det = "(active=%d)" % (r.octet() & 1)
        elif (cls, mid) == (50, 11):
            q, mc, cc = r.shortstr(), r.long(), r.long()
            det = "(%r, messages=%d, consumers=%d)" % (q, mc, cc)
        elif (cls, mid) in ((50, 31), (50, 41)):
            det = "(messages=%d)" % r.long()
        elif (cls, mid) in ((60, 21), (60, 31), (60, 30)):
            det = "(%r)" % r.shortstr()
        elif (cls, mid) == (60, 50):
            code, text, ex, rk = r.short(), r.shortstr(), r.shortstr(), r.shortstr()
            det = "(%d, %r, exchange=%r, rk=%r)" % (code, text, ex, rk)
        elif (cls, mid) == (60, 60):
            tag, dt, red, ex, rk = r.shortstr(), r.longlong(), r.octet(), r.shortstr(), r.shortstr()
            det = "(tag=%r, delivery_tag=%d, redelivered=%d, exchange=%r, rk=%r)" % (tag, dt, red, ex, rk)
        elif (cls, mid) == (60, 71):
            dt, red, ex, rk, mc = r.longlong(), r.octet(), r.shortstr(), r.shortstr(), r.long()
            det = "(delivery_tag=%d, redelivered=%d, exchange=%r, rk=%r, message_count=%d)" % (dt, red, ex, rk, mc)
        elif (cls, mid) == (60, 80):
            det = "(tag=%d, multiple=%d)" % (r.longlong(), r.octet() & 1)
        elif (cls, mid) == (60, 120):
            t, b = r.longlong(), r.octet()
            det = "(tag=%d, multiple=%d, requeue=%d)" % (t, b & 1, (b >> 1) & 1)
    except Exception as e:  # noqa
        det = "(undecodable args: %s)" % e
    pre = "" if ch == 0 else "ch%d " % ch
    return pre + name + det, cls, mid, f


EOF_WAIT = 4.5


def _after(t0):
    """'' when immediate, else ' ~Ns later' (rounded) - shows deliberate delays."""
    dt = time.time() - t0
    return "" if dt < 0.8 else " (~%ds later)" % round(dt)


class Closed(Exception):
    pass


class SetupError(Exception):
    pass


class Conn:
    def __init__(self, host, port):
        self.s = socket.create_connection((host, port), timeout=5)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.dead = False
        self.opened = False
        self.channel_max = 0
        self.frame_max = 131072
        self.server_closed = set()   # channels the server closed, close-ok not yet sent
        self.start_fields = {}

    # -- raw io
    def send(self, data):
        if self.dead:
            raise Closed("send on closed socket")
        try:
            self.s.sendall(data)
        except OSError as e:
            self.dead = True
            raise Closed("send failed (%s)" % e.__class__.__name__)

    def method(self, ch, payload):
        self.send(mframe(ch, payload))

    def content(self, ch, body=b"hi", flags=0, prop=b"", size=None):
        size = len(body) if size is None else size
        out = frame(FRAME_HEADER, ch, header_payload(size, flags=flags, props=prop))
        if body:
            out += frame(FRAME_BODY, ch, body)
        self.send(out)

    def publish(self, ch, ex, rk, body=b"hi", mandatory=0, immediate=0, prop=None):
        flags, pb = prop if prop else (0, b"")
        self.send(mframe(ch, M.publish(ex, rk, mandatory, immediate)) +
                  frame(FRAME_HEADER, ch, header_payload(len(body), flags=flags, props=pb)) +
                  (frame(FRAME_BODY, ch, body) if body else b""))

    def _recv(self, deadline):
        t = deadline - time.time()
        if t <= 0:
            return False
        self.s.settimeout(t)
        try:
            d = self.s.recv(65536)
        except socket.timeout:
            return False
        except OSError:
            self.dead = True
            raise Closed()
        if not d:
            self.dead = True
            raise Closed()
        self.buf += d
        return True

    def read_frame(self, deadline):
        """-> ('proto', bytes) | ('frame', type, ch, payload, end_ok) | None on timeout."""
        while True:
            if self.buf[:4] == b"AMQP" and len(self.buf) >= 8:
                p, self.buf = self.buf[:8], self.buf[8:]
                return ("proto", p)
            if len(self.buf) >= 7 and self.buf[:4] != b"AMQP":
                t, ch, size = struct.unpack(">BHI", self.buf[:7])
                if len(self.buf) >= 8 + size:
                    payload = self.buf[7:7 + size]
                    end = self.buf[7 + size]
                    self.buf = self.buf[8 + size:]
                    return ("frame", t, ch, payload, end == FRAME_END)
            try:
                got = self._recv(deadline)
            except Closed:
                if self.buf:
                    rest, self.buf = self.buf, b""
                    return ("junk", rest)
                raise
            if not got:
                return None

    def describe(self, f):
        """-> (text, kind) kind in {'conn_close','conn_close_ok','ch_close', None}"""
        if f[0] == "proto":
            return "protocol header %r" % f[1], None
        if f[0] == "junk":
            return "unparsable bytes %r" % f[1][:40], None
        _, t, ch, payload, end_ok = f
        suffix = "" if end_ok else " [bad frame-end]"
        if t == FRAME_METHOD:
            text, cls, mid, _fields = describe_method(ch, payload)
            kind = None
            if (cls, mid) == (10, 50):
                kind = "conn_close"
            elif (cls, mid) == (10, 51):
                kind = "conn_close_ok"
            elif (cls, mid) == (20, 40):
                kind = "ch_close"
                self.server_closed.add(ch)
            return text + suffix, kind
        if t == FRAME_HEADER:
            try:
                cls, w, size, fl = struct.unpack(">HHQH", payload[:14])
                return "ch%d content-header(class=%d, size=%d)%s" % (ch, cls, size, suffix), None
            except struct.error:
                return "ch%d content-header(len=%d)" % (ch, len(payload)), None
        if t == FRAME_BODY:
            return "ch%d content-body(%d bytes)%s" % (ch, len(payload), suffix), None
        if t == FRAME_HEARTBEAT:
            return "ch%d heartbeat%s" % (ch, suffix), None
        return "frame type %d ch%d len %d%s" % (t, ch, len(payload), suffix), None

    def observe(self, window=3.0, settle=0.5):
        """Collect what the broker sends: stop on connection.close (answered with
        close-ok, then wait for the socket to close), on socket close, or when
        quiet for `settle` seconds after the last frame (or `window` if none)."""
        events = []
        if self.dead:
            return ["(socket already closed)"]
        t0 = time.time()
        end = t0 + window
        while True:
            try:
                f = self.read_frame(end)
            except Closed:
                events.append("socket closed" + _after(t0))
                break
            if f is None:
                if not events:
                    events.append("silence(%gs)" % window)
                break
            text, kind = self.describe(f)
            events.append(text)
            if kind == "conn_close":
                # does the broker wait for our close-ok? (give it 150 ms to drop the socket)
                try:
                    pre = self.read_frame(time.time() + 0.15)
                except Closed:
                    events.append("socket closed without waiting for close-ok")
                    break
                if pre is not None:
                    events.append(self.describe(pre)[0])
                try:
                    self.send(mframe(0, M.conn_close_ok()))
                except Closed:
                    events.append("socket closed before close-ok")
                    break
                events.append(self._await_eof(EOF_WAIT, "after close-ok"))
                break
            if kind == "conn_close_ok":
                events.append(self._await_eof(EOF_WAIT, "after close-ok"))
                break
            end = time.time() + settle
        return events

    def _await_eof(self, secs, what):
        t0 = time.time()
        end = t0 + secs
        extra = []
        while True:
            try:
                f = self.read_frame(end)
            except Closed:
                return "socket closed" + _after(t0) + " " + what + ("" if not extra else " (after %s)" % ", ".join(extra))
            if f is None:
                self.dead = True  # treat as unusable
                return "socket still open %gs %s" % (secs, what) + ("" if not extra else " (got %s)" % ", ".join(extra))
            extra.append(self.describe(f)[0])

    def wait_method(self, timeout=5.0):
        end = time.time() + timeout
        while True:
            try:
                f = self.read_frame(end)
            except Closed:
                raise SetupError("socket closed")
            if f is None:
                raise SetupError("timeout")
            text, kind = self.describe(f)
            if f[0] == "frame" and f[1] == FRAME_METHOD and len(f[3]) >= 4:
                cls, mid = struct.unpack(">HH", f[3][:4])
                return cls, mid, f, text
            raise SetupError("unexpected " + text)

    def rpc(self, ch, payload, expect):
        self.method(ch, payload)
        cls, mid, f, text = self.wait_method()
        if (cls, mid) != expect:
            raise SetupError("expected %s, got %s" % (METHOD_NAMES.get(expect), text))
        return f

    def get_message(self, ch, q, no_ack=0):
        """basic.get; returns get-ok text (consumes header/body frames)."""
        self.method(ch, M.get(q, no_ack))
        cls, mid, f, text = self.wait_method()
        if (cls, mid) == (60, 72):
            return text
        if (cls, mid) != (60, 71):
            raise SetupError("basic.get: " + text)
        end = time.time() + 5
        hf = self.read_frame(end)
        size = struct.unpack(">Q", hf[3][4:12])[0]
        got = 0
        while got < size:
            bf = self.read_frame(end)
            got += len(bf[3])
        return text

    # -- handshake steps
    def hello(self):
        self.send(PROTO_HEADER)
        cls, mid, f, text = self.wait_method()
        if (cls, mid) != (10, 10):
            raise SetupError("expected connection.start, got " + text)
        self.start_fields = describe_method(0, f[3])[3]

    def read_tune(self):
        cls, mid, f, text = self.wait_method()
        if (cls, mid) != (10, 30):
            raise SetupError("expected connection.tune, got " + text)
        fields = describe_method(0, f[3])[3]
        self.channel_max = fields["channel_max"]
        self.frame_max = fields["frame_max"]
        return fields

    def handshake(self, vhost="/", caps=True):
        self.hello()
        self.method(0, M.start_ok(caps=caps))
        self.read_tune()
        self.method(0, M.tune_ok(self.channel_max, self.frame_max, 0))
        self.rpc(0, M.conn_open(vhost), (10, 41))
        self.opened = True

    def open_channel(self, ch):
        self.rpc(ch, M.ch_open(), (20, 11))

    def finish(self):
        """Acknowledge server channel.close, then check the connection still works."""
        if self.dead or not self.opened:
            return None
        try:
            for ch in sorted(self.server_closed):
                self.method(ch, M.ch_close_ok())
            self.server_closed.clear()
            self.method(99, M.ch_open())
        except Closed:
            return ["socket closed"]
        ev = self.observe(window=2.0, settle=0.3)
        if ev == ["ch99 channel.open-ok"]:
            return ["alive"]
        return ev

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


# --------------------------------------------------------------------------
# scenario framework

SCENARIOS = []


def scen(title):
    def deco(fn):
        SCENARIOS.append((fn.__name__, title, fn))
        return fn
    return deco


class Ctx:
    def __init__(self, host, port, tok):
        self.host, self.port, self.tok = host, port, tok
        self.conns = []
        self.steps = []
        self.cleanup_q = []
        self.cleanup_x = []
        self.main = None

    def name(self, s):
        return "probe-%s-%s" % (s, self.tok)

    def raw_conn(self):
        c = Conn(self.host, self.port)
        self.conns.append(c)
        return c

    def connect(self, ch=1, main=True):
        c = self.raw_conn()
        c.handshake()
        if ch:
            c.open_channel(ch)
        if main and self.main is None:
            self.main = c
        return c

    def obs(self, c, label=None, window=3.0, settle=0.5):
        self.steps.append((label, c.observe(window, settle)))

    def note(self, label, text):
        self.steps.append((label, [text]))

    def queue(self, c, s, ch=1, **kw):
        q = self.name(s)
        c.rpc(ch, M.q_declare(q, **kw), (50, 11))
        if not kw.get("exclusive"):
            self.cleanup_q.append(q)
        return q

    def exchange(self, c, s, type_="direct", ch=1, **kw):
        x = self.name(s)
        c.rpc(ch, M.ex_declare(x, type_, **kw), (40, 11))
        self.cleanup_x.append(x)
        return x


def fmt_steps(steps):
    parts = []
    for label, evs in steps:
        s = "; ".join(evs)
        parts.append(("[%s] " % label if label else "") + s)
    return " ⟶ ".join(parts)


def run_scenario(sid, fn, host, port, tok):
    ctx = Ctx(host, port, tok)
    try:
        fn(ctx)
        c = ctx.main
        if c is not None:
            fin = c.finish()
            if fin is not None:
                ctx.steps.append(("after", fin))
    except SetupError as e:
        ctx.steps.append(("SETUP FAILED", [str(e)]))
    except Closed as e:
        ctx.steps.append((None, ["socket closed" + (" (%s)" % e if str(e) else "")]))
    except Exception as e:  # noqa
        ctx.steps.append(("PROBE ERROR", ["%s: %s" % (e.__class__.__name__, e)]))
    finally:
        for c in ctx.conns:
            c.close()
    if ctx.cleanup_q or ctx.cleanup_x:
        try:
            c = Conn(host, port)
            c.handshake()
            n = 2
            for q in ctx.cleanup_q:
                c.method(n, M.ch_open())
                c.method(n, M.q_delete(q, nowait=1))
                n += 1
            for x in ctx.cleanup_x:
                c.method(n, M.ch_open())
                c.method(n, M.ex_delete(x, nowait=1))
                n += 1
            c.method(1, M.ch_open())
            c.observe(1.0, 0.3)
            c.close()
        except Exception:
            pass
    out = fmt_steps(ctx.steps)
    out = out.replace(tok, "T")
    out = re.sub(r"amq\.gen-[A-Za-z0-9_\-]+", "amq.gen-*", out)
    out = re.sub(r"amq\.ctag-[A-Za-z0-9_\-]+", "amq.ctag-*", out)
    return out


# --------------------------------------------------------------------------
# scenarios: protocol header and handshake

HS_WINDOW = 5.0


def _raw_header(ctx, data, window=HS_WINDOW):
    c = ctx.raw_conn()
    c.send(data)
    ctx.obs(c, window=window)


@scen("protocol header AMQP 0-9-0 (AMQP\\x00\\x00\\x09\\x00)")
def hdr_0_9_0(ctx):
    _raw_header(ctx, b"AMQP\x00\x00\x09\x00")


@scen("protocol header 'HTTP/1.1' (8 bytes)")
def hdr_http_8(ctx):
    _raw_header(ctx, b"HTTP/1.1")


@scen("HTTP request 'GET / HTTP/1.1...'")
def hdr_http_get(ctx):
    _raw_header(ctx, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")


@scen("protocol header AMQP 0-8 (AMQP\\x01\\x01\\x08\\x00)")
def hdr_0_8(ctx):
    _raw_header(ctx, b"AMQP\x01\x01\x08\x00")


@scen("protocol header AMQP 0-9 (AMQP\\x01\\x01\\x00\\x09)")
def hdr_0_9(ctx):
    _raw_header(ctx, b"AMQP\x01\x01\x00\x09")


@scen("protocol header AMQP 1.0 (AMQP\\x00\\x01\\x00\\x00)")
def hdr_1_0(ctx):
    _raw_header(ctx, b"AMQP\x00\x01\x00\x00")


@scen("protocol header AMQP 1.0 SASL (AMQP\\x03\\x01\\x00\\x00)")
def hdr_1_0_sasl(ctx):
    _raw_header(ctx, b"AMQP\x03\x01\x00\x00")


@scen("partial protocol header 'AMQP' then nothing (3 s)")
def hdr_partial(ctx):
    _raw_header(ctx, b"AMQP")


@scen("valid header followed by 8 junk bytes in the same write")
def hdr_trailing_junk(ctx):
    c = ctx.raw_conn()
    c.send(PROTO_HEADER + b"\x00" * 8)
    ctx.obs(c, window=HS_WINDOW, settle=HS_WINDOW)


@scen("channel.open instead of connection.start-ok")
def hs_method_instead_of_start_ok(ctx):
    c = ctx.raw_conn()
    c.hello()
    c.method(1, M.ch_open())
    ctx.obs(c, window=HS_WINDOW)


@scen("wrong password (client advertises authentication_failure_close)")
def auth_wrong_password(ctx):
    c = ctx.raw_conn()
    c.hello()
    c.method(0, M.start_ok(response=b"\x00guest\x00wrong"))
    ctx.obs(c, window=HS_WINDOW)


@scen("wrong password (no capabilities in client-properties)")
def auth_wrong_password_nocaps(ctx):
    c = ctx.raw_conn()
    c.hello()
    c.method(0, M.start_ok(response=b"\x00guest\x00wrong", caps=False))
    ctx.obs(c, window=HS_WINDOW)


@scen("unknown user")
def auth_unknown_user(ctx):
    c = ctx.raw_conn()
    c.hello()
    c.method(0, M.start_ok(response=b"\x00nobody\x00guest"))
    ctx.obs(c, window=HS_WINDOW)


@scen("PLAIN response without NUL separators ('guestguest')")
def auth_plain_malformed(ctx):
    c = ctx.raw_conn()
    c.hello()
    c.method(0, M.start_ok(response=b"guestguest"))
    ctx.obs(c, window=HS_WINDOW)


@scen("unknown SASL mechanism 'FOO'")
def auth_mech_foo(ctx):
    c = ctx.raw_conn()
    c.hello()
    c.method(0, M.start_ok(mechanism="FOO"))
    ctx.obs(c, window=HS_WINDOW)


@scen("AMQPLAIN mechanism with valid credentials")
def auth_amqplain(ctx):
    c = ctx.raw_conn()
    c.hello()
    resp = ss("LOGIN") + b"S" + ls("guest") + ss("PASSWORD") + b"S" + ls("guest")
    c.method(0, M.start_ok(mechanism="AMQPLAIN", response=resp))
    ctx.obs(c, window=HS_WINDOW)


@scen("connection.start advertised mechanisms / server props (informational)")
def hs_start_info(ctx):
    c = ctx.raw_conn()
    c.hello()
    f = c.start_fields
    props_ = f.get("server_properties", {})
    caps = props_.get("capabilities", {})
    ctx.note("start", "version %s-%s, mechanisms=%r, locales=%r, capabilities=%s" % (
        f.get("major"), f.get("minor"), f.get("mechanisms"), f.get("locales"),
        ",".join(sorted(k for k, v in caps.items() if v))))
    c.method(0, M.start_ok())
    t = c.read_tune()
    ctx.note("tune", "channel_max=%d frame_max=%d heartbeat=%d" % (
        t["channel_max"], t["frame_max"], t["heartbeat"]))


@scen("unknown vhost '/nope'")
def vhost_unknown(ctx):
    c = ctx.raw_conn()
    c.hello()
    c.method(0, M.start_ok())
    c.read_tune()
    c.method(0, M.tune_ok(c.channel_max, c.frame_max, 0))
    c.method(0, M.conn_open("/nope"))
    ctx.obs(c, window=HS_WINDOW)


def _tune_variant(ctx, chmax, fmax, hb=0, window=HS_WINDOW):
    c = ctx.raw_conn()
    c.hello()
    c.method(0, M.start_ok())
    c.read_tune()
    cm = c.channel_max if chmax is None else chmax(c.channel_max)
    fm = c.frame_max if fmax is None else fmax(c.frame_max)
    c.method(0, M.tune_ok(cm, fm, hb))
    c.method(0, M.conn_open("/"))
    ctx.obs(c, window=window)
    return c


@scen("tune-ok frame_max=1024 (below the 4096 minimum)")
def tune_frame_max_small(ctx):
    _tune_variant(ctx, None, lambda fm: 1024)


@scen("tune-ok frame_max larger than the server's")
def tune_frame_max_big(ctx):
    _tune_variant(ctx, None, lambda fm: (fm or 131072) * 2)


@scen("tune-ok frame_max=0 (unlimited)")
def tune_frame_max_zero(ctx):
    _tune_variant(ctx, None, lambda fm: 0)


@scen("tune-ok channel_max=65535 (larger than the server's)")
def tune_channel_max_big(ctx):
    _tune_variant(ctx, lambda cm: 65535, None)


@scen("tune-ok channel_max=0")
def tune_channel_max_zero(ctx):
    c = _tune_variant(ctx, lambda cm: 0, None)
    if not c.dead:
        c.method(3000, M.ch_open())
        ctx.obs(c, "channel.open 3000")


@scen("tune-ok heartbeat=1, then client stays silent: heartbeats sent / connection dropped within 8 s")
def tune_heartbeat_silent(ctx):
    c = ctx.raw_conn()
    c.hello()
    c.method(0, M.start_ok())
    c.read_tune()
    c.method(0, M.tune_ok(c.channel_max, c.frame_max, 1))
    c.rpc(0, M.conn_open("/"), (10, 41))
    t0 = time.time()
    end = t0 + 8
    hb, other = 0, []
    while True:
        try:
            f = c.read_frame(end)
        except Closed:
            other.append("socket closed after ~%ds" % round(time.time() - t0))
            break
        if f is None:
            other.append("still open after 8s")
            break
        text, kind = c.describe(f)
        if text == "ch0 heartbeat":
            hb += 1
        else:
            other.append(text + " at ~%ds" % round(time.time() - t0))
            if kind == "conn_close":
                break
    ctx.note(None, "%s; %s" % ("heartbeats sent" if hb else "no heartbeats", "; ".join(other)))


@scen("tune-ok heartbeat=0 (disabled): any heartbeats within 4 s?")
def tune_heartbeat_zero(ctx):
    c = ctx.connect(ch=0)
    ctx.obs(c, window=4.0, settle=4.0)


@scen("connection.open without tune-ok")
def hs_skip_tune_ok(ctx):
    c = ctx.raw_conn()
    c.hello()
    c.method(0, M.start_ok())
    c.read_tune()
    c.method(0, M.conn_open("/"))
    ctx.obs(c, window=HS_WINDOW)


@scen("channel.open before connection.open")
def hs_channel_before_open(ctx):
    c = ctx.raw_conn()
    c.hello()
    c.method(0, M.start_ok())
    c.read_tune()
    c.method(0, M.tune_ok(c.channel_max, c.frame_max, 0))
    c.method(1, M.ch_open())
    ctx.obs(c, window=HS_WINDOW)


@scen("second connection.open")
def hs_double_open(ctx):
    c = ctx.connect(ch=0)
    c.method(0, M.conn_open("/"))
    ctx.obs(c)


@scen("client connection.close (200) - normal shutdown")
def conn_close_normal(ctx):
    c = ctx.connect(ch=1)
    c.method(0, M.conn_close(200, "bye"))
    ctx.obs(c)


# --------------------------------------------------------------------------
# frame level

@scen("body frame one octet bigger than negotiated frame_max")
def frame_too_big(ctx):
    c = ctx.connect()
    n = c.frame_max - 7   # frame = 7 + n + 1 = frame_max + 1
    c.send(mframe(1, M.publish("", "nowhere")) +
           frame(FRAME_HEADER, 1, header_payload(n)) + frame(FRAME_BODY, 1, b"x" * n))
    ctx.obs(c)


@scen("body frame 9 octets bigger than negotiated frame_max (payload frame_max+1)")
def frame_too_big_9(ctx):
    c = ctx.connect()
    n = c.frame_max + 1
    c.send(mframe(1, M.publish("", "nowhere")) +
           frame(FRAME_HEADER, 1, header_payload(n)) + frame(FRAME_BODY, 1, b"x" * n))
    ctx.obs(c)


@scen("body frame exactly frame_max octets (legal), then basic.get")
def frame_exact_max(ctx):
    c = ctx.connect()
    q = ctx.queue(c, "fmax", exclusive=1)
    n = c.frame_max - 8
    c.send(mframe(1, M.publish("", q)) +
           frame(FRAME_HEADER, 1, header_payload(n)) + frame(FRAME_BODY, 1, b"x" * n))
    c.method(1, M.get(q, no_ack=1))
    ctx.obs(c)


@scen("method frame bigger than frame_max (huge queue.declare arguments)")
def frame_method_too_big(ctx):
    c = ctx.connect()
    q = ctx.name("bigmethod")
    c.method(1, M.q_declare(q, exclusive=1, args={"x-pad": "p" * (c.frame_max + 10)}))
    ctx.obs(c)


@scen("frame header claims size 0x7FFFFFF0, no payload sent")
def frame_huge_size_field(ctx):
    c = ctx.connect()
    c.send(struct.pack(">BHI", 1, 1, 0x7FFFFFF0))
    ctx.obs(c)


@scen("bad frame-end octet (basic.qos ending 0x00)")
def frame_bad_end(ctx):
    c = ctx.connect()
    c.send(frame(FRAME_METHOD, 1, M.qos(0, 10), end=0x00))
    ctx.obs(c)


@scen("unknown frame type 7 on channel 1")
def frame_unknown_type(ctx):
    c = ctx.connect()
    c.send(frame(7, 1, b"\x00\x01\x02\x03"))
    ctx.obs(c)


@scen("unknown frame type 4 (0-8 oob-method) on channel 0")
def frame_type_4(ctx):
    c = ctx.connect()
    c.send(frame(4, 0, b"\x00\x01\x02\x03"))
    ctx.obs(c)


@scen("heartbeat frame on channel 1")
def heartbeat_on_channel(ctx):
    c = ctx.connect()
    c.send(frame(FRAME_HEARTBEAT, 1, b""))
    ctx.obs(c)


@scen("heartbeat frame on channel 0 with 3-byte payload")
def heartbeat_with_payload(ctx):
    c = ctx.connect()
    c.send(frame(FRAME_HEARTBEAT, 0, b"abc"))
    ctx.obs(c)


@scen("heartbeat frame on channel 0 (legal, no reply expected)")
def heartbeat_ok(ctx):
    c = ctx.connect()
    c.send(frame(FRAME_HEARTBEAT, 0, b""))
    ctx.obs(c)


@scen("method frame with empty payload (size 0) on channel 1")
def frame_empty_method(ctx):
    c = ctx.connect()
    c.send(frame(FRAME_METHOD, 1, b""))
    ctx.obs(c)


@scen("method frame with only 2 payload bytes (class id only)")
def frame_method_2_bytes(ctx):
    c = ctx.connect()
    c.send(frame(FRAME_METHOD, 1, b"\x00\x3c"))
    ctx.obs(c)


@scen("method (basic.qos) on channel 5, never opened")
def ch_never_opened(ctx):
    c = ctx.connect()
    c.method(5, M.qos(0, 10))
    ctx.obs(c)


@scen("content header on channel 5, never opened")
def ch_never_opened_header(ctx):
    c = ctx.connect()
    c.send(frame(FRAME_HEADER, 5, header_payload(2)))
    ctx.obs(c)


@scen("channel.close on channel 7, never opened")
def ch_close_never_opened(ctx):
    c = ctx.connect()
    c.method(7, M.ch_close(200, "bye"))
    ctx.obs(c)


@scen("channel.close-ok on channel 7, never opened")
def ch_close_ok_never_opened(ctx):
    c = ctx.connect()
    c.method(7, M.ch_close_ok())
    ctx.obs(c)


@scen("second channel.open on an open channel")
def ch_double_open(ctx):
    c = ctx.connect()
    c.method(1, M.ch_open())
    ctx.obs(c)


@scen("channel.open on channel 0")
def ch_open_0(ctx):
    c = ctx.connect(ch=0)
    c.method(0, M.ch_open())
    ctx.obs(c)


@scen("channel.open on channel 65535")
def ch_open_65535(ctx):
    c = ctx.connect(ch=0)
    c.method(65535, M.ch_open())
    ctx.obs(c)


@scen("channel.open on channel == negotiated channel_max")
def ch_open_at_max(ctx):
    c = ctx.connect(ch=0)
    cm = c.channel_max or 65535
    ctx.note("channel_max", str(c.channel_max))
    c.method(cm, M.ch_open())
    ctx.obs(c)


@scen("channel.open on channel == negotiated channel_max + 1")
def ch_open_over_max(ctx):
    c = ctx.connect(ch=0)
    if not c.channel_max or c.channel_max >= 65535:
        ctx.note("skip", "channel_max=%d, no channel above it" % c.channel_max)
        return
    c.method(c.channel_max + 1, M.ch_open())
    ctx.obs(c)


@scen("basic.qos on channel 0")
def ch0_basic_method(ctx):
    c = ctx.connect()
    c.method(0, M.qos(0, 10))
    ctx.obs(c)


@scen("connection.close sent on channel 1")
def conn_method_on_channel(ctx):
    c = ctx.connect()
    c.method(1, M.conn_close(200, "bye"))
    ctx.obs(c)


@scen("channel.open with non-empty reserved field 'xyz'")
def ch_open_reserved(ctx):
    c = ctx.connect(ch=0)
    c.method(1, M.raw(20, 10, ss("xyz")))
    ctx.obs(c)


# --------------------------------------------------------------------------
# content framing

@scen("content header with no basic.publish before it")
def content_header_no_publish(ctx):
    c = ctx.connect()
    c.send(frame(FRAME_HEADER, 1, header_payload(2)))
    ctx.obs(c)


@scen("body frame with no header (and no publish)")
def content_body_no_header(ctx):
    c = ctx.connect()
    c.send(frame(FRAME_BODY, 1, b"hi"))
    ctx.obs(c)


@scen("basic.publish followed directly by a body frame (header skipped)")
def content_publish_then_body(ctx):
    c = ctx.connect()
    c.send(mframe(1, M.publish("", "x")) + frame(FRAME_BODY, 1, b"hi"))
    ctx.obs(c)


@scen("basic.publish followed by another method (header expected)")
def content_publish_then_method(ctx):
    c = ctx.connect()
    c.send(mframe(1, M.publish("", "x")) + mframe(1, M.qos(0, 10)))
    ctx.obs(c)


@scen("method frame (basic.qos) while body is expected")
def content_method_while_body(ctx):
    c = ctx.connect()
    c.send(mframe(1, M.publish("", "x")) + frame(FRAME_HEADER, 1, header_payload(10)) +
           mframe(1, M.qos(0, 10)))
    ctx.obs(c)


@scen("channel.close while body is expected")
def content_ch_close_while_body(ctx):
    c = ctx.connect()
    c.send(mframe(1, M.publish("", "x")) + frame(FRAME_HEADER, 1, header_payload(10)) +
           mframe(1, M.ch_close(200, "bye")))
    ctx.obs(c)


@scen("channel.open on ch2 while ch1 awaits body (legal interleave), then finish body")
def content_interleave_other_channel(ctx):
    c = ctx.connect()
    q = ctx.queue(c, "ilv", exclusive=1)
    c.send(mframe(1, M.publish("", q)) + frame(FRAME_HEADER, 1, header_payload(4)) +
           frame(FRAME_BODY, 1, b"ab") + mframe(2, M.ch_open()))
    ctx.obs(c, "ch2 open mid-body")
    c.send(frame(FRAME_BODY, 1, b"cd") + mframe(1, M.get(q, no_ack=1)))
    ctx.obs(c, "finish body + get on ch1")


@scen("content header with class id 10")
def content_header_class_10(ctx):
    c = ctx.connect()
    c.send(mframe(1, M.publish("", "x")) + frame(FRAME_HEADER, 1, header_payload(2, cls=10)) +
           frame(FRAME_BODY, 1, b"hi"))
    ctx.obs(c)


@scen("content header with weight=1")
def content_header_weight(ctx):
    c = ctx.connect()
    q = ctx.queue(c, "weight", exclusive=1)
    c.send(mframe(1, M.publish("", q)) + frame(FRAME_HEADER, 1, header_payload(2, weight=1)) +
           frame(FRAME_BODY, 1, b"hi"))
    c.method(1, M.get(q, no_ack=1))
    ctx.obs(c)


@scen("body longer than declared (size 5, one 10-byte body frame)")
def content_body_too_long(ctx):
    c = ctx.connect()
    c.send(mframe(1, M.publish("", "x")) + frame(FRAME_HEADER, 1, header_payload(5)) +
           frame(FRAME_BODY, 1, b"0123456789"))
    ctx.obs(c, window=2.0)
    if not c.dead:
        c.method(1, M.qos(0, 10))
        ctx.obs(c, "then basic.qos on ch1")


@scen("body longer than declared across frames (size 5, bodies 3+3)")
def content_body_too_long_split(ctx):
    c = ctx.connect()
    c.send(mframe(1, M.publish("", "x")) + frame(FRAME_HEADER, 1, header_payload(5)) +
           frame(FRAME_BODY, 1, b"abc") + frame(FRAME_BODY, 1, b"def"))
    ctx.obs(c, window=2.0)
    if not c.dead:
        c.method(1, M.qos(0, 10))
        ctx.obs(c, "then basic.qos on ch1")


@scen("header body_size 0 followed by a body frame")
def content_zero_then_body(ctx):
    c = ctx.connect()
    c.send(mframe(1, M.publish("", "x")) + frame(FRAME_HEADER, 1, header_payload(0)) +
           frame(FRAME_BODY, 1, b"abc"))
    ctx.obs(c)


@scen("empty (0-byte) body frame in the middle of a message, then basic.get")
def content_empty_body_frame(ctx):
    c = ctx.connect()
    q = ctx.queue(c, "emptybody", exclusive=1)
    c.send(mframe(1, M.publish("", q)) + frame(FRAME_HEADER, 1, header_payload(2)) +
           frame(FRAME_BODY, 1, b"") + frame(FRAME_BODY, 1, b"hi"))
    c.method(1, M.get(q, no_ack=1))
    ctx.obs(c)


@scen("content header with property-flags continuation bit set (no 2nd flags word)")
def content_header_flag_continuation(ctx):
    c = ctx.connect()
    q = ctx.queue(c, "contbit", exclusive=1)
    c.send(mframe(1, M.publish("", q)) + frame(FRAME_HEADER, 1, header_payload(2, flags=0x0001)) +
           frame(FRAME_BODY, 1, b"hi"))
    c.method(1, M.get(q, no_ack=1))
    ctx.obs(c)


@scen("content header flags say content-type present but properties empty")
def content_header_truncated_props(ctx):
    c = ctx.connect()
    q = ctx.queue(c, "truncprops", exclusive=1)
    c.send(mframe(1, M.publish("", q)) + frame(FRAME_HEADER, 1, header_payload(2, flags=0x8000)) +
           frame(FRAME_BODY, 1, b"hi"))
    c.method(1, M.get(q, no_ack=1))
    ctx.obs(c)


@scen("content header with body_size 200 MB (no body sent)")
def content_header_huge_size(ctx):
    c = ctx.connect()
    c.send(mframe(1, M.publish("", "x")) + frame(FRAME_HEADER, 1, header_payload(200 * 1024 * 1024)))
    ctx.obs(c)


@scen("client connection.close in the middle of a message (after 5 of 10 body bytes)")
def conn_close_mid_content(ctx):
    c = ctx.connect()
    c.send(mframe(1, M.publish("", "x")) + frame(FRAME_HEADER, 1, header_payload(10)) +
           frame(FRAME_BODY, 1, b"01234") + mframe(0, M.conn_close(200, "bye")))
    ctx.obs(c)


# --------------------------------------------------------------------------
# unknown / misdirected methods, malformed arguments

@scen("unknown class id 99 (method 99.10) on channel 1")
def method_unknown_class(ctx):
    c = ctx.connect()
    c.method(1, M.raw(99, 10, b"\x00\x00"))
    ctx.obs(c)


@scen("unknown method id basic.99")
def method_unknown_method(ctx):
    c = ctx.connect()
    c.method(1, M.raw(60, 99, b""))
    ctx.obs(c)


@scen("client sends basic.deliver (server-only method)")
def method_client_deliver(ctx):
    c = ctx.connect()
    c.method(1, M.raw(60, 60, ss("t") + longlong(1) + bits(0) + ss("") + ss("q")))
    ctx.obs(c)


@scen("client sends channel.open-ok (server-only method)")
def method_client_open_ok(ctx):
    c = ctx.connect()
    c.method(1, M.raw(20, 11, ls("")))
    ctx.obs(c)


@scen("client sends basic.get-empty (server-only method)")
def method_client_get_empty(ctx):
    c = ctx.connect()
    c.method(1, M.raw(60, 72, ss("")))
    ctx.obs(c)


@scen("truncated queue.declare (last 3 bytes of the arguments table cut)")
def trunc_queue_declare(ctx):
    c = ctx.connect()
    p = M.q_declare("probe-trunc", exclusive=1)
    c.method(1, p[:-3])
    ctx.obs(c)


@scen("truncated queue.declare (queue name shortstr says 50 bytes, 5 present)")
def trunc_shortstr(ctx):
    c = ctx.connect()
    c.method(1, M.raw(50, 10, short(0) + b"\x32abcde"))
    ctx.obs(c)


@scen("queue.declare with trailing garbage after the arguments table")
def trailing_garbage(ctx):
    c = ctx.connect()
    c.method(1, M.q_declare("probe-trail", exclusive=1) + b"\xde\xad\xbe\xef")
    ctx.obs(c)


@scen("queue.declare arguments table with unknown field type 'Z'")
def table_unknown_tag(ctx):
    c = ctx.connect()
    c.method(1, M.q_declare(ctx.name("tagz"), exclusive=1, args={"x-foo": ("raw", b"Z\x00\x00\x00\x01")}))
    ctx.obs(c)


@scen("queue.declare arguments table length overruns the frame")
def table_length_overrun(ctx):
    c = ctx.connect()
    c.method(1, M.raw(50, 10, short(0) + ss("probe-tovr") + bits(0, 0, 1, 0, 0) + long_(100) + b"\x01a"))
    ctx.obs(c)


@scen("queue.declare with invalid UTF-8 queue name")
def q_name_bad_utf8(ctx):
    c = ctx.connect()
    c.method(1, M.q_declare(b"probe-\xff\xfe-" + ctx.tok.encode(), exclusive=1))
    ctx.obs(c)


# --------------------------------------------------------------------------
# basic / channel methods

@scen("basic.publish immediate=true")
def pub_immediate(ctx):
    c = ctx.connect()
    c.publish(1, "", "x", immediate=1)
    ctx.obs(c)


@scen("basic.qos prefetch_size=5")
def qos_prefetch_size(ctx):
    c = ctx.connect()
    c.method(1, M.qos(5, 0))
    ctx.obs(c)


@scen("basic.qos global=true prefetch_count=10")
def qos_global(ctx):
    c = ctx.connect()
    c.method(1, M.qos(0, 10, 1))
    ctx.obs(c)


@scen("channel.flow active=false")
def flow_false(ctx):
    c = ctx.connect()
    c.method(1, M.ch_flow(0))
    ctx.obs(c)


@scen("channel.flow active=true")
def flow_true(ctx):
    c = ctx.connect()
    c.method(1, M.ch_flow(1))
    ctx.obs(c)


@scen("basic.recover requeue=false (nothing outstanding)")
def recover_false(ctx):
    c = ctx.connect()
    c.method(1, M.recover(0))
    ctx.obs(c)


@scen("basic.recover requeue=false with one unacked basic.get message")
def recover_false_unacked(ctx):
    c = ctx.connect()
    q = ctx.queue(c, "rcvf", exclusive=1)
    c.publish(1, "", q)
    c.get_message(1, q)
    c.method(1, M.recover(0))
    ctx.obs(c)
    c.method(1, M.get(q, no_ack=1))
    ctx.obs(c, "basic.get")


@scen("basic.recover requeue=false with one unacked consumer delivery")
def recover_false_consumer(ctx):
    c = ctx.connect()
    q = ctx.queue(c, "rcvfc", exclusive=1)
    c.rpc(1, M.consume(q, "c1"), (60, 21))
    c.publish(1, "", q)
    ctx.obs(c, "deliver")
    c.method(1, M.recover(0))
    ctx.obs(c, "recover")


@scen("basic.recover requeue=true with one unacked basic.get message")
def recover_true_unacked(ctx):
    c = ctx.connect()
    q = ctx.queue(c, "rcvt", exclusive=1)
    c.publish(1, "", q)
    c.get_message(1, q)
    c.method(1, M.recover(1))
    ctx.obs(c)
    c.method(1, M.get(q, no_ack=1))
    ctx.obs(c, "basic.get")


@scen("basic.recover-async requeue=true")
def recover_async(ctx):
    c = ctx.connect()
    c.method(1, M.recover_async(1))
    ctx.obs(c)


@scen("basic.consume with a consumer tag already used on the channel")
def consume_dup_tag(ctx):
    c = ctx.connect()
    q = ctx.queue(c, "dup", exclusive=1)
    c.rpc(1, M.consume(q, "ctag1"), (60, 21))
    c.method(1, M.consume(q, "ctag1"))
    ctx.obs(c)


@scen("basic.consume with a used tag on a different queue")
def consume_dup_tag_other_queue(ctx):
    c = ctx.connect()
    q = ctx.queue(c, "dupa", exclusive=1)
    q2 = ctx.queue(c, "dupb", exclusive=1)
    c.rpc(1, M.consume(q, "ctag1"), (60, 21))
    c.method(1, M.consume(q2, "ctag1"))
    ctx.obs(c)


@scen("basic.consume on a missing queue")
def consume_missing_queue(ctx):
    c = ctx.connect()
    c.method(1, M.consume(ctx.name("nosuchq"), "t"))
    ctx.obs(c)


@scen("basic.cancel of an unknown consumer tag")
def cancel_unknown(ctx):
    c = ctx.connect()
    c.method(1, M.cancel("nope"))
    ctx.obs(c)


@scen("basic.consume exclusive=true when the queue already has a consumer")
def consume_exclusive_conflict(ctx):
    c = ctx.connect()
    q = ctx.queue(c, "exclc", exclusive=1)
    c.rpc(1, M.consume(q, "a"), (60, 21))
    c.method(1, M.consume(q, "b", exclusive=1))
    ctx.obs(c)


@scen("basic.consume on a queue that has an exclusive consumer")
def consume_after_exclusive(ctx):
    c = ctx.connect()
    q = ctx.queue(c, "exclc2", exclusive=1)
    c.rpc(1, M.consume(q, "a", exclusive=1), (60, 21))
    c.method(1, M.consume(q, "b"))
    ctx.obs(c)


@scen("basic.consume nowait=true with empty consumer tag")
def consume_nowait_empty_tag(ctx):
    c = ctx.connect()
    q = ctx.queue(c, "nwct", exclusive=1)
    c.method(1, M.consume(q, "", nowait=1))
    ctx.obs(c)


@scen("basic.get on a missing queue")
def get_missing(ctx):
    c = ctx.connect()
    c.method(1, M.get(ctx.name("nosuchq")))
    ctx.obs(c)


@scen("basic.get on an empty queue")
def get_empty(ctx):
    c = ctx.connect()
    q = ctx.queue(c, "gempty", exclusive=1)
    c.method(1, M.get(q))
    ctx.obs(c)


# --------------------------------------------------------------------------
# exchanges

@scen("exchange.declare type 'foo'")
def ex_type_foo(ctx):
    c = ctx.connect()
    c.method(1, M.ex_declare(ctx.name("xfoo"), "foo"))
    ctx.obs(c)


@scen("exchange.declare type 'x-delayed-message' (plugin type)")
def ex_type_plugin(ctx):
    c = ctx.connect()
    c.method(1, M.ex_declare(ctx.name("xdel"), "x-delayed-message"))
    ctx.obs(c)


@scen("exchange.declare with empty type ''")
def ex_type_empty(ctx):
    c = ctx.connect()
    c.method(1, M.ex_declare(ctx.name("xempty"), ""))
    ctx.obs(c)


@scen("exchange.declare passive, type 'foo', existing exchange amq.direct")
def ex_passive_bad_type(ctx):
    c = ctx.connect()
    c.method(1, M.ex_declare("amq.direct", "foo", passive=1))
    ctx.obs(c)


@scen("exchange.declare 'amq.x'")
def ex_declare_amq(ctx):
    c = ctx.connect()
    c.method(1, M.ex_declare("amq.x" + ctx.tok, "direct"))
    ctx.obs(c)


@scen("exchange.declare 'amq.direct' type direct (redeclare of builtin)")
def ex_declare_amq_direct(ctx):
    c = ctx.connect()
    c.method(1, M.ex_declare("amq.direct", "direct", durable=1))
    ctx.obs(c)


@scen("exchange.declare 'amq.direct' type fanout")
def ex_declare_amq_direct_fanout(ctx):
    c = ctx.connect()
    c.method(1, M.ex_declare("amq.direct", "fanout", durable=1))
    ctx.obs(c)


@scen("exchange.declare '' (default exchange)")
def ex_declare_default(ctx):
    c = ctx.connect()
    c.method(1, M.ex_declare("", "direct", durable=1))
    ctx.obs(c)


@scen("exchange.declare passive on a missing exchange")
def ex_passive_missing(ctx):
    c = ctx.connect()
    c.method(1, M.ex_declare(ctx.name("nosuchx"), "direct", passive=1))
    ctx.obs(c)


@scen("exchange redeclare with a different type")
def ex_redeclare_type(ctx):
    c = ctx.connect()
    x = ctx.exchange(c, "xtype", "direct")
    c.method(1, M.ex_declare(x, "fanout"))
    ctx.obs(c)


@scen("exchange redeclare with different durable flag")
def ex_redeclare_durable(ctx):
    c = ctx.connect()
    x = ctx.exchange(c, "xdur", "direct")
    c.method(1, M.ex_declare(x, "direct", durable=1))
    ctx.obs(c)


@scen("exchange redeclare with different auto_delete flag")
def ex_redeclare_autodelete(ctx):
    c = ctx.connect()
    x = ctx.exchange(c, "xad", "direct")
    c.method(1, M.ex_declare(x, "direct", auto_delete=1))
    ctx.obs(c)


@scen("exchange redeclare with different internal flag")
def ex_redeclare_internal(ctx):
    c = ctx.connect()
    x = ctx.exchange(c, "xint", "direct")
    c.method(1, M.ex_declare(x, "direct", internal=1))
    ctx.obs(c)


@scen("exchange.delete 'amq.direct'")
def ex_delete_amq_direct(ctx):
    c = ctx.connect()
    c.method(1, M.ex_delete("amq.direct"))
    ctx.obs(c)


@scen("exchange.delete '' (default exchange)")
def ex_delete_default(ctx):
    c = ctx.connect()
    c.method(1, M.ex_delete(""))
    ctx.obs(c)


@scen("exchange.delete of a missing exchange")
def ex_delete_missing(ctx):
    c = ctx.connect()
    c.method(1, M.ex_delete(ctx.name("nosuchx")))
    ctx.obs(c)


@scen("exchange.delete if_unused=true on an exchange with a binding")
def ex_delete_if_unused(ctx):
    c = ctx.connect()
    x = ctx.exchange(c, "xiu", "direct")
    q = ctx.queue(c, "xiuq", exclusive=1)
    c.rpc(1, M.q_bind(q, x, "k"), (50, 21))
    c.method(1, M.ex_delete(x, if_unused=1))
    ctx.obs(c)


@scen("exchange.bind with a missing source exchange")
def ex_bind_missing_src(ctx):
    c = ctx.connect()
    x = ctx.exchange(c, "xbd", "direct")
    c.method(1, M.ex_bind(x, ctx.name("nosuchx"), "k"))
    ctx.obs(c)


@scen("exchange.bind with a missing destination exchange")
def ex_bind_missing_dest(ctx):
    c = ctx.connect()
    x = ctx.exchange(c, "xbs", "direct")
    c.method(1, M.ex_bind(ctx.name("nosuchx"), x, "k"))
    ctx.obs(c)


@scen("exchange.bind to the default exchange as source")
def ex_bind_default_src(ctx):
    c = ctx.connect()
    x = ctx.exchange(c, "xbdef", "direct")
    c.method(1, M.ex_bind(x, "", "k"))
    ctx.obs(c)


@scen("exchange.bind (both exchanges exist) - e2e binding support")
def ex_bind_ok(ctx):
    c = ctx.connect()
    x = ctx.exchange(c, "xb1", "direct")
    x2 = ctx.exchange(c, "xb2", "fanout")
    c.method(1, M.ex_bind(x, x2, "k"))
    ctx.obs(c)


@scen("exchange.unbind of a missing binding (both exchanges exist)")
def ex_unbind_missing_binding(ctx):
    c = ctx.connect()
    x = ctx.exchange(c, "xub1", "direct")
    x2 = ctx.exchange(c, "xub2", "direct")
    c.method(1, M.raw(40, 40, short(0) + ss(x) + ss(x2) + ss("k") + bits(0) + table({})))
    ctx.obs(c)


@scen("exchange name of 255 bytes that does not exist (passive declare)")
def ex_255_missing_passive(ctx):
    c = ctx.connect()
    name = ("x" * 255)[: 255 - len(ctx.tok)] + ctx.tok
    c.method(1, M.ex_declare(name, "direct", passive=1))
    ctx.obs(c)


@scen("basic.publish to a missing exchange with a 255-byte name")
def ex_255_missing_publish(ctx):
    c = ctx.connect()
    name = ("x" * 255)[: 255 - len(ctx.tok)] + ctx.tok
    c.publish(1, name, "k")
    ctx.obs(c)


@scen("queue.bind: 255-byte missing queue to 255-byte missing exchange")
def q_bind_255_missing(ctx):
    c = ctx.connect()
    name = ("y" * 255)[: 255 - len(ctx.tok)] + ctx.tok
    c.method(1, M.q_bind(name, name, "k"))
    ctx.obs(c)


# --------------------------------------------------------------------------
# queues

@scen("queue.declare 'amq.x'")
def q_declare_amq(ctx):
    c = ctx.connect()
    c.method(1, M.q_declare("amq.x" + ctx.tok))
    ctx.obs(c)


@scen("queue.declare passive 'amq.x' (missing)")
def q_declare_amq_passive(ctx):
    c = ctx.connect()
    c.method(1, M.q_declare("amq.x" + ctx.tok, passive=1))
    ctx.obs(c)


@scen("queue.declare passive on a missing queue")
def q_passive_missing(ctx):
    c = ctx.connect()
    c.method(1, M.q_declare(ctx.name("nosuchq"), passive=1))
    ctx.obs(c)


@scen("queue.declare server-named ('')")
def q_server_named(ctx):
    c = ctx.connect()
    c.method(1, M.q_declare("", exclusive=1))
    ctx.obs(c)


@scen("queue.declare nowait=true")
def q_declare_nowait(ctx):
    c = ctx.connect()
    c.method(1, M.q_declare(ctx.name("nowait"), exclusive=1, nowait=1))
    ctx.obs(c)


@scen("queue redeclare with different durable flag")
def q_redeclare_durable(ctx):
    c = ctx.connect()
    q = ctx.queue(c, "rdur")
    c.method(1, M.q_declare(q, durable=1))
    ctx.obs(c)


@scen("queue redeclare with different auto_delete flag")
def q_redeclare_autodelete(ctx):
    c = ctx.connect()
    q = ctx.queue(c, "rad")
    c.method(1, M.q_declare(q, auto_delete=1))
    ctx.obs(c)


@scen("queue redeclare with x-max-length=10 (originally none)")
def q_redeclare_args(ctx):
    c = ctx.connect()
    q = ctx.queue(c, "rargs", exclusive=1)
    c.method(1, M.q_declare(q, exclusive=1, args={"x-max-length": 10}))
    ctx.obs(c)


@scen("queue redeclare x-max-length 10 (int32) vs 10 (int64)")
def q_redeclare_args_type(ctx):
    c = ctx.connect()
    q = ctx.queue(c, "rargt", exclusive=1, args={"x-max-length": ("I", 10)})
    c.method(1, M.q_declare(q, exclusive=1, args={"x-max-length": ("l", 10)}))
    ctx.obs(c)


@scen("queue redeclare non-exclusive queue as exclusive (same connection)")
def q_redeclare_exclusive(ctx):
    c = ctx.connect()
    q = ctx.queue(c, "rexcl")
    c.method(1, M.q_declare(q, exclusive=1))
    ctx.obs(c)


def _qargs(ctx, s, args):
    c = ctx.connect()
    q = ctx.name(s)
    ctx.cleanup_q.append(q)
    c.method(1, M.q_declare(q, args=args))
    ctx.obs(c)


@scen("queue.declare x-max-length = -1 (int32)")
def qarg_max_length_neg(ctx):
    _qargs(ctx, "mlneg", {"x-max-length": ("I", -1)})


@scen("queue.declare x-max-length = -1 (int64)")
def qarg_max_length_neg64(ctx):
    _qargs(ctx, "mlneg64", {"x-max-length": ("l", -1)})


@scen("queue.declare x-max-length = 'abc' (string)")
def qarg_max_length_str(ctx):
    _qargs(ctx, "mlstr", {"x-max-length": "abc"})


@scen("queue.declare x-max-length-bytes = -5")
def qarg_max_length_bytes_neg(ctx):
    _qargs(ctx, "mlbneg", {"x-max-length-bytes": -5})


@scen("queue.declare x-overflow 'bogus'")
def qarg_overflow_bogus(ctx):
    _qargs(ctx, "ovf", {"x-overflow": "bogus"})


@scen("queue.declare x-message-ttl = -1")
def qarg_ttl_neg(ctx):
    _qargs(ctx, "ttlneg", {"x-message-ttl": -1})


@scen("queue.declare x-message-ttl = 'abc'")
def qarg_ttl_str(ctx):
    _qargs(ctx, "ttlstr", {"x-message-ttl": "abc"})


@scen("queue.declare x-expires = 0")
def qarg_expires_zero(ctx):
    _qargs(ctx, "exp0", {"x-expires": 0})


@scen("queue.declare x-max-priority = 300")
def qarg_max_priority_300(ctx):
    _qargs(ctx, "prio", {"x-max-priority": 300})


@scen("queue.declare x-max-priority = -1")
def qarg_max_priority_neg(ctx):
    _qargs(ctx, "prioneg", {"x-max-priority": -1})


@scen("queue.declare x-queue-type 'bogus'")
def qarg_queue_type_bogus(ctx):
    _qargs(ctx, "qtype", {"x-queue-type": "bogus"})


@scen("queue.declare x-queue-type 'quorum' non-durable")
def qarg_quorum_nondurable(ctx):
    _qargs(ctx, "qq", {"x-queue-type": "quorum"})


@scen("queue.declare x-dead-letter-exchange = 5 (int)")
def qarg_dlx_int(ctx):
    _qargs(ctx, "dlxint", {"x-dead-letter-exchange": 5})


@scen("queue.declare x-dead-letter-routing-key without x-dead-letter-exchange")
def qarg_dlrk_only(ctx):
    _qargs(ctx, "dlrk", {"x-dead-letter-routing-key": "k"})


@scen("queue.declare x-queue-mode 'bogus'")
def qarg_queue_mode_bogus(ctx):
    _qargs(ctx, "qmode", {"x-queue-mode": "bogus"})


@scen("queue.declare x-single-active-consumer = 'yes' (string)")
def qarg_sac_str(ctx):
    _qargs(ctx, "sac", {"x-single-active-consumer": "yes"})


@scen("queue.declare unknown argument x-foo=1 (should be ignored)")
def qarg_unknown(ctx):
    _qargs(ctx, "xfoo", {"x-foo": 1})


@scen("queue.bind to a missing exchange")
def q_bind_missing_exchange(ctx):
    c = ctx.connect()
    q = ctx.queue(c, "bme", exclusive=1)
    c.method(1, M.q_bind(q, ctx.name("nosuchx"), "k"))
    ctx.obs(c)


@scen("queue.bind of a missing queue")
def q_bind_missing_queue(ctx):
    c = ctx.connect()
    c.method(1, M.q_bind(ctx.name("nosuchq"), "amq.direct", "k"))
    ctx.obs(c)


@scen("queue.bind with both queue and exchange missing (which is reported?)")
def q_bind_both_missing(ctx):
    c = ctx.connect()
    c.method(1, M.q_bind(ctx.name("nosuchq"), ctx.name("nosuchx"), "k"))
    ctx.obs(c)


@scen("basic.consume with consumer tag 'amq.ctag-custom'")
def consume_amq_tag(ctx):
    c = ctx.connect()
    q = ctx.queue(c, "amqtag", exclusive=1)
    c.method(1, M.consume(q, "amq.ctag-custom"))
    ctx.obs(c)


@scen("queue.bind to the default exchange ''")
def q_bind_default(ctx):
    c = ctx.connect()
    q = ctx.queue(c, "bdef", exclusive=1)
    c.method(1, M.q_bind(q, "", "k"))
    ctx.obs(c)


@scen("queue.unbind of a missing binding (queue and exchange exist)")
def q_unbind_missing_binding(ctx):
    c = ctx.connect()
    q = ctx.queue(c, "ubmb", exclusive=1)
    c.method(1, M.q_unbind(q, "amq.direct", "nokey"))
    ctx.obs(c)


@scen("queue.unbind with a missing queue")
def q_unbind_missing_queue(ctx):
    c = ctx.connect()
    c.method(1, M.q_unbind(ctx.name("nosuchq"), "amq.direct", "k"))
    ctx.obs(c)


@scen("queue.unbind with a missing exchange")
def q_unbind_missing_exchange(ctx):
    c = ctx.connect()
    q = ctx.queue(c, "ubme", exclusive=1)
    c.method(1, M.q_unbind(q, ctx.name("nosuchx"), "k"))
    ctx.obs(c)


@scen("queue.unbind from the default exchange ''")
def q_unbind_default(ctx):
    c = ctx.connect()
    q = ctx.queue(c, "ubdef", exclusive=1)
    c.method(1, M.q_unbind(q, "", q))
    ctx.obs(c)


@scen("queue.purge of a missing queue")
def q_purge_missing(ctx):
    c = ctx.connect()
    c.method(1, M.q_purge(ctx.name("nosuchq")))
    ctx.obs(c)


@scen("queue.delete of a missing queue")
def q_delete_missing(ctx):
    c = ctx.connect()
    c.method(1, M.q_delete(ctx.name("nosuchq")))
    ctx.obs(c)


@scen("queue.delete if_empty=true on a non-empty queue")
def q_delete_if_empty(ctx):
    c = ctx.connect()
    q = ctx.queue(c, "die", exclusive=1)
    c.publish(1, "", q)
    c.method(1, M.q_delete(q, if_empty=1))
    ctx.obs(c)


@scen("queue.delete if_unused=true on a queue with a consumer")
def q_delete_if_unused(ctx):
    c = ctx.connect()
    q = ctx.queue(c, "diu", exclusive=1)
    c.rpc(1, M.consume(q, "c"), (60, 21))
    c.method(1, M.q_delete(q, if_unused=1))
    ctx.obs(c)


@scen("queue.delete of a queue with a consumer on the same channel (cancel notify?)")
def q_delete_with_consumer(ctx):
    c = ctx.connect()
    q = ctx.queue(c, "dwc", exclusive=1)
    c.rpc(1, M.consume(q, "c"), (60, 21))
    c.method(1, M.q_delete(q))
    ctx.obs(c)


def _exclusive_other(ctx, s, op):
    owner = ctx.connect(main=False)
    q = ctx.queue(owner, s, exclusive=1)
    c = ctx.connect()
    c.method(1, op(q))
    ctx.obs(c)


@scen("basic.consume on another connection's exclusive queue")
def excl_consume(ctx):
    _exclusive_other(ctx, "exc1", lambda q: M.consume(q, "t"))


@scen("queue.declare passive on another connection's exclusive queue")
def excl_passive(ctx):
    _exclusive_other(ctx, "exc2", lambda q: M.q_declare(q, passive=1))


@scen("queue.declare (non-passive) of another connection's exclusive queue")
def excl_declare(ctx):
    _exclusive_other(ctx, "exc3", lambda q: M.q_declare(q))


@scen("basic.get on another connection's exclusive queue")
def excl_get(ctx):
    _exclusive_other(ctx, "exc4", lambda q: M.get(q))


@scen("queue.delete of another connection's exclusive queue")
def excl_delete(ctx):
    _exclusive_other(ctx, "exc5", lambda q: M.q_delete(q))


@scen("queue.purge of another connection's exclusive queue")
def excl_purge(ctx):
    _exclusive_other(ctx, "exc6", lambda q: M.q_purge(q))


@scen("queue.bind of another connection's exclusive queue")
def excl_bind(ctx):
    _exclusive_other(ctx, "exc7", lambda q: M.q_bind(q, "amq.direct", "k"))


# --------------------------------------------------------------------------
# acks

@scen("basic.ack of unknown delivery tag 99")
def ack_unknown(ctx):
    c = ctx.connect()
    c.method(1, M.ack(99))
    ctx.obs(c)


@scen("basic.ack multiple=true of unknown tag 99 (nothing outstanding)")
def ack_multiple_unknown(ctx):
    c = ctx.connect()
    c.method(1, M.ack(99, multiple=1))
    ctx.obs(c)


@scen("basic.ack multiple=true tag 99 with tag 1 outstanding")
def ack_multiple_beyond(ctx):
    c = ctx.connect()
    q = ctx.queue(c, "amb", exclusive=1)
    c.publish(1, "", q)
    c.get_message(1, q)
    c.method(1, M.ack(99, multiple=1))
    ctx.obs(c)


@scen("basic.nack of unknown delivery tag 99")
def nack_unknown(ctx):
    c = ctx.connect()
    c.method(1, M.nack(99))
    ctx.obs(c)


@scen("basic.nack multiple=true of unknown tag 99")
def nack_multiple_unknown(ctx):
    c = ctx.connect()
    c.method(1, M.nack(99, multiple=1))
    ctx.obs(c)


@scen("basic.reject of unknown delivery tag 99")
def reject_unknown(ctx):
    c = ctx.connect()
    c.method(1, M.reject(99))
    ctx.obs(c)


@scen("basic.ack tag 0 multiple=true with nothing outstanding")
def ack_zero_multiple(ctx):
    c = ctx.connect()
    c.method(1, M.ack(0, multiple=1))
    ctx.obs(c)


@scen("basic.ack tag 0 multiple=false")
def ack_zero_single(ctx):
    c = ctx.connect()
    c.method(1, M.ack(0))
    ctx.obs(c)


@scen("basic.nack tag 0 multiple=true with nothing outstanding")
def nack_zero_multiple(ctx):
    c = ctx.connect()
    c.method(1, M.nack(0, multiple=1))
    ctx.obs(c)


@scen("double basic.ack of the same tag")
def ack_double(ctx):
    c = ctx.connect()
    q = ctx.queue(c, "dack", exclusive=1)
    c.publish(1, "", q)
    c.get_message(1, q)
    c.method(1, M.ack(1))
    c.method(1, M.ack(1))
    ctx.obs(c)


@scen("basic.ack of a tag from basic.get no_ack=true")
def ack_after_noack_get(ctx):
    c = ctx.connect()
    q = ctx.queue(c, "ana", exclusive=1)
    c.publish(1, "", q)
    c.get_message(1, q, no_ack=1)
    c.method(1, M.ack(1))
    ctx.obs(c)


@scen("basic.ack on channel 2 of a tag delivered on channel 1")
def ack_other_channel(ctx):
    c = ctx.connect()
    c.open_channel(2)
    q = ctx.queue(c, "aoc", exclusive=1)
    c.publish(1, "", q)
    c.get_message(1, q)
    c.method(2, M.ack(1))
    ctx.obs(c)


@scen("basic.reject requeue=true then basic.get (redelivered flag)")
def reject_requeue(ctx):
    c = ctx.connect()
    q = ctx.queue(c, "rjr", exclusive=1)
    c.publish(1, "", q)
    c.get_message(1, q)
    c.method(1, M.reject(1, requeue=1))
    c.method(1, M.get(q, no_ack=1))
    ctx.obs(c)


# --------------------------------------------------------------------------
# confirm / tx

@scen("confirm.select then tx.select")
def confirm_then_tx(ctx):
    c = ctx.connect()
    c.rpc(1, M.confirm_select(), (85, 11))
    c.method(1, M.tx_select())
    ctx.obs(c)


@scen("tx.select then confirm.select")
def tx_then_confirm(ctx):
    c = ctx.connect()
    c.rpc(1, M.tx_select(), (90, 11))
    c.method(1, M.confirm_select())
    ctx.obs(c)


@scen("tx.commit without tx.select")
def tx_commit_no_select(ctx):
    c = ctx.connect()
    c.method(1, M.tx_commit())
    ctx.obs(c)


@scen("tx.rollback without tx.select")
def tx_rollback_no_select(ctx):
    c = ctx.connect()
    c.method(1, M.tx_rollback())
    ctx.obs(c)


@scen("confirm.select twice")
def confirm_twice(ctx):
    c = ctx.connect()
    c.rpc(1, M.confirm_select(), (85, 11))
    c.method(1, M.confirm_select())
    ctx.obs(c)


@scen("confirm.select nowait=true then publish")
def confirm_nowait(ctx):
    c = ctx.connect()
    c.method(1, M.confirm_select(nowait=1))
    c.publish(1, "", "nowhere-" + ctx.tok)
    ctx.obs(c)


@scen("tx.select twice")
def tx_twice(ctx):
    c = ctx.connect()
    c.rpc(1, M.tx_select(), (90, 11))
    c.method(1, M.tx_select())
    ctx.obs(c)


@scen("tx: publish mandatory unroutable then tx.commit (when does basic.return come?)")
def tx_mandatory_return(ctx):
    c = ctx.connect()
    c.rpc(1, M.tx_select(), (90, 11))
    c.publish(1, "", "nowhere-" + ctx.tok, mandatory=1)
    ctx.obs(c, "publish", window=1.5)
    c.method(1, M.tx_commit())
    ctx.obs(c, "commit")


@scen("tx: basic.ack unknown tag 99 inside a transaction, then commit")
def tx_ack_unknown(ctx):
    c = ctx.connect()
    c.rpc(1, M.tx_select(), (90, 11))
    c.method(1, M.ack(99))
    ctx.obs(c, "ack", window=1.5)
    if 1 not in c.server_closed and not c.dead:
        c.method(1, M.tx_commit())
        ctx.obs(c, "commit")


# --------------------------------------------------------------------------
# publishing

@scen("basic.publish to an internal exchange")
def pub_internal(ctx):
    c = ctx.connect()
    x = ctx.exchange(c, "xinternal", "direct", internal=1)
    c.publish(1, x, "k")
    ctx.obs(c)


@scen("basic.publish to a missing exchange: method only, then header+body")
def pub_missing_exchange(ctx):
    c = ctx.connect()
    x = ctx.name("nosuchx")
    c.method(1, M.publish(x, "k"))
    ctx.obs(c, "after method frame", window=1.5)
    if not c.dead and 1 not in c.server_closed:
        c.send(frame(FRAME_HEADER, 1, header_payload(2)))
        ctx.obs(c, "after header", window=1.5)
    if not c.dead and 1 not in c.server_closed:
        c.send(frame(FRAME_BODY, 1, b"hi"))
        ctx.obs(c, "after body")


@scen("basic.publish to a missing exchange on a confirm channel")
def pub_missing_exchange_confirm(ctx):
    c = ctx.connect()
    c.rpc(1, M.confirm_select(), (85, 11))
    c.publish(1, ctx.name("nosuchx"), "k")
    ctx.obs(c)


@scen("basic.publish to missing exchange then basic.qos right behind it")
def pub_missing_exchange_pipelined(ctx):
    c = ctx.connect()
    c.publish(1, ctx.name("nosuchx"), "k")
    c.method(1, M.qos(0, 5))
    ctx.obs(c)


@scen("basic.publish mandatory unroutable")
def pub_mandatory_unroutable(ctx):
    c = ctx.connect()
    c.publish(1, "amq.direct", "nowhere-" + ctx.tok, mandatory=1)
    ctx.obs(c)


@scen("basic.publish mandatory unroutable on a confirm channel")
def pub_mandatory_unroutable_confirm(ctx):
    c = ctx.connect()
    c.rpc(1, M.confirm_select(), (85, 11))
    c.publish(1, "amq.direct", "nowhere-" + ctx.tok, mandatory=1)
    ctx.obs(c)


@scen("basic.publish non-mandatory unroutable on a confirm channel")
def pub_unroutable_confirm(ctx):
    c = ctx.connect()
    c.rpc(1, M.confirm_select(), (85, 11))
    c.publish(1, "amq.direct", "nowhere-" + ctx.tok)
    ctx.obs(c)


@scen("basic.publish mandatory to default exchange, missing queue")
def pub_default_missing_queue(ctx):
    c = ctx.connect()
    c.publish(1, "", "nosuchq-" + ctx.tok, mandatory=1)
    ctx.obs(c)


@scen("basic.publish with user-id 'bob' (authenticated as guest)")
def pub_user_id_mismatch(ctx):
    c = ctx.connect()
    c.publish(1, "", "nowhere", prop=props(user_id="bob"))
    ctx.obs(c)


@scen("basic.publish with user-id 'guest' (matches)")
def pub_user_id_match(ctx):
    c = ctx.connect()
    q = ctx.queue(c, "uid", exclusive=1)
    c.publish(1, "", q, prop=props(user_id="guest"))
    c.method(1, M.get(q, no_ack=1))
    ctx.obs(c)


@scen("basic.publish with expiration 'abc'")
def pub_expiration_bad(ctx):
    c = ctx.connect()
    c.publish(1, "", "nowhere", prop=props(expiration="abc"))
    ctx.obs(c)


@scen("basic.publish with expiration '-1'")
def pub_expiration_negative(ctx):
    c = ctx.connect()
    c.publish(1, "", "nowhere", prop=props(expiration="-1"))
    ctx.obs(c)


@scen("basic.publish with reply-to 'amq.rabbitmq.reply-to' without consuming it")
def pub_direct_reply_to_no_consumer(ctx):
    c = ctx.connect()
    c.publish(1, "", "nowhere", prop=props(reply_to="amq.rabbitmq.reply-to"))
    ctx.obs(c)


@scen("basic.consume 'amq.rabbitmq.reply-to' with no_ack=false")
def consume_direct_reply_to_ack(ctx):
    c = ctx.connect()
    c.method(1, M.consume("amq.rabbitmq.reply-to", "t", no_ack=0))
    ctx.obs(c)


@scen("basic.publish with priority 255 and delivery-mode 9")
def pub_weird_props(ctx):
    c = ctx.connect()
    q = ctx.queue(c, "wprops", exclusive=1)
    c.publish(1, "", q, prop=props(priority=255, delivery_mode=9))
    c.method(1, M.get(q, no_ack=1))
    ctx.obs(c)


@scen("basic.publish with a CC header that is a string, not an array")
def pub_cc_not_array(ctx):
    c = ctx.connect()
    q = ctx.queue(c, "ccstr", exclusive=1)
    c.publish(1, "", q, prop=props(headers={"CC": "other"}))
    c.method(1, M.get(q, no_ack=1))
    ctx.obs(c)


@scen("basic.publish with a BCC header that is a table")
def pub_bcc_table(ctx):
    c = ctx.connect()
    q = ctx.queue(c, "bcctab", exclusive=1)
    c.publish(1, "", q, prop=props(headers={"BCC": {"a": "b"}}))
    c.method(1, M.get(q, no_ack=1))
    ctx.obs(c)


@scen("basic.publish to the default exchange with CC [second queue] and BCC [third]; get from the third")
def pub_cc_bcc_default_exchange(ctx):
    c = ctx.connect()
    q1 = ctx.queue(c, "cc1", exclusive=1)
    q2 = ctx.queue(c, "cc2", exclusive=1)
    q3 = ctx.queue(c, "cc3", exclusive=1)
    c.publish(1, "", q1, prop=props(headers={"CC": [q2], "BCC": [q3]}))
    for q in (q1, q2, q3):
        c.method(1, M.get(q, no_ack=1))
    ctx.obs(c)


# --------------------------------------------------------------------------
# closing races

@scen("client channel.close, then basic.qos + publish on that channel before close-ok")
def ch_close_then_frames(ctx):
    c = ctx.connect()
    c.send(mframe(1, M.ch_close(200, "bye")) + mframe(1, M.qos(0, 10)) +
           mframe(1, M.publish("", "x")) + frame(FRAME_HEADER, 1, header_payload(2)) +
           frame(FRAME_BODY, 1, b"hi"))
    ctx.obs(c)


@scen("server channel.close (ack 99), client sends basic.qos before close-ok, then close-ok")
def server_close_then_frames(ctx):
    c = ctx.connect()
    c.method(1, M.ack(99))
    ctx.obs(c, "ack 99", window=2.0)
    if c.dead:
        return
    c.method(1, M.qos(0, 10))
    ctx.obs(c, "basic.qos before close-ok", window=1.5)
    if c.dead:
        return
    c.method(1, M.ch_close_ok())
    c.server_closed.discard(1)
    ctx.obs(c, "close-ok", window=1.0)
    if c.dead:
        return
    c.method(1, M.ch_open())
    ctx.obs(c, "reopen ch1")


@scen("server channel.close (ack 99), client answers with channel.close instead of close-ok")
def server_close_answered_with_close(ctx):
    c = ctx.connect()
    c.method(1, M.ack(99))
    ctx.obs(c, "ack 99", window=2.0)
    if c.dead:
        return
    c.method(1, M.ch_close(200, "bye"))
    c.server_closed.discard(1)
    ctx.obs(c, "client channel.close")


@scen("client channel.close, waits for close-ok, then basic.qos on the closed channel")
def ch_closed_then_method(ctx):
    c = ctx.connect()
    c.method(1, M.ch_close(200, "bye"))
    ctx.obs(c, "channel.close", window=1.0)
    if c.dead:
        return
    c.method(1, M.qos(0, 10))
    ctx.obs(c, "basic.qos after close-ok")


@scen("client channel.close then immediately channel.open on the same channel")
def ch_close_then_reopen(ctx):
    c = ctx.connect()
    c.send(mframe(1, M.ch_close(200, "bye")) + mframe(1, M.ch_open()))
    ctx.obs(c)


@scen("client channel.close with reply code 406 and class/method 60/40")
def ch_close_with_error_code(ctx):
    c = ctx.connect()
    c.method(1, M.ch_close(406, "client error", 60, 40))
    ctx.obs(c)


@scen("client connection.close, then basic.qos on ch1 before close-ok")
def conn_close_then_frames(ctx):
    c = ctx.connect()
    c.send(mframe(0, M.conn_close(200, "bye")) + mframe(1, M.qos(0, 10)))
    ctx.obs(c)


@scen("server connection.close (frame error), client keeps sending instead of close-ok")
def server_conn_close_ignored(ctx):
    c = ctx.connect()
    c.send(frame(FRAME_METHOD, 1, M.qos(0, 10), end=0x00))
    end = time.time() + 3
    evs = []
    t0 = time.time()
    try:
        f = c.read_frame(end)
        evs.append("no reply" if f is None else c.describe(f)[0])
        t0 = time.time()
        c.method(1, M.qos(0, 10))
        f = c.read_frame(time.time() + 6)
        evs.append("then: " + ("nothing for 6s" if f is None else c.describe(f)[0]))
    except Closed:
        evs.append("socket closed" + _after(t0))
    ctx.steps.append((None, evs))


# --------------------------------------------------------------------------
# driver

def run_all(host, port, tok, selected, jobs):
    results = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as ex:
        futs = {ex.submit(run_scenario, sid, fn, host, port, tok): sid for sid, _t, fn in selected}
        for f in concurrent.futures.as_completed(futs):
            results[futs[f]] = f.result()
    return results


# Why a scenario still differs: written into DIFF.md next to it. "To do" marks a difference
# that is a known gap (with its issue item), not a choice.
WHY = {
    "hdr_0_8": "RabbitMQ still accepts the 0-8 header; Warren speaks 0-9-1 only and answers with its header (spec 4.2.2). No supported client sends it.",
    "hdr_0_9": "As hdr_0_8, for the 0-9 header.",
    "tune_heartbeat_silent": "Both send heartbeats and drop a silent client; the drop comes about 1 s apart (timer granularity).",
    "conn_close_normal": "After the client's close and our close-ok, RabbitMQ keeps the socket until the client closes it; Warren waits 2 s for that, then closes. Clients close on close-ok, so none waits.",
    "conn_close_mid_content": "As conn_close_normal.",
    "conn_close_then_frames": "As conn_close_normal.",
    "frame_too_big_9": "Same close and text; RabbitMQ keeps the socket 3 s after close-ok, Warren closes it (spec 4.2.2: the peer that sent close closes).",
    "frame_method_too_big": "As frame_too_big_9.",
    "frame_huge_size_field": "As frame_too_big_9.",
    "frame_bad_end": "RabbitMQ quotes the frame's octets; Warren refuses from the header without buffering the payload, so it cannot. Socket timing as frame_too_big_9.",
    "frame_unknown_type": "RabbitMQ quotes the payload octets; Warren refuses from the header alone (it never buffers an unknown frame).",
    "frame_type_4": "As frame_unknown_type.",
    "content_body_too_long": "RabbitMQ notices only at the next frame (505); Warren refuses the body that overflows its header at once (501).",
    "content_body_too_long_split": "As content_body_too_long.",
    "content_header_truncated_props": "RabbitMQ crashes the connection (541 INTERNAL_ERROR); Warren answers 501 cannot decode.",
    "content_header_huge_size": "Warren refuses a body above max_message_size from its header, before buffering it (406); RabbitMQ waits for the body.",
    "method_unknown_class": "RabbitMQ drops the socket; Warren sends 503 unimplemented method so the client can tell why.",
    "method_unknown_method": "As method_unknown_class.",
    "method_client_deliver": "RabbitMQ ignores a server-only method from a client; Warren answers 503.",
    "table_unknown_tag": "RabbitMQ drops the socket; Warren answers 501 cannot decode.",
    "ex_type_plugin": "Warren has the delayed-message exchange built in (RabbitMQ needs the plugin, not enabled in the reference): the probe's declare lacks x-delayed-type, hence 406.",
    "ch_close_then_reopen": "Same 504; Warren has already answered the close with close-ok when it reads the open sent with it.",
    "server_conn_close_ignored": "Both discard what follows their close; RabbitMQ closes the socket after 3 s, Warren when the client gives up.",
}


def md_escape(s):
    return s.replace("|", "\\|").replace("\n", " ")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--a", default="127.0.0.1:5672", help="reference broker (default RabbitMQ 127.0.0.1:5672)")
    ap.add_argument("--b", default="127.0.0.1:5690", help="broker under test (default Warren 127.0.0.1:5690)")
    ap.add_argument("--a-name", default="RabbitMQ")
    ap.add_argument("--b-name", default="Warren")
    ap.add_argument("--single", help="run against one broker host:port and print its answers")
    ap.add_argument("--only", action="append", help="substring of scenario ids to run (repeatable)")
    ap.add_argument("--jobs", type=int, default=8)
    ap.add_argument("--out-dir", default=here)
    ap.add_argument("--no-write", action="store_true", help="do not write DIFF.md / results json")
    ap.add_argument("--list", action="store_true")
    args = ap.parse_args()

    selected = [s for s in SCENARIOS if not args.only or any(o in s[0] for o in args.only)]
    if args.list:
        for sid, title, _ in SCENARIOS:
            print("%-40s %s" % (sid, title))
        return 0
    tok = "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(6))

    def hp(s):
        h, p = s.rsplit(":", 1)
        return h, int(p)

    if args.single:
        h, p = hp(args.single)
        res = run_all(h, p, tok, selected, args.jobs)
        for sid, title, _ in selected:
            print("%s  (%s)\n    %s" % (sid, title, res[sid]))
        return 0

    ah, ap_ = hp(args.a)
    bh, bp = hp(args.b)
    t0 = time.time()
    box = {}
    ta = threading.Thread(target=lambda: box.__setitem__("a", run_all(ah, ap_, tok, selected, args.jobs)))
    tb = threading.Thread(target=lambda: box.__setitem__("b", run_all(bh, bp, tok, selected, args.jobs)))
    ta.start(); tb.start(); ta.join(); tb.join()
    ra, rb = box["a"], box["b"]
    diffs = [(sid, title) for sid, title, _ in selected if ra[sid] != rb[sid]]
    same = [(sid, title) for sid, title, _ in selected if ra[sid] == rb[sid]]

    for sid, title in diffs:
        print("=" * 100)
        print("%s: %s" % (sid, title))
        print("  %-9s %s" % (args.a_name + ":", ra[sid]))
        print("  %-9s %s" % (args.b_name + ":", rb[sid]))
    print("=" * 100)
    print("%d scenarios, %d differ, %d identical (%.1fs)" % (len(selected), len(diffs), len(same), time.time() - t0))

    if not args.no_write:
        os.makedirs(args.out_dir, exist_ok=True)
        lines = [
            "# Raw AMQP 0-9-1 edge cases: %s vs %s" % (args.a_name, args.b_name), "",
            "Generated by `interop/protocol/probe.py` (%s, %s at %s, %s at %s). "
            "%d scenarios, %d differ, %d identical." % (
                time.strftime("%Y-%m-%d %H:%M:%S"), args.a_name, args.a, args.b_name, args.b,
                len(selected), len(diffs), len(same)), "",
            "Notation: `connection.close(code, text, class_id, method_id)`, `chN channel.close(...)`; "
            "`silence(3s)` = nothing within 3 s; after a connection.close the probe sends close-ok and "
            "records whether the socket then closes. `[after] alive` = any server channel.close was "
            "acknowledged and channel.open on ch99 got open-ok. Names: `T` = per-run random token.", "",
            "## Differences", "",
            "| scenario | %s | %s | why |" % (args.a_name, args.b_name), "| --- | --- | --- | --- |",
        ]
        for sid, title in diffs:
            why = WHY.get(sid, "**no reason recorded yet**")
            lines.append("| **%s**<br>%s | %s | %s | %s |" % (
                sid, md_escape(title), md_escape(ra[sid]), md_escape(rb[sid]), md_escape(why)))
        lines += ["", "## Identical answers", "", "| scenario | answer (both) |", "| --- | --- |"]
        for sid, title in same:
            lines.append("| **%s**<br>%s | %s |" % (sid, md_escape(title), md_escape(ra[sid])))
        with open(os.path.join(args.out_dir, "DIFF.md"), "w") as f:
            f.write("\n".join(lines) + "\n")
        for key, res in (("a", ra), ("b", rb)):
            with open(os.path.join(args.out_dir, "results-%s.json" % key), "w") as f:
                json.dump({"broker": args.a if key == "a" else args.b,
                           "results": {sid: res[sid] for sid, _t, _f in selected}}, f, indent=1)
        print("wrote", os.path.join(args.out_dir, "DIFF.md"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
