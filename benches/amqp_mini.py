#!/usr/bin/env python3
"""A tiny AMQP 0-9-1 client (standard library only) for the bench scripts' housekeeping.

It does just enough to log in and run a few synchronous methods: passive queue.declare
(message count), queue.delete and exchange.delete. It is not used to move messages.

  amqp_mini.py count URI QUEUE              prints the message count, exit 2 if the queue is absent
  amqp_mini.py delete-queue URI QUEUE...    deletes queues (absent ones are fine)
  amqp_mini.py delete-exchange URI NAME...  deletes exchanges (absent ones are fine)
  amqp_mini.py publish-get URI QUEUE BODY   declares QUEUE, publishes BODY, gets it back
                                            (exit 1 if what comes back differs)
  amqp_mini.py wait-count URI QUEUE N TIMEOUT
      polls (new connection each time) until the port accepts, the login succeeds and a
      passive declare reports at least N messages; prints the epoch time (float seconds)
      at which that happened and the count, as JSON. Exit 1 on timeout.
"""

import json
import socket
import struct
import sys
import time
import urllib.parse

FRAME_METHOD, FRAME_HEADER, FRAME_BODY, FRAME_HEARTBEAT = 1, 2, 3, 8
FRAME_END = b"\xce"


class AmqpError(Exception):
    def __init__(self, code, text, class_id=0, method_id=0):
        super().__init__(f"{code} {text} (class {class_id}, method {method_id})")
        self.code = code
        self.text = text


def shortstr(s):
    b = s.encode()
    return struct.pack("!B", len(b)) + b


def longstr(b):
    if isinstance(b, str):
        b = b.encode()
    return struct.pack("!I", len(b)) + b


EMPTY_TABLE = struct.pack("!I", 0)


class Conn:
    def __init__(self, uri, timeout=10.0):
        u = urllib.parse.urlparse(uri)
        self.host = u.hostname or "127.0.0.1"
        self.port = u.port or 5672
        self.user = urllib.parse.unquote(u.username or "guest")
        self.password = urllib.parse.unquote(u.password or "guest")
        vhost = urllib.parse.unquote(u.path[1:]) if u.path and u.path != "/" else "/"
        self.sock = socket.create_connection((self.host, self.port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.buf = b""
        self.sock.sendall(b"AMQP\x00\x00\x09\x01")
        self.expect(0, 10, 10)  # connection.start
        resp = b"\x00" + self.user.encode() + b"\x00" + self.password.encode()
        self.send_method(0, 10, 11, EMPTY_TABLE + shortstr("PLAIN") + longstr(resp) + shortstr("en_US"))
        args = self.expect(0, 10, 30)  # connection.tune
        channel_max, frame_max, _hb = struct.unpack("!HIH", args[:8])
        self.send_method(0, 10, 31, struct.pack("!HIH", channel_max or 2047, frame_max or 131072, 0))
        self.send_method(0, 10, 40, shortstr(vhost) + shortstr("") + b"\x00")
        self.expect(0, 10, 41)  # connection.open-ok
        self.channel = 0

    # -- framing
    def recv_exact(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed by the broker")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_frame(self):
        head = self.recv_exact(7)
        ftype, ch, size = struct.unpack("!BHI", head)
        payload = self.recv_exact(size)
        if self.recv_exact(1) != FRAME_END:
            raise ConnectionError("bad frame end")
        return ftype, ch, payload

    def send_method(self, ch, cls, meth, args=b""):
        payload = struct.pack("!HH", cls, meth) + args
        self.sock.sendall(struct.pack("!BHI", FRAME_METHOD, ch, len(payload)) + payload + FRAME_END)

    def expect(self, ch, cls, meth):
        while True:
            ftype, fch, payload = self.read_frame()
            if ftype != FRAME_METHOD:
                continue
            c, m = struct.unpack("!HH", payload[:4])
            args = payload[4:]
            if (c, m) == (cls, meth) and fch == ch:
                return args
            if (c, m) in ((10, 50), (20, 40)):  # connection.close / channel.close
                code = struct.unpack("!H", args[:2])[0]
                tlen = args[2]
                text = args[3:3 + tlen].decode(errors="replace")
                if (c, m) == (20, 40):
                    self.send_method(fch, 20, 41)
                    self.channel = 0
                else:
                    self.send_method(0, 10, 51)
                raise AmqpError(code, text, *struct.unpack("!HH", args[3 + tlen:7 + tlen]))

    def chan(self):
        if not self.channel:
            self.channel = getattr(self, "_next", 0) + 1
            self._next = self.channel
            self.send_method(self.channel, 20, 10, shortstr(""))
            self.expect(self.channel, 20, 11)
        return self.channel

    # -- methods
    def queue_count(self, queue):
        ch = self.chan()
        self.send_method(ch, 50, 10, struct.pack("!H", 0) + shortstr(queue) + b"\x01" + EMPTY_TABLE)
        args = self.expect(ch, 50, 11)
        n = args[0]
        msgs, consumers = struct.unpack("!II", args[1 + n:9 + n])
        return msgs, consumers

    def queue_delete(self, queue):
        ch = self.chan()
        self.send_method(ch, 50, 40, struct.pack("!H", 0) + shortstr(queue) + b"\x00")
        args = self.expect(ch, 50, 41)
        return struct.unpack("!I", args[:4])[0]

    def exchange_delete(self, name):
        ch = self.chan()
        self.send_method(ch, 40, 20, struct.pack("!H", 0) + shortstr(name) + b"\x00")
        self.expect(ch, 40, 21)

    def queue_declare(self, queue):
        ch = self.chan()
        self.send_method(ch, 50, 10, struct.pack("!H", 0) + shortstr(queue) + b"\x00" + EMPTY_TABLE)
        self.expect(ch, 50, 11)

    def publish(self, queue, body):
        """basic.publish through the default exchange; a passive declare after it is the
        round trip that shows the broker took it."""
        ch = self.chan()
        self.send_method(ch, 60, 40, struct.pack("!H", 0) + shortstr("") + shortstr(queue) + b"\x00")
        header = struct.pack("!HHQH", 60, 0, len(body), 0)
        self.sock.sendall(struct.pack("!BHI", FRAME_HEADER, ch, len(header)) + header + FRAME_END)
        self.sock.sendall(struct.pack("!BHI", FRAME_BODY, ch, len(body)) + body + FRAME_END)
        self.queue_count(queue)

    def get(self, queue):
        """basic.get with no-ack: the body, or None when the queue is empty."""
        ch = self.chan()
        self.send_method(ch, 60, 70, struct.pack("!H", 0) + shortstr(queue) + b"\x01")
        while True:
            ftype, fch, payload = self.read_frame()
            if ftype != FRAME_METHOD or fch != ch:
                continue
            c, m = struct.unpack("!HH", payload[:4])
            if (c, m) == (60, 72):  # get-empty
                return None
            if (c, m) == (60, 71):  # get-ok, then the content
                break
        _, _, header = self.read_frame()
        size = struct.unpack("!Q", header[4:12])[0]
        body = b""
        while len(body) < size:
            _, _, chunk = self.read_frame()
            body += chunk
        return body

    def close(self):
        try:
            self.send_method(0, 10, 50, struct.pack("!H", 200) + shortstr("bye") + struct.pack("!HH", 0, 0))
            self.expect(0, 10, 51)
        except Exception:
            pass
        try:
            self.sock.close()
        except OSError:
            pass


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, uri = argv[0], argv[1]
    if cmd == "count":
        c = Conn(uri)
        try:
            msgs, consumers = c.queue_count(argv[2])
        except AmqpError as e:
            if e.code == 404:
                print("absent")
                return 2
            raise
        finally:
            c.close()
        print(msgs)
        return 0
    if cmd in ("delete-queue", "delete-exchange"):
        c = Conn(uri)
        try:
            for name in argv[2:]:
                try:
                    if cmd == "delete-queue":
                        n = c.queue_delete(name)
                        print(f"deleted queue {name} ({n} messages)")
                    else:
                        c.exchange_delete(name)
                        print(f"deleted exchange {name}")
                except AmqpError as e:
                    if e.code != 404:
                        raise
        finally:
            c.close()
        return 0
    if cmd == "publish-get":
        # Declares QUEUE, publishes BODY to it and gets it back; prints the body.
        queue, body = argv[2], argv[3].encode()
        c = Conn(uri)
        try:
            c.queue_declare(queue)
            c.publish(queue, body)
            got = c.get(queue)
        finally:
            c.close()
        print(got.decode(errors="replace") if got is not None else "(empty)")
        return 0 if got == body else 1
    if cmd == "wait-count":
        queue, want, timeout = argv[2], int(argv[3]), float(argv[4])
        deadline = time.time() + timeout
        last = "never connected"
        attempts = 0
        while time.time() < deadline:
            attempts += 1
            try:
                c = Conn(uri, timeout=5)
                try:
                    msgs, _ = c.queue_count(queue)
                finally:
                    c.close()
                if msgs >= want:
                    print(json.dumps({"ready_at": time.time(), "messages": msgs, "attempts": attempts}))
                    return 0
                last = f"queue has {msgs} messages"
            except (OSError, ConnectionError, AmqpError) as e:
                last = f"{type(e).__name__}: {e}"
            time.sleep(0.05)
        print(json.dumps({"ready_at": None, "last": last, "attempts": attempts}))
        return 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
