#!/usr/bin/env python3
"""Helpers for benches/compare: run one PerfTest measurement, build the report.

Standard library only.

  compare_helper.py freeport
  compare_helper.py waitport HOST PORT SECONDS
  compare_helper.py run --broker NAME --pid PID ... --jsonl FILE
  compare_helper.py report --jsonl FILE --out RESULTS.md [--meta-* ...]
"""

import argparse
import datetime
import json
import os
import platform
import re
import resource
import shlex
import socket
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import amqp_mini  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


# ---------------------------------------------------------------- /proc readers

def proc_cpu_seconds(pid):
    """utime + stime of one process, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        data = f.read()
    # The command name may contain spaces and parentheses: split after the last ')'.
    rest = data.rsplit(")", 1)[1].split()
    utime, stime = int(rest[11]), int(rest[12])
    return (utime + stime) / CLK_TCK


def proc_status_kb(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return None


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except OSError:
        return False


# ---------------------------------------------------------------- small commands

def cmd_freeport(_args):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])
    s.close()


def cmd_waitport(args):
    deadline = time.time() + float(args.seconds)
    while time.time() < deadline:
        try:
            with socket.create_connection((args.host, int(args.port)), timeout=1):
                return 0
        except OSError:
            time.sleep(0.2)
    print(f"port {args.host}:{args.port} did not open within {args.seconds} s", file=sys.stderr)
    return 1


# ---------------------------------------------------------------- PerfTest output

RE_INTERVAL = re.compile(
    r"time (?P<t>[0-9.]+) s, sent: (?P<sent>\d+) msg/s, "
    r"(?:confirmed: (?P<confirmed>\d+) msg/s, nacked: (?P<nacked>\d+) msg/s, )?"
    r"received: (?P<recv>\d+) msg/s"
)
RE_SEND_AVG = re.compile(r"sending rate avg: (\d+) msg/s")
RE_RECV_AVG = re.compile(r"receiving rate avg: (\d+) msg/s")
RE_LAT = re.compile(r"consumer latency min/median/75th/95th/99th (\d+)/(\d+)/(\d+)/(\d+)/(\d+) µs")
RE_CONFIRM_LAT = re.compile(r"confirm latency min/median/75th/95th/99th (\d+)/(\d+)/(\d+)/(\d+)/(\d+) µs")
# Lines PerfTest prints in a healthy run; anything else is reported as unexpected.
EXPECTED = [
    re.compile(r"^id: [^,]+, starting (consumer|producer) #\d+(, channel #\d+)?$"),
    RE_INTERVAL,
    re.compile(r"^test stopped \(Reached time limit\)$"),
    RE_SEND_AVG,
    RE_RECV_AVG,
    RE_LAT,
    RE_CONFIRM_LAT,
]


def parse_perftest(text, duration):
    res = {"intervals": [], "unexpected": []}
    for raw in text.splitlines():
        line = ANSI.sub("", raw).rstrip()
        if not line.strip():
            continue
        m = RE_INTERVAL.search(line)
        if m:
            res["intervals"].append((float(m["t"]), int(m["sent"]), int(m["recv"])))
            if m["nacked"] is not None:
                res["nacked"] = res.get("nacked", 0) + int(m["nacked"])
        m = RE_SEND_AVG.search(line)
        if m:
            res["sent_rate"] = int(m[1])
        m = RE_RECV_AVG.search(line)
        if m:
            res["recv_rate"] = int(m[1])
        m = RE_LAT.search(line)
        if m:
            for k, v in zip(("lat_min", "lat_median", "lat_p75", "lat_p95", "lat_p99"), m.groups()):
                res[k] = int(v)
        m = RE_CONFIRM_LAT.search(line)
        if m:
            for k, v in zip(("clat_min", "clat_median", "clat_p75", "clat_p95", "clat_p99"), m.groups()):
                res[k] = int(v)
        if not any(p.search(line) for p in EXPECTED):
            res["unexpected"].append(line)
    res["time_limit_reached"] = "test stopped (Reached time limit)" in text
    return res


def find_stalls(intervals, duration):
    """Intervals (after the first two seconds and before the last one) with nothing sent or received."""
    stalls = []
    for i, (t, sent, recv) in enumerate(intervals):
        if t < 2.0 or i == len(intervals) - 1:
            continue
        if recv == 0 or sent == 0:
            stalls.append(f"t={t:.0f}s sent={sent} received={recv}")
    return stalls


def find_starved(intervals, fanout=1):
    """Intervals (same window as find_stalls) where deliveries fell below a tenth of what was routed:
    the consumer is starved while the producer keeps going (see 'How to read this')."""
    out = []
    for i, (t, sent, recv) in enumerate(intervals):
        if t < 2.0 or i == len(intervals) - 1:
            continue
        if sent >= 1000 and recv < 0.1 * sent * fanout:
            out.append(f"t={t:.0f}s sent={sent} received={recv}")
    return out


# ---------------------------------------------------------------- one run

class RssSampler(threading.Thread):
    """Samples VmRSS of one process every 0.25 s while a run goes on, for the peak."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_kb = None
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            try:
                v = proc_status_kb(self.pid, "VmRSS")
            except OSError:
                v = None
            if v is not None and (self.peak_kb is None or v > self.peak_kb):
                self.peak_kb = v
            self.stop.wait(0.25)


def scenario_queues(flags, queue):
    """Queue names a scenario's PerfTest run uses (for clean-up after the run)."""
    if "--queue-pattern" in flags:
        pattern = flags[flags.index("--queue-pattern") + 1]
        lo = int(flags[flags.index("--queue-pattern-from") + 1])
        hi = int(flags[flags.index("--queue-pattern-to") + 1])
        return [pattern % i for i in range(lo, hi + 1)]
    return [queue]


def cmd_run(args):
    pid = int(args.pid)
    # "%Q" in the scenario flags stands for this run's queue name (e.g. in a --queue-pattern).
    flags = shlex.split(args.flags.replace("%Q", args.queue))
    cmd = [
        args.java, *shlex.split(args.jvm_opts), "-cp", args.classpath, "com.rabbitmq.perf.PerfTest",
        "--uri", args.uri,
        "--time", str(args.duration),
        *([] if "--queue-pattern" in flags else ["--queue", args.queue]),
        "--id", f"{args.broker}-{args.scenario}-{args.run}",
        *flags,
    ]
    problems = []
    broker_log_offset = None
    if args.broker_log and os.path.exists(args.broker_log):
        broker_log_offset = os.path.getsize(args.broker_log)

    rss_before = proc_status_kb(pid, "VmRSS")
    cpu_before = proc_cpu_seconds(pid)
    ru_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    sampler = RssSampler(pid)
    sampler.start()
    t0 = time.monotonic()
    timed_out = False
    with open(args.log, "w") as log:
        log.write("# " + " ".join(shlex.quote(c) for c in cmd) + "\n")
        log.flush()
        p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            rc = p.wait(timeout=args.duration + args.grace)
        except subprocess.TimeoutExpired:
            timed_out = True
            p.kill()
            rc = p.wait()
    wall = time.monotonic() - t0
    ru_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    sampler.stop.set()
    sampler.join()
    broker_alive = alive(pid)
    if broker_alive:
        cpu_after = proc_cpu_seconds(pid)
        rss_after = proc_status_kb(pid, "VmRSS")
        hwm = proc_status_kb(pid, "VmHWM")
    else:
        cpu_after, rss_after, hwm = None, None, None
        problems.append(f"broker process {pid} is gone after the run")

    with open(args.log, encoding="utf-8", errors="replace") as f:
        text = f.read()
    parsed = parse_perftest(text, args.duration)

    if timed_out:
        problems.append(f"PerfTest did not exit within {args.duration + args.grace} s and was killed")
    elif rc != 0:
        problems.append(f"PerfTest exited with code {rc}")
    if not parsed["time_limit_reached"]:
        problems.append("PerfTest never printed 'test stopped (Reached time limit)'")
    if "recv_rate" not in parsed:
        problems.append("no 'receiving rate avg' line in PerfTest output")
    stalls = find_stalls(parsed["intervals"], args.duration)
    if stalls:
        problems.append(f"{len(stalls)} one-second interval(s) with nothing sent or received: " + "; ".join(stalls[:8]))
    fan = args.fanout
    starved = find_starved(parsed["intervals"], fan)
    if starved:
        problems.append(f"delivery collapse: {len(starved)} one-second interval(s) with received < 10% of "
                        f"sent{f' x {fan}' if fan > 1 else ''}: " + "; ".join(starved[:4])
                        + ("; …" if len(starved) > 4 else ""))
    if parsed.get("recv_rate") and parsed.get("sent_rate") and parsed["recv_rate"] > parsed["sent_rate"] * fan * 1.01:
        problems.append(
            f"received more than sent{f' x {fan} queues' if fan > 1 else ''}: receive avg {parsed['recv_rate']} > "
            f"send avg {parsed['sent_rate']}{f' x {fan}' if fan > 1 else ''} msg/s"
        )
    if parsed.get("nacked"):
        problems.append(f"{parsed['nacked']} publishes nacked by the broker")
    seen = []
    for line in parsed["unexpected"]:
        if line.startswith("# "):
            continue
        if line not in seen:
            seen.append(line)
    if seen:
        problems.append(f"{len(seen)} unexpected PerfTest output line(s), first ones: " + " | ".join(seen[:6]))

    if broker_log_offset is not None:
        with open(args.broker_log, encoding="utf-8", errors="replace") as f:
            f.seek(broker_log_offset)
            new = ANSI.sub("", f.read())
        bad = [l.strip() for l in new.splitlines() if re.search(r"\b(WARN|ERROR)\b|panick", l)]
        if bad:
            problems.append(f"{len(bad)} WARN/ERROR line(s) in the broker log, first ones: " + " | ".join(bad[:5]))

    rec = {
        "broker": args.broker,
        "scenario": args.scenario,
        "run": int(args.run),
        "duration": args.duration,
        "wall_s": round(wall, 3),
        "exit_code": rc,
        "timed_out": timed_out,
        "sent_rate": parsed.get("sent_rate"),
        "recv_rate": parsed.get("recv_rate"),
        "lat_min": parsed.get("lat_min"),
        "lat_median": parsed.get("lat_median"),
        "lat_p75": parsed.get("lat_p75"),
        "lat_p95": parsed.get("lat_p95"),
        "lat_p99": parsed.get("lat_p99"),
        "broker_cpu_s": None if cpu_after is None else round(cpu_after - cpu_before, 3),
        "client_cpu_s": round(
            (ru_after.ru_utime - ru_before.ru_utime) + (ru_after.ru_stime - ru_before.ru_stime), 3
        ),
        "rss_before_kb": rss_before,
        "rss_after_kb": rss_after,
        "rss_peak_kb": sampler.peak_kb,
        "hwm_kb": hwm,
        "clat_median": parsed.get("clat_median"),
        "clat_p99": parsed.get("clat_p99"),
        "nacked": parsed.get("nacked"),
        "fanout": fan,
        "problems": problems,
        "log": args.log,
        "command": " ".join(shlex.quote(c) for c in cmd),
    }
    # PerfTest's average is total / elapsed time of the test, so this is the message count.
    rec["received_msgs"] = None if rec["recv_rate"] is None else rec["recv_rate"] * args.duration
    if rec["received_msgs"] and rec["broker_cpu_s"] is not None:
        rec["broker_cpu_us_per_msg"] = round(rec["broker_cpu_s"] * 1e6 / rec["received_msgs"], 3)
        rec["client_cpu_us_per_msg"] = round(rec["client_cpu_s"] * 1e6 / rec["received_msgs"], 3)
    else:
        rec["broker_cpu_us_per_msg"] = None
        rec["client_cpu_us_per_msg"] = None
    # Clean up what the run leaves behind (durable queues, the fanout exchange), after the
    # measurements so that it does not count. Auto-deleted queues are simply absent by now.
    if broker_alive:
        leftovers = []
        try:
            c = amqp_mini.Conn(args.uri)
            try:
                for q in scenario_queues(flags, args.queue):
                    try:
                        n = c.queue_delete(q)
                        leftovers.append(f"{q}: {n}")
                    except amqp_mini.AmqpError as e:
                        if e.code != 404:
                            raise
                if "--exchange" in flags:
                    c.exchange_delete(flags[flags.index("--exchange") + 1])
            finally:
                c.close()
        except Exception as e:  # noqa: BLE001 - report, do not stop the benchmark
            problems.append(f"clean-up after the run failed: {type(e).__name__}: {e}")
        rec["deleted_queues"] = leftovers
    with open(args.jsonl, "a") as f:
        f.write(json.dumps(rec) + "\n")

    lat = (
        f"latency median/p99 {rec['lat_median']}/{rec['lat_p99']} µs"
        if rec["lat_median"] is not None else "latency n/a"
    )
    print(
        f"  {args.broker:8} {args.scenario:10} run {args.run}: sent {rec['sent_rate']} msg/s, "
        f"received {rec['recv_rate']} msg/s, {lat}, broker CPU {rec['broker_cpu_s']} s "
        f"({rec['broker_cpu_us_per_msg']} µs/msg), PerfTest CPU {rec['client_cpu_s']} s, "
        f"RSS {None if rss_after is None else rss_after // 1024} MiB "
        f"(peak {None if sampler.peak_kb is None else sampler.peak_kb // 1024} MiB)"
        + (f", confirm latency median/p99 {rec['clat_median']}/{rec['clat_p99']} µs"
           if rec["clat_median"] is not None else "")
    )
    for p in problems:
        print(f"    PROBLEM: {p}")
    return 0


# ---------------------------------------------------------------- report

SCENARIO_TEXT = {
    "autoack": ("1 producer → 1 queue → 1 consumer", "16 B, transient, non-durable auto-delete queue",
                "auto-ack"),
    "manualack": ("1 producer → 1 queue → 1 consumer", "16 B, transient, non-durable auto-delete queue",
                  "manual ack, multiple ack every 50, prefetch 200"),
    "persistent": ("1 producer (confirms, ≤ 500 unconfirmed) → 1 durable queue → 1 consumer",
                   "16 B, persistent (delivery-mode 2)", "manual ack, multiple ack every 50, prefetch 200"),
    "fanout10": ("1 producer → fanout exchange → 10 queues → 10 consumers",
                 "16 B, transient, non-durable auto-delete queues", "auto-ack"),
    "size4k": ("1 producer → 1 queue → 1 consumer", "4096 B, transient, non-durable auto-delete queue",
               "auto-ack"),
    "size64k": ("1 producer → 1 queue → 1 consumer", "65536 B, transient, non-durable auto-delete queue",
                "auto-ack"),
}


def med(values):
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def fmt_int(v):
    return "n/a" if v is None else f"{v:,.0f}"


def fmt_f(v, nd=2):
    return "n/a" if v is None else f"{v:.{nd}f}"


def fmt_ratio(a, b):
    if a is None or b in (None, 0):
        return "n/a"
    return f"{a / b:.2f}×"


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def mem_total():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def cmd_report(args):
    recs = []
    with open(args.jsonl) as f:
        for line in f:
            if line.strip():
                recs.append(json.loads(line))
    scenarios = []
    for r in recs:
        if r["scenario"] not in scenarios:
            scenarios.append(r["scenario"])
    brokers = [b for b in ("warren", "rabbitmq") if any(r["broker"] == b for r in recs)]
    label = {"warren": "Warren", "rabbitmq": "RabbitMQ"}

    def agg(scn, brk):
        rs = [r for r in recs if r["scenario"] == scn and r["broker"] == brk]
        if not rs:
            return None
        cpu_pct = [
            None if r["broker_cpu_s"] is None else 100.0 * r["broker_cpu_s"] / r["wall_s"] for r in rs
        ]
        return {
            "n": len(rs),
            "sent": med(r["sent_rate"] for r in rs),
            "recv": med(r["recv_rate"] for r in rs),
            "lat50": med(r["lat_median"] for r in rs),
            "lat99": med(r["lat_p99"] for r in rs),
            "cpu_us": med(r["broker_cpu_us_per_msg"] for r in rs),
            "cpu_pct": med(cpu_pct),
            "client_us": med(r["client_cpu_us_per_msg"] for r in rs),
            "rss": med(None if r["rss_after_kb"] is None else r["rss_after_kb"] / 1024 for r in rs),
            "peak": med(None if r.get("rss_peak_kb") is None else r["rss_peak_kb"] / 1024 for r in rs),
            "clat50": med(r.get("clat_median") for r in rs),
            "clat99": med(r.get("clat_p99") for r in rs),
            "problems": sum(1 for r in rs if r["problems"]),
        }

    out = []
    w = out.append
    w("# Warren vs RabbitMQ: PerfTest side by side")
    w("")
    w(f"Generated by `benches/compare` on {args.date}.")
    w("")
    w("## Machine")
    w("")
    w(f"- CPU: {cpu_model()}, `nproc` = {os.cpu_count() if not args.nproc else args.nproc}")
    w(f"- Memory: {mem_total()}")
    w(f"- Kernel: {platform.system()} {platform.release()}")
    w(f"- RabbitMQ {args.rabbit_version}, Erlang/OTP {args.erlang_version}")
    w(f"- Warren: {args.warren_version}")
    w(f"- PerfTest {args.perftest_version} (com.rabbitmq:perf-test from Maven Central), Java {args.java_version}")
    w("")
    w("## Command")
    w("")
    w("```")
    w(args.command)
    w("```")
    w("")
    w(f"{args.runs} run(s) of {args.duration} s per scenario and broker, brokers alternating run by run "
      "(within a run, every scenario is measured on both brokers before the next scenario). "
      "Each measurement is one PerfTest process, with no publish rate limit.")
    w("")
    w("| scenario | topology | messages | consumer |")
    w("|---|---|---|---|")
    for s in scenarios:
        d = SCENARIO_TEXT.get(s)
        if d:
            w(f"| `{s}` | {d[0]} | {d[1]} | {d[2]} |")
    w("")
    w("PerfTest command per scenario:")
    w("")
    for s in scenarios:
        rs = [r for r in recs if r["scenario"] == s]
        cmd = rs[0]["command"]
        cmd = re.sub(r"-cp \S+", "-cp 'lib/*'", cmd)
        cmd = re.sub(r"--uri \S+", "--uri amqp://guest:guest@127.0.0.1:PORT", cmd)
        cmd = re.sub(r"--queue \S+", "--queue bench-…", cmd)
        cmd = re.sub(r"--queue-pattern \S+", "--queue-pattern 'bench-…-%d'", cmd)
        cmd = re.sub(r"--id \S+", "--id …", cmd)
        w(f"- `{s}`: `{cmd}`")
    w("")
    w("## Results (medians over runs)")
    w("")
    w("| scenario | broker | send msg/s | receive msg/s | latency median / p99 (ms) | broker CPU µs/msg "
      "| broker CPU (% of one core) | PerfTest CPU µs/msg | broker RSS peak during run / at end (MiB) "
      "| runs with problems |")
    w("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for s in scenarios:
        aggs = {b: agg(s, b) for b in brokers}
        for b in brokers:
            a = aggs[b]
            if a is None:
                continue
            lat = "n/a" if a["lat50"] is None else f"{a['lat50'] / 1000:.1f} / {a['lat99'] / 1000:.1f}"
            w(f"| {s} | {label[b]} | {fmt_int(a['sent'])} | {fmt_int(a['recv'])} | {lat} | "
              f"{fmt_f(a['cpu_us'])} | {fmt_f(a['cpu_pct'], 0)} | {fmt_f(a['client_us'])} | "
              f"{fmt_f(a['peak'], 1)} / {fmt_f(a['rss'], 1)} | {a['problems']}/{a['n']} |")
        wa, ra = aggs.get("warren"), aggs.get("rabbitmq")
        if wa and ra:
            lat_ratio = (
                "n/a" if wa["lat50"] is None or ra["lat50"] is None
                else f"{fmt_ratio(wa['lat50'], ra['lat50'])} / {fmt_ratio(wa['lat99'], ra['lat99'])}"
            )
            w(f"| {s} | **Warren/RabbitMQ** | {fmt_ratio(wa['sent'], ra['sent'])} | "
              f"{fmt_ratio(wa['recv'], ra['recv'])} | {lat_ratio} | {fmt_ratio(wa['cpu_us'], ra['cpu_us'])} | "
              f"{fmt_ratio(wa['cpu_pct'], ra['cpu_pct'])} | {fmt_ratio(wa['client_us'], ra['client_us'])} | "
              f"{fmt_ratio(wa['peak'], ra['peak'])} / {fmt_ratio(wa['rss'], ra['rss'])} | |")
    w("")
    w("Ratios are Warren divided by RabbitMQ: above 1× is better for the rates, below 1× is better "
      "for latency, CPU per message and RSS. In `fanout10` the receive rate counts every delivery "
      "(10 per published message) and CPU µs/msg divides by deliveries.")
    w("")
    conf = [s for s in scenarios if any(r.get("clat_median") is not None for r in recs if r["scenario"] == s)]
    if conf:
        w("Publisher-confirm latency (PerfTest's publish-to-confirm time), medians over runs:")
        w("")
        w("| scenario | broker | confirm latency median / p99 (ms) |")
        w("|---|---|---:|")
        for s in conf:
            for b in brokers:
                a = agg(s, b)
                if a and a["clat50"] is not None:
                    w(f"| {s} | {label[b]} | {a['clat50'] / 1000:.1f} / {a['clat99'] / 1000:.1f} |")
        w("")
    w("## Every run")
    w("")
    w("| scenario | broker | run | send msg/s | receive msg/s | latency min/median/p75/p95/p99 (µs) "
      "| broker CPU s | broker CPU µs/msg | PerfTest CPU s | RSS before → after (peak) (MiB) | problems |")
    w("|---|---|---:|---:|---:|---|---:|---:|---:|---|---|")
    for r in sorted(recs, key=lambda r: (scenarios.index(r["scenario"]), r["run"], brokers.index(r["broker"]))):
        lat = "/".join(str(r[k]) for k in ("lat_min", "lat_median", "lat_p75", "lat_p95", "lat_p99")) \
            if r["lat_median"] is not None else "n/a"
        before = "n/a" if r["rss_before_kb"] is None else f"{r['rss_before_kb'] / 1024:.1f}"
        after = "gone" if r["rss_after_kb"] is None else f"{r['rss_after_kb'] / 1024:.1f}"
        peak = "n/a" if r.get("rss_peak_kb") is None else f"{r['rss_peak_kb'] / 1024:.1f}"
        rss = f"{before} → {after} ({peak})"
        w(f"| {r['scenario']} | {label[r['broker']]} | {r['run']} | {fmt_int(r['sent_rate'])} | "
          f"{fmt_int(r['recv_rate'])} | {lat} | {fmt_f(r['broker_cpu_s'])} | "
          f"{fmt_f(r['broker_cpu_us_per_msg'])} | {fmt_f(r['client_cpu_s'])} | {rss} | "
          f"{len(r['problems']) or ''} |")
    w("")
    w("## Problems seen")
    w("")
    any_problem = False
    for r in recs:
        for p in r["problems"]:
            any_problem = True
            w(f"- {label[r['broker']]}, {r['scenario']}, run {r['run']}: {p.replace('|', '/')}")
    if not any_problem:
        w("None: every PerfTest run reached its time limit, printed only the expected lines, "
          "had no one-second interval with nothing sent or received, and the brokers stayed up"
          + (" with no WARN/ERROR line in Warren's log." if "warren" in brokers else "."))
    w("")
    w("## How to read this")
    w("")
    w(f"- The machine has {os.cpu_count()} cores and PerfTest (a JVM running the producer and the consumer) "
      "runs on it next to the broker, so the broker does not have the machine to itself: the rates are "
      "those of the broker *plus* the client on shared cores, and a broker that needs less CPU leaves more "
      "to PerfTest. The CPU per message is the fairer comparison of the brokers' own cost.")
    w("- Broker CPU is utime+stime of the broker process (Warren's `warren` process; RabbitMQ's `beam.smp`) "
      "from /proc/PID/stat, read just before PerfTest starts and just after it exits, so it includes "
      "connection setup and teardown. µs/msg divides it by the messages received "
      "(PerfTest's average receive rate × duration).")
    w("- PerfTest CPU is the JVM's user+system time (getrusage of the child), same divisor.")
    w("- RSS is VmRSS of the broker process after the run; the peak is the highest of samples taken "
      "every 0.25 s during the run. Both brokers stay up across all runs "
      "(Warren is started once by the script with an empty data dir, RabbitMQ is the system service), "
      "so RSS reflects everything since they started. After each run the script deletes the run's "
      "queues (the `persistent` queue is durable and not auto-deleted, so it keeps whatever the consumer "
      "had not taken when PerfTest stopped) and the fanout exchange, outside the measured interval.")
    w("- `persistent` publishes with `--flag persistent` into a durable queue with publisher confirms "
      "(at most 500 unconfirmed). RabbitMQ 3.10 confirms a persistent message once it is written to its "
      "message store/queue index and fsync'd (its fsync is batched); Warren's default `sync = \"fsync\"` "
      "confirms after fdatasync with group commit. Each machine's disk (here a VM disk) sets the cost of that.")
    w("- Latency is PerfTest's consumer latency (publish timestamp in the message to delivery) over the "
      "whole run, in the same process, so no clock skew. With no rate limit the producer runs as fast as "
      "it can, so latency mostly measures how much backlog builds in the queue, not the idle round trip.")
    w("- No scenario limits the publish rate. RabbitMQ's credit-based flow control slows a publisher when the "
      "queue process cannot take messages as fast as they arrive, not when a consumer falls behind, so with a "
      "slow consumer its queue grows too (look at RSS in runs with a 'delivery collapse'). A backlog shows as a "
      "send rate above the receive rate, and higher latency and RSS. Compare latency and RSS with that in mind.")
    w("- 'delivery collapse' means one-second intervals in which the consumer(s) received less than a tenth of "
      "what was routed to them while the producer kept publishing. Seen so far on this machine with both "
      "brokers, always at the same ~320 KB/s of socket data (≈ 77 msg/s of 4 KiB, ≈ 2,260 msg/s of 16 B): "
      "the broker→consumer TCP socket sits in the zero-window persist timer (`ss -tnoi` shows "
      "`timer:(persist,…)`, `rwnd_limited` ≈ 90 %) because PerfTest's consumer fell behind and its receive "
      "buffer filled. It is a property of an unthrottled push to a slower client on loopback, not a broker "
      "error, but it wrecks that run's receive rate and latency, so compare such runs with care.")
    w("- PerfTest logs of every run and the raw numbers (runs.jsonl) are kept under benches/.cache/runs/.")
    text = "\n".join(out) + "\n"
    with open(args.out, "w") as f:
        f.write(text)
    print(text)
    return 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("freeport")
    p = sub.add_parser("waitport")
    p.add_argument("host")
    p.add_argument("port")
    p.add_argument("seconds")
    p = sub.add_parser("run")
    p.add_argument("--broker", required=True)
    p.add_argument("--pid", required=True)
    p.add_argument("--scenario", required=True)
    p.add_argument("--run", required=True)
    p.add_argument("--uri", required=True)
    p.add_argument("--queue", required=True)
    p.add_argument("--duration", type=int, required=True)
    p.add_argument("--grace", type=int, default=60)
    p.add_argument("--flags", default="")
    p.add_argument("--java", default="java")
    p.add_argument("--jvm-opts", default="")
    p.add_argument("--classpath", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--jsonl", required=True)
    p.add_argument("--broker-log")
    p.add_argument("--fanout", type=int, default=1,
                   help="queues each published message is routed to (receive rate may be this x send rate)")
    p = sub.add_parser("report")
    p.add_argument("--jsonl", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--command", required=True)
    p.add_argument("--date", required=True)
    p.add_argument("--runs", required=True)
    p.add_argument("--duration", required=True)
    p.add_argument("--rabbit-version", default="n/a")
    p.add_argument("--erlang-version", default="n/a")
    p.add_argument("--warren-version", default="n/a")
    p.add_argument("--perftest-version", default="n/a")
    p.add_argument("--java-version", default="n/a")
    p.add_argument("--nproc", default="")
    args = ap.parse_args()
    fn = {"freeport": cmd_freeport, "waitport": cmd_waitport, "run": cmd_run, "report": cmd_report}[args.cmd]
    sys.exit(fn(args) or 0)


if __name__ == "__main__":
    main()
