#!/usr/bin/env python3
"""Does the work of benches/backlog: one broker at a time, a 1,000,000-message persistent backlog.

Standard library only (plus amqp_mini.py next to it, and PerfTest / BacklogDrain.java for the
message traffic).

  backlog_helper.py measure --broker warren|rabbitmq --jsonl FILE ...
  backlog_helper.py report --jsonl FILE --out BACKLOG.md ...
"""

import argparse
import datetime
import json
import os
import platform
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import amqp_mini  # noqa: E402
from compare_helper import alive, cpu_model, mem_total, proc_cpu_seconds, proc_status_kb  # noqa: E402

RABBIT_MNESIA = "/var/lib/rabbitmq/mnesia"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def log(msg):
    print(f"  [{datetime.datetime.now().strftime('%H:%M:%S')}] {msg}", flush=True)


def du_bytes(path):
    out = subprocess.run(["du", "-sb", path], capture_output=True, text=True)
    if out.returncode != 0 and not out.stdout:
        return None
    return int(out.stdout.split()[0])


def rss_kb(pid):
    try:
        return proc_status_kb(pid, "VmRSS")
    except OSError:
        return None


class Sampler(threading.Thread):
    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, None, threading.Event()

    def run(self):
        while not self.stop.is_set():
            v = rss_kb(self.pid)
            if v is not None and (self.peak is None or v > self.peak):
                self.peak = v
            self.stop.wait(0.25)

    def done(self):
        self.stop.set()
        self.join()
        return self.peak


def wait_count(uri, queue, want, timeout):
    """Polls until the broker answers a passive declare with >= want messages. Returns (epoch, info)."""
    deadline = time.time() + timeout
    last, attempts = "never connected", 0
    while time.time() < deadline:
        attempts += 1
        try:
            c = amqp_mini.Conn(uri, timeout=5)
            try:
                msgs, _ = c.queue_count(queue)
            finally:
                c.close()
            if msgs >= want:
                return time.time(), {"messages": msgs, "attempts": attempts}
            last = f"queue has {msgs} messages"
        except (OSError, ConnectionError, amqp_mini.AmqpError) as e:
            last = f"{type(e).__name__}: {e}"
        time.sleep(0.05)
    return None, {"last": last, "attempts": attempts}


def queue_count(uri, queue):
    c = amqp_mini.Conn(uri)
    try:
        return c.queue_count(queue)[0]
    finally:
        c.close()


# ---------------------------------------------------------------- brokers

class Warren:
    name = "warren"

    def __init__(self, args):
        self.bin = args.warren_bin
        self.port = args.warren_port
        self.data = tempfile.mkdtemp(prefix="warren-backlog-data.")
        self.logf = open(args.warren_log, "a")
        self.proc = None
        self.uri = f"amqp://guest:guest@127.0.0.1:{self.port}"

    def start(self):
        self.proc = subprocess.Popen(
            [self.bin, "--port", str(self.port), "--data-dir", self.data, "--listen", "127.0.0.1"],
            stdout=self.logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        return self.proc.pid

    def pid(self):
        return self.proc.pid

    def wait_port(self, timeout=20):
        t, info = wait_port("127.0.0.1", self.port, timeout)
        return t

    def prepare(self, queue):
        self.start()
        if self.wait_port() is None:
            raise RuntimeError("Warren did not open its port")

    def stop(self, timeout=120):
        """SIGTERM; returns seconds until the process exited (None if it had to be killed)."""
        if self.proc is None or self.proc.poll() is not None:
            return 0.0
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
            return time.monotonic() - t0
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None

    def restart(self, queue, want, timeout):
        t0 = time.time()
        down = self.stop()
        t_start = time.time()
        self.start()
        ready, info = wait_count(self.uri, queue, want, timeout)
        return {
            "stop_s": down,
            "start_to_ready_s": None if ready is None else ready - t_start,
            "restart_total_s": None if ready is None else ready - t0,
            "ready_info": info,
        }

    def disk_path(self):
        return self.data

    def cleanup(self):
        self.stop()
        self.logf.close()
        shutil.rmtree(self.data, ignore_errors=True)


def wait_port(host, port, timeout):
    import socket
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1):
                return time.time(), None
        except OSError:
            time.sleep(0.05)
    return None, None


class Rabbit:
    name = "rabbitmq"

    def __init__(self, args):
        self.uri = "amqp://guest:guest@127.0.0.1:5672"

    def pid(self):
        out = subprocess.run(["rabbitmqctl", "-q", "eval", "os:getpid()."], capture_output=True, text=True)
        digits = re.sub(r"[^0-9]", "", out.stdout)
        return int(digits) if digits else None

    def prepare(self, queue):
        if subprocess.run(["rabbitmqctl", "-q", "status"], capture_output=True).returncode != 0:
            subprocess.run(["service", "rabbitmq-server", "start"], check=True)
            subprocess.run(["rabbitmqctl", "-q", "await_startup", "--timeout", "120"], check=True)
        c = amqp_mini.Conn(self.uri)
        try:
            try:
                n = c.queue_delete(queue)  # RabbitMQ answers delete-ok (0) for an absent queue too
                if n:
                    log(f"deleted a leftover {queue} with {n} messages")
            except amqp_mini.AmqpError as e:
                if e.code != 404:
                    raise
        finally:
            c.close()

    def restart(self, queue, want, timeout):
        t0 = time.time()
        r = subprocess.run(["service", "rabbitmq-server", "restart"], capture_output=True, text=True)
        t_cmd = time.time()
        ready, info = wait_count(self.uri, queue, want, timeout)
        return {
            "service_restart_cmd_s": t_cmd - t0,
            "service_restart_rc": r.returncode,
            "service_restart_output": (r.stdout + r.stderr).strip()[-500:],
            "restart_total_s": None if ready is None else ready - t0,
            "ready_info": info,
        }

    def disk_path(self):
        return RABBIT_MNESIA

    def cleanup(self):
        pass


# ---------------------------------------------------------------- measure

def run_perftest_publish(args, uri, queue, logpath):
    cmd = [
        "java", "-cp", args.classpath, "com.rabbitmq.perf.PerfTest",
        "--uri", uri, "--id", f"backlog-{args.broker}",
        "--producers", "1", "--consumers", "0",
        "--pmessages", str(args.messages), "--confirm", "500",
        "--flag", "persistent", "--auto-delete", "false",
        "--size", "16", "--queue", queue,
    ]
    t0 = time.monotonic()
    with open(logpath, "w") as f:
        f.write("# " + " ".join(shlex.quote(c) for c in cmd) + "\n")
        f.flush()
        p = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                           timeout=args.timeout)
    wall = time.monotonic() - t0
    text = ANSI.sub("", open(logpath, encoding="utf-8", errors="replace").read())
    m = re.search(r"sending rate avg: (\d+) msg/s", text)
    cl = re.search(r"confirm latency min/median/75th/95th/99th (\d+)/(\d+)/(\d+)/(\d+)/(\d+) µs", text)
    nacked = sum(int(x) for x in re.findall(r"nacked: (\d+) msg/s", text))
    shown = " ".join(shlex.quote(c) for c in cmd)
    shown = re.sub(r"-cp \S+", "-cp 'lib/*'", shown)
    shown = re.sub(r"--uri \S+", "--uri amqp://guest:guest@127.0.0.1:PORT", shown)
    return {
        "publish_rc": p.returncode,
        "publish_wall_s": wall,
        "publish_rate_avg": int(m[1]) if m else None,
        "publish_confirm_latency_us": [int(x) for x in cl.groups()] if cl else None,
        "publish_nacked": nacked,
        "publish_stopped": "Producer reached message limit" in text,
        "publish_command": shown,
    }


def run_drain(args, uri, queue, logpath):
    cmd = ["java", "-cp", args.classpath, os.path.join(HERE, "BacklogDrain.java"),
           uri, queue, str(args.messages), str(args.timeout)]
    with open(logpath, "w") as f:
        f.write("# " + " ".join(shlex.quote(c) for c in cmd) + "\n")
        f.flush()
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=f, text=True, timeout=args.timeout + 120)
        f.write(p.stdout)
    try:
        res = json.loads(p.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        res = {"finished": False, "error": f"no JSON from BacklogDrain (rc {p.returncode})"}
    res["rc"] = p.returncode
    return res


def cmd_measure(args):
    broker = Warren(args) if args.broker == "warren" else Rabbit(args)
    queue = args.queue
    rec = {"broker": args.broker, "messages": args.messages, "problems": []}
    problems = rec["problems"]
    try:
        log(f"{args.broker}: preparing (fresh state)")
        broker.prepare(queue)
        pid = broker.pid()
        rec["rss_idle_kb"] = rss_kb(pid)
        rec["disk_before_bytes"] = du_bytes(broker.disk_path())

        # ---- publish
        log(f"{args.broker}: publishing {args.messages} persistent 16-byte messages with confirms")
        s = Sampler(pid)
        s.start()
        cpu0 = proc_cpu_seconds(pid)
        rec.update(run_perftest_publish(args, broker.uri, queue, os.path.join(args.logdir, f"publish-{args.broker}.log")))
        rec["publish_cpu_s"] = proc_cpu_seconds(pid) - cpu0 if alive(pid) else None
        rec["rss_peak_publish_kb"] = s.done()
        if rec["publish_rc"] != 0:
            problems.append(f"PerfTest (publish) exited with code {rec['publish_rc']}")
        if not rec["publish_stopped"]:
            problems.append("PerfTest (publish) never printed 'Producer reached message limit'")
        if rec["publish_nacked"]:
            problems.append(f"{rec['publish_nacked']} publishes nacked")
        if not alive(pid):
            raise RuntimeError(f"broker process {pid} died during the publish")
        n = queue_count(broker.uri, queue)
        rec["count_after_publish"] = n
        if n != args.messages:
            # Confirms are all in, so the count should be exact; give it a moment anyway.
            t, info = wait_count(broker.uri, queue, args.messages, 30)
            n2 = queue_count(broker.uri, queue)
            problems.append(f"queue held {n} messages right after the publish (expected {args.messages}); "
                            f"{n2} after waiting up to 30 s")
            rec["count_after_publish_wait"] = n2
        log(f"{args.broker}: {n} messages queued; PerfTest {rec['publish_rate_avg']} msg/s")
        rec["rss_backlog_kb"] = rss_kb(pid)
        time.sleep(args.settle)
        rec["rss_backlog_settled_kb"] = rss_kb(pid)
        rec["disk_backlog_bytes"] = du_bytes(broker.disk_path())

        # ---- restart
        log(f"{args.broker}: restarting")
        rec.update(broker.restart(queue, args.messages, args.timeout))
        if rec["restart_total_s"] is None:
            problems.append(f"not ready with {args.messages} messages within {args.timeout} s of the restart: "
                            f"{rec['ready_info']}")
            raise RuntimeError("restart failed")
        pid = broker.pid()
        rec["rss_after_restart_kb"] = rss_kb(pid)
        n = queue_count(broker.uri, queue)
        rec["count_after_restart"] = n
        if n != args.messages:
            problems.append(f"queue holds {n} messages after the restart (expected {args.messages})")
        time.sleep(args.settle)
        rec["rss_after_restart_settled_kb"] = rss_kb(pid)
        log(f"{args.broker}: ready again after {rec['restart_total_s']:.2f} s")

        # ---- drain
        log(f"{args.broker}: draining with one auto-ack consumer")
        s = Sampler(pid)
        s.start()
        cpu0 = proc_cpu_seconds(pid)
        d = run_drain(args, broker.uri, queue, os.path.join(args.logdir, f"drain-{args.broker}.log"))
        rec["drain_cpu_s"] = proc_cpu_seconds(pid) - cpu0 if alive(pid) else None
        rec["rss_peak_drain_kb"] = s.done()
        rec["drain"] = d
        if not d.get("finished"):
            problems.append(f"drain did not finish: {d}")
        else:
            if d["received"] != args.messages:
                problems.append(f"drain received {d['received']} messages (expected {args.messages})")
            if d["bytes"] != 16 * d["received"]:
                problems.append(f"drain received {d['bytes']} body bytes for {d['received']} messages")
            if d.get("redelivered"):
                problems.append(f"{d['redelivered']} of the drained messages carried redelivered=true although "
                                "none had been delivered before (RabbitMQ: 0)")
            if d.get("after") not in (0, None):
                problems.append(f"queue still holds {d['after']} messages after the drain")
        rec["rss_after_drain_kb"] = rss_kb(pid)
        time.sleep(args.settle)
        rec["rss_after_drain_settled_kb"] = rss_kb(pid)
        rec["disk_after_drain_bytes"] = du_bytes(broker.disk_path())
        log(f"{args.broker}: drained in {d.get('seconds')} s")
        if not alive(pid):
            problems.append(f"broker process {pid} is gone at the end")
    except Exception as e:  # noqa: BLE001 - record and go on to clean up
        problems.append(f"{type(e).__name__}: {e}")
    finally:
        try:
            c = amqp_mini.Conn(broker.uri)
            try:
                c.queue_delete(queue)
            finally:
                c.close()
        except Exception as e:  # noqa: BLE001
            if args.broker == "rabbitmq":
                problems.append(f"could not delete {queue}: {e}")
        broker.cleanup()
    if args.broker == "warren" and os.path.exists(args.warren_log):
        with open(args.warren_log, encoding="utf-8", errors="replace") as f:
            bad = [ANSI.sub("", l).strip() for l in f if re.search(r"\b(WARN|ERROR)\b|panick", ANSI.sub("", l))]
        if bad:
            problems.append(f"{len(bad)} WARN/ERROR line(s) in Warren's log, first ones: " + " | ".join(bad[:5]))
    with open(args.jsonl, "a") as f:
        f.write(json.dumps(rec) + "\n")
    for p in problems:
        print(f"    PROBLEM: {p}")
    return 0


# ---------------------------------------------------------------- report

def mib(kb):
    return "n/a" if kb is None else f"{kb / 1024:.1f}"


def fsec(v, nd=2):
    return "n/a" if v is None else f"{v:.{nd}f}"


def ratio(a, b):
    if a is None or b in (None, 0):
        return "n/a"
    return f"{a / b:.2f}×"


def cmd_report(args):
    recs = {}
    for line in open(args.jsonl):
        if line.strip():
            r = json.loads(line)
            recs[r["broker"]] = r
    brokers = [b for b in ("warren", "rabbitmq") if b in recs]
    label = {"warren": "Warren", "rabbitmq": "RabbitMQ"}
    N = next(iter(recs.values()))["messages"]

    def g(r, *path):
        for k in path:
            if r is None:
                return None
            r = r.get(k)
        return r

    def mb(v):
        return None if v is None else v / 1e6

    rows = [
        # (label, getter(rec) -> number, formatter, lower is better?)
        ("publish: PerfTest send rate avg (msg/s)", lambda r: r.get("publish_rate_avg"), lambda v: f"{v:,.0f}"),
        ("publish: wall time incl. JVM start (s)", lambda r: r.get("publish_wall_s"), fsec),
        ("publish: confirm latency median / p99 (ms)", None, None),
        ("publish: broker CPU (s)", lambda r: r.get("publish_cpu_s"), fsec),
        ("RSS idle before publishing (MiB)", lambda r: r.get("rss_idle_kb"), mib),
        ("RSS peak while publishing (MiB)", lambda r: r.get("rss_peak_publish_kb"), mib),
        ("RSS with the backlog queued, right after the publish (MiB)", lambda r: r.get("rss_backlog_kb"), mib),
        (f"RSS with the backlog queued, {args.settle} s later (MiB)", lambda r: r.get("rss_backlog_settled_kb"), mib),
        ("disk used before publishing (MB)", lambda r: mb(r.get("disk_before_bytes")), lambda v: f"{v:.1f}"),
        ("disk used with the backlog (MB)", lambda r: mb(r.get("disk_backlog_bytes")), lambda v: f"{v:.1f}"),
        ("disk added by the backlog (MB)",
         lambda r: None if r.get("disk_backlog_bytes") is None or r.get("disk_before_bytes") is None
         else (r["disk_backlog_bytes"] - r["disk_before_bytes"]) / 1e6, lambda v: f"{v:.1f}"),
        ("disk added per message (bytes)",
         lambda r: None if r.get("disk_backlog_bytes") is None or r.get("disk_before_bytes") is None
         else (r["disk_backlog_bytes"] - r["disk_before_bytes"]) / N, lambda v: f"{v:.0f}"),
        ("restart: stop (SIGTERM → exit) (s)", lambda r: r.get("stop_s"), fsec),
        ("restart: `service rabbitmq-server restart` command (s)", lambda r: r.get("service_restart_cmd_s"), fsec),
        (f"restart: total until passive declare reports {N:,} (s)", lambda r: r.get("restart_total_s"), fsec),
        ("RSS right after the restart (MiB)", lambda r: r.get("rss_after_restart_kb"), mib),
        (f"RSS after the restart, {args.settle} s later (MiB)", lambda r: r.get("rss_after_restart_settled_kb"), mib),
        ("drain: time to receive all messages, 1 auto-ack consumer (s)", lambda r: g(r, "drain", "seconds"), fsec),
        ("drain: rate (msg/s)", lambda r: g(r, "drain", "rate"), lambda v: f"{v:,.0f}"),
        ("drain: messages flagged redelivered (none was delivered before)", lambda r: g(r, "drain", "redelivered"),
         lambda v: f"{v:,.0f}"),
        ("drain: time to first delivery (ms)", lambda r: g(r, "drain", "first_delivery_ms"), lambda v: f"{v:.1f}"),
        ("drain: broker CPU (s)", lambda r: r.get("drain_cpu_s"), fsec),
        ("RSS peak while draining (MiB)", lambda r: r.get("rss_peak_drain_kb"), mib),
        (f"RSS after the drain, {args.settle} s later (MiB)", lambda r: r.get("rss_after_drain_settled_kb"), mib),
        ("disk used after the drain (MB)", lambda r: mb(r.get("disk_after_drain_bytes")), lambda v: f"{v:.1f}"),
    ]
    out = []
    w = out.append
    w(f"# Warren vs RabbitMQ: a {N:,}-message persistent backlog")
    w("")
    w(f"Generated by `benches/backlog` on {args.date}.")
    w("")
    w("## Machine")
    w("")
    w(f"- CPU: {cpu_model()}, `nproc` = {os.cpu_count()}")
    w(f"- Memory: {mem_total()}")
    w(f"- Kernel: {platform.system()} {platform.release()}")
    w(f"- Disk holding the data: {args.disk_desc}")
    w(f"- RabbitMQ {args.rabbit_version}, Erlang/OTP {args.erlang_version} (Debian package, default "
      "configuration; the test queue is a classic queue, version 1 being the 3.10 default)")
    w(f"- Warren: {args.warren_version} (default configuration: `sync = \"fsync\"`)")
    w(f"- PerfTest {args.perftest_version}, Java {args.java_version}")
    w("")
    w("## Command")
    w("")
    w("```")
    w(args.command)
    w("```")
    w("")
    w("For each broker in turn (Warren first, then RabbitMQ):")
    w("")
    w("1. Fresh state: Warren is started with a new, empty temporary data dir; for RabbitMQ (the system "
      "service) the test queue is deleted if it exists.")
    w(f"2. Publish {N:,} persistent 16-byte messages into one durable queue with publisher confirms "
      "(≤ 500 unconfirmed), no consumer:")
    cmd = next((r.get("publish_command") for r in recs.values() if r.get("publish_command")), "")
    w(f"   `{cmd}`. Then check with a passive `queue.declare` that the queue holds exactly {N:,}.")
    w("3. Record the broker's RSS (VmRSS of `warren` / `beam.smp`) and the disk used: `du -sb` of Warren's "
      f"data dir, `du -sb {RABBIT_MNESIA}` for RabbitMQ (this includes RabbitMQ's own schema and "
      "whatever else the node holds, hence the 'before' row).")
    w("4. Restart. Warren: SIGTERM, wait for the process to exit, start it again on the same data dir. "
      "RabbitMQ: `service rabbitmq-server restart`. The restart time runs from the SIGTERM / the start of "
      "the service command until the port accepts a connection **and** a passive `queue.declare` reports "
      f"{N:,} messages (polled every 50 ms with a fresh connection).")
    w("5. Drain with one auto-ack consumer (`benches/BacklogDrain.java`, RabbitMQ Java client 5.23): the time "
      "from sending `basic.consume` to the last delivery; then check the queue is empty, and delete it.")
    w("")
    w("## Results")
    w("")
    head = "| | " + " | ".join(label[b] for b in brokers) + (" | Warren/RabbitMQ |" if len(brokers) == 2 else " |")
    w(head)
    w("|---|" + "---:|" * len(brokers) + ("---:|" if len(brokers) == 2 else ""))
    for name, getter, fmt in rows:
        if getter is None:  # confirm latency
            cells = []
            vals = []
            for b in brokers:
                cl = recs[b].get("publish_confirm_latency_us")
                cells.append("n/a" if not cl else f"{cl[1] / 1000:.1f} / {cl[4] / 1000:.1f}")
                vals.append(cl)
            extra = ""
            if len(brokers) == 2:
                a, b_ = vals
                extra = " n/a |" if not a or not b_ else f" {ratio(a[1], b_[1])} / {ratio(a[4], b_[4])} |"
            w(f"| {name} | " + " | ".join(cells) + " |" + extra)
            continue
        vals = [getter(recs[b]) for b in brokers]
        cells = ["—" if v is None else fmt(v) for v in vals]
        extra = ""
        if len(brokers) == 2:
            extra = f" {ratio(vals[0], vals[1])} |"
        w(f"| {name} | " + " | ".join(cells) + " |" + extra)
    w("")
    w("— = not applicable to that broker (or not measured because an earlier step failed).")
    w("")
    w("## Problems seen")
    w("")
    anyp = False
    for b in brokers:
        for p in recs[b]["problems"]:
            anyp = True
            w(f"- {label[b]}: {p.replace('|', '/')}")
    if not anyp:
        w("None: every publish was confirmed, the queue held exactly the published count before and after "
          "the restart, the drain delivered every message (16 bytes each) and left the queue empty"
          + (", and Warren's log had no WARN/ERROR line." if "warren" in brokers else "."))
    w("")
    w("## Notes")
    w("")
    w("- RabbitMQ's restart goes through the init system: it stops the whole Erlang node and boots it "
      "again (including plugins and every other vhost/queue it has), so its number is an upper bound of "
      "the queue recovery time. Warren's restart is a single process exit and start.")
    w("- The drain consumer and PerfTest run on the same 2-core machine as the broker.")
    w("- Raw numbers (backlog.jsonl), PerfTest and drain logs, and Warren's log are under "
      "benches/.cache/backlog/.")
    text = "\n".join(out) + "\n"
    with open(args.out, "w") as f:
        f.write(text)
    print(text)
    return 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("measure")
    p.add_argument("--broker", choices=("warren", "rabbitmq"), required=True)
    p.add_argument("--jsonl", required=True)
    p.add_argument("--logdir", required=True)
    p.add_argument("--classpath", required=True)
    p.add_argument("--queue", default="bench-backlog")
    p.add_argument("--messages", type=int, default=1_000_000)
    p.add_argument("--timeout", type=int, default=900)
    p.add_argument("--settle", type=int, default=5)
    p.add_argument("--warren-bin")
    p.add_argument("--warren-port", type=int)
    p.add_argument("--warren-log")
    p = sub.add_parser("report")
    p.add_argument("--jsonl", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--settle", type=int, default=5)
    for k in ("command", "date", "rabbit-version", "erlang-version", "warren-version", "perftest-version",
              "java-version", "disk-desc"):
        p.add_argument("--" + k, default="n/a")
    args = ap.parse_args()
    sys.exit({"measure": cmd_measure, "report": cmd_report}[args.cmd](args) or 0)


if __name__ == "__main__":
    main()
