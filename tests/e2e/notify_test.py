"""notify end to end: the real intake, router, deadline and notify daemons, and
a webhook receiver on loopback (Python's http.server) whose paths behave as
asked: answer at once, fail once with 500, time out once, refuse with 400,
fail forever with 503, or never answer. Each organisation that reports a case
gets `transfer_required` and `obligation_opened` addressed to it, so each
scenario subscribes one organisation to one path."""
import base64
import hashlib
import hmac
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from cbtest import (ReceiverServer, System, Tap, binary, ce_data, check_cloudevents, free_port, pb,  # noqa: E402
                    scrape, unpb, wait_for, TOP)
import zmq  # noqa: E402

SECRET = "s3cret-for-the-test-0123456789"
got = []            # (path, headers, body, received_at)
lock = threading.Lock()
seen_paths = {}     # path -> attempts so far
conns = []          # (path, client port, received_at) of every request
mode = {"/bad": 400}


class Receiver(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with lock:
            n = seen_paths.get(self.path, 0) + 1
            seen_paths[self.path] = n
            conns.append((self.path, self.client_address[1], time.time()))
        if self.path == "/hang":
            time.sleep(30)
            return
        if self.path == "/slow" and n == 1:
            time.sleep(3)
        status = 200
        if self.path == "/flaky" and n == 1:
            status = 500
        if self.path == "/down":
            status = 503
        status = mode.get(self.path, status)
        if status == 200:
            with lock:
                got.append((self.path, dict(self.headers), body, time.time()))
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()


srv = ReceiverServer(("127.0.0.1", 0), Receiver)
srv.daemon_threads = True
rport = srv.server_address[1]
threading.Thread(target=srv.serve_forever, daemon=True).start()
closed = socket.socket()
closed.bind(("127.0.0.1", 0))
closed_port = closed.getsockname()[1]   # bound, never listening: connection refused

t = Tap()
mport = free_port()
system = System("notify", pulls={"intake": ("router",), "notify": ("router", "deadline")},
                extra={"notify": f"""timeout_ms = 1000
retry_base_ms = 300
retry_max_ms = 1000
horizon = 4s
metrics_listen = 127.0.0.1:{mport}
subscribe = wy-scjg http://127.0.0.1:{rport}/ok/scjg {SECRET}"""})
w, http, cli, conf, token = system.w, system.http, system.cli, system.conf, system.offline_token


def report(tok, by):
    at = time.strftime("%Y-%m-%dT%H:%M:%S+08:00", time.gmtime(time.time() - 600 + 8 * 3600))
    st, doc = http.post("/v1/cases", {"source": "patrol", "matter_code": "330217001",
                                      "township_code": "330723101000", "discovered_at": at,
                                      "discovered_by": by, "description": "notify e2e"}, tok)
    assert st == 201, (st, doc)
    return doc["case_id"]


def notify_events():
    return system.tail("--producer", "notify")


def received(path):
    """What path received about cases (the date rules' yearly and monthly
    filings, which have no case, come and go with the calendar)."""
    with lock:
        return [(h, d, ts) for p, h, b, ts in got if p == path for d in ce_data(b) if d.get("case_id")]


def subscribe(org, path, *extra):
    r = cli("subscribe", "--org", org, "--url", f"http://127.0.0.1:{rport}{path}", "--secret", SECRET, *extra)
    assert r.returncode == 0, r.stderr
    return r.stdout.split()[1].rstrip(":")


SIX = ["wy-scjg", "wy-zrzy", "wy-sthj", "wy-sw", "wy-nync", "wy-jtys", "wy-wgl", "wy-wsj", "wy-zjj", "wy-yjgl"]
try:
    tok = token(*SIX)
    procs = system.start("router", "deadline", "notify", "intake")
    wait_for(lambda: http.get("/healthz")[0] == 200, 10)
    assert cli("org", "import", os.path.join(TOP, "deploy/sample/orgs.csv")).returncode == 0
    assert cli("catalog", "import", os.path.join(TOP, "deploy/sample/catalog.csv"), "--effective-from", "2024-01-01").returncode == 0
    wait_for(lambda: "orgs_replicated" in open(w.p("intake.log")).read(), 10)

    # ---- refusals at the control socket ----
    r = cli("subscribe", "--org", "wy-zrzy", "--url", "ftp://x", "--secret", SECRET)
    t.ok(r.returncode == 1 and "(url)" in r.stderr, "a subscription with a non-HTTP url is refused naming the field", r.stderr)
    r = cli("subscribe", "--org", "wy-zrzy", "--url", f"http://127.0.0.1:{rport}/x", "--secret", "short")
    t.ok(r.returncode == 1 and "(secret)" in r.stderr, "a short secret is refused", r.stderr)
    r = cli("subscribe", "--org", "wy-nosuch", "--url", f"http://127.0.0.1:{rport}/x", "--secret", SECRET)
    t.ok(r.returncode == 1 and "(org_id)" in r.stderr and "not in the registry" in r.stderr,
         "a subscription for an organisation the registry does not have is refused", r.stderr)
    r = cli("subscribe", "--org", "wy-zrzy", "--url", f"http://127.0.0.1:{rport}/x", "--secret", SECRET, "--events", "nonsense")
    t.ok(r.returncode == 1 and "(event_types)" in r.stderr, "an unknown event type is refused", r.stderr)

    # ---- delivery, signature, ordering (the config-seeded subscription) ----
    c1 = report(tok, "wy-scjg")
    rec = wait_for(lambda: (lambda x: x if len(x) >= 2 else None)(received("/ok/scjg")), 10) or []
    types = [b["type"] for h, b, ts in rec]
    t.ok(sorted(types) == ["obligation_opened", "transfer_required"] and all(b["case_id"] == c1 for h, b, ts in rec),
         "the finder's platform receives transfer_required and obligation_opened for its case", types)
    ok_sig = True
    for h, b, ts in rec:
        raw = [x for p, hh, x, _ in got if hh is h][0]
        mac = hmac.new(SECRET.encode(), (h["X-Casebus-Timestamp"] + ".").encode() + raw, hashlib.sha256).hexdigest()
        ok_sig = ok_sig and h["X-Casebus-Signature"] == "v1=" + mac and h["X-Casebus-Event-Id"] == b["event_id"] \
            and h["X-Casebus-Event-Type"] == b["type"] and abs(int(h["X-Casebus-Timestamp"]) - time.time()) < 60
    t.ok(ok_sig, "each delivery is signed: HMAC-SHA256(secret, timestamp.body) checks out; event id and type headers match")

    # ---- retry after 500, keeping order within the case ----
    subscribe("wy-zrzy", "/flaky")
    c2 = report(tok, "wy-zrzy")
    rec = wait_for(lambda: (lambda x: x if len(x) >= 2 else None)(received("/flaky")), 10) or []
    ids = [h["X-Casebus-Delivery-Id"] for h, b, ts in rec]
    t.ok(len(rec) == 2 and ids == sorted(ids), "after a 500 the delivery is retried, and the case's next event waited for it", ids)
    ev = notify_events()
    fails = [e["event"] for e in ev if e["type"] == "delivery_failed" and e["event"]["delivery"]["org_id"] == "wy-zrzy"]
    oks = [e["event"] for e in ev if e["type"] == "delivered" and e["event"]["delivery"]["org_id"] == "wy-zrzy"]
    t.ok(fails and fails[0]["http_status"] == 500 and not fails[0]["permanent"] and fails[0]["next_attempt_at_ms"] > 0
         and any(o["attempt"] == 2 for o in oks),
         "notify's log records the failed attempt (500, next attempt time) and the delivery on attempt 2", (fails, oks))

    # ---- time-out, then delivered ----
    subscribe("wy-sthj", "/slow", "--events", "transfer_required")
    report(tok, "wy-sthj")
    rec = wait_for(lambda: received("/slow"), 15) or []
    ev = notify_events()
    to = [e["event"] for e in ev if e["type"] == "delivery_failed" and e["event"]["delivery"]["org_id"] == "wy-sthj"]
    t.ok(rec and to and "timed out" in to[0]["error"].lower() and to[0]["http_status"] == 0,
         "an attempt that times out is retried and then delivered", to)
    t.ok(all(b["type"] == "transfer_required" for h, b, ts in rec), "the subscription's event filter holds")

    # ---- 400: permanent, dead letter, redeliver ----
    subscribe("wy-sw", "/bad", "--events", "transfer_required")
    report(tok, "wy-sw")
    dead = wait_for(lambda: json.loads(cli("deadletters", "--json").stdout or "[]"), 10) or []
    ev = notify_events()
    perm = [e["event"] for e in ev if e["type"] == "delivery_failed" and e["event"]["delivery"]["org_id"] == "wy-sw"]
    t.ok(perm and perm[0]["permanent"] and perm[0]["http_status"] == 400 and len(perm) == 1,
         "a 400 is a permanent failure: no retry", perm)
    t.ok(len(dead) == 1 and dead[0]["org_id"] == "wy-sw" and dead[0]["last_status"] == 400,
         "and a dead letter that casebus deadletters lists", dead)
    r, rs = cli("deadletters"), cli("subscriptions")
    t.ok(r.stdout.startswith("DELIVERY") and "wy-sw" in r.stdout and " 400 " in r.stdout
         and rs.stdout.startswith("ID") and "/bad" in rs.stdout and "transfer_required" in rs.stdout,
         "casebus deadletters and subscriptions print tables (--json for scripts)", r.stdout + rs.stdout)
    mode["/bad"] = 200
    r = cli("redeliver", dead[0]["id"] if dead else "x")
    t.ok(r.returncode == 0, "casebus redeliver sends it again", r.stderr)
    rec = wait_for(lambda: received("/bad"), 10) or []
    t.ok(len(rec) == 1 and json.loads(cli("deadletters", "--json").stdout) == [], "the redelivered letter arrives and leaves the dead letters")
    r = cli("redeliver", "D999999")
    t.ok(r.returncode == 1 and "(delivery_id)" in r.stderr, "redelivering an unknown delivery is refused", r.stderr)

    # ---- 503 for ever: dead letter after the horizon ----
    down_sub = subscribe("wy-nync", "/down", "--events", "transfer_required")
    report(tok, "wy-nync")
    ev = wait_for(lambda: [e for e in notify_events() if e["type"] == "dead_lettered"
                           and e["event"]["delivery"]["org_id"] == "wy-nync"], 15) or []
    t.ok(ev and ev[0]["event"]["attempts"] >= 3 and "503" in ev[0]["event"]["last_error"],
         "an endpoint that keeps failing is retried with backoff, then dead-lettered after the horizon", ev)
    r = cli("deliveries", "--subscription", down_sub)
    rows = json.loads(cli("deliveries", "--subscription", down_sub, "--json").stdout or "[]")
    t.ok(r.returncode == 0 and r.stdout.startswith("DELIVERY") and " dead " in r.stdout and len(rows) == 1
         and rows[0]["state"] == "dead" and rows[0]["attempt"] >= 3 and rows[0]["last_status"] == 503
         and "last_latency_ms" in rows[0],
         "casebus deliveries shows the subscription's history: state, attempts, status, latency", (r.stdout, rows))
    r = cli("redeliver", "--dead", "--subscription", down_sub)
    again = json.loads(cli("deliveries", "--subscription", down_sub, "--json").stdout or "[]")
    ev2 = wait_for(lambda: (lambda x: x if len(x) >= 2 else None)(
        [e for e in notify_events() if e["type"] == "dead_lettered" and e["event"]["delivery"]["org_id"] == "wy-nync"]), 15) or []
    t.ok(r.returncode == 0 and "1 dead letters" in r.stdout and again and again[0]["state"] != "dead" and len(ev2) == 2,
         "redeliver --dead --subscription sends every dead letter of it again (still failing: dead again after the horizon)",
         (r.stdout, r.stderr, again[:1], len(ev2)))
    r = cli("deliveries", "--subscription", "S999999")
    t.ok(r.returncode == 1 and "(subscription_id)" in r.stderr, "deliveries of an unknown subscription is refused", r.stderr)

    # ---- a dead endpoint does not delay a live one ----
    r = cli("subscribe", "--org", "wy-jtys", "--url", f"http://127.0.0.1:{rport}/hang", "--secret", SECRET)
    r = cli("subscribe", "--org", "wy-wgl", "--url", f"http://127.0.0.1:{closed_port}/x", "--secret", SECRET)
    subscribe("wy-jtys", "/ok/jtys")
    for _ in range(3):
        report(tok, "wy-jtys")
        report(tok, "wy-wgl")
    t0 = time.time()
    rec = wait_for(lambda: (lambda x: x if len(x) >= 6 else None)(received("/ok/jtys")), 10) or []
    t.ok(len(rec) == 6 and max(ts for h, b, ts in rec) - t0 < 3,
         "with one endpoint hanging and another refusing connections, the live endpoint gets all 6 at once",
         (len(rec), [round(ts - t0, 2) for h, b, ts in rec]))
    # one case after another: the endpoint's connections are kept alive
    t0 = time.time()
    for i in range(4):
        report(tok, "wy-jtys")
        wait_for(lambda: len(received("/ok/jtys")) >= 6 + 2 * (i + 1) or None, 10)
    used = {port for path, port, ts in conns if path == "/ok/jtys" and ts >= t0}
    sent = [1 for path, port, ts in conns if path == "/ok/jtys" and ts >= t0]
    t.ok(len(sent) == 8 and len(used) <= 2,
         "8 deliveries of 4 cases reported one after another reach the endpoint over at most 2 kept-alive connections",
         (len(sent), sorted(used)))

    # ---- undeliverable: an addressee with no subscription ----
    cw = report(tok, "wy-wsj")
    ev = wait_for(lambda: (lambda x: x if len(x) >= 2 else None)(
        [e for e in notify_events() if e["type"] == "undeliverable" and e["case_id"] == cw
         and e["event"]["delivery"]["org_id"] == "wy-wsj"]), 10) or []
    t.ok(len(ev) == 2 and "no subscription" in ev[0]["event"]["reason"],
         "events for an organisation without a subscription are recorded as undeliverable", ev)

    # ---- the ZeroMQ stream channel: the platform pulls its own events ----
    r = cli("subscribe", "--org", "wy-yjgl", "--channel", "zmq", "--secret", SECRET)
    t.ok(r.returncode == 0, "a zmq-channel subscription needs no url", r.stderr)
    sid = r.stdout.split()[1].rstrip(":")
    cy = report(tok, "wy-yjgl")
    zc = zmq.Context()
    sock = zc.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(f"ipc://{w.p('notify.stream')}")

    def fetch(secret, from_seq, wait=2000):
        sock.send(pb([(1, 7), (2, sid), (3, secret), (4, from_seq), (5, 100), (6, wait)]))
        if not sock.poll(5000):
            return None, []
        frames = sock.recv_multipart()
        return unpb(frames[0]), [unpb(f) for f in frames[1:]]

    got_events = []
    for _ in range(20):
        h, recs = fetch(SECRET, len(got_events) + 1)
        got_events += recs
        if len(got_events) >= 2:
            break
    t.ok(len(got_events) == 2 and all(e[6][0].decode() == cy for e in got_events)
         and sorted(e[2][0] for e in got_events) == [b"deadline", b"router"],
         "the platform pulls its 2 events (router's and deadline's envelopes, byte for byte) with its secret",
         [(e.get(2), e.get(3)) for e in got_events])
    h, recs = fetch("wrong-secret-0123456789", 1, 0)
    t.ok(h is not None and b"wrong secret" in h.get(6, [b""])[0] and recs == [],
         "a wrong secret gets an error header and no events", h)
    t0 = time.time()
    h, recs = fetch(SECRET, 3, 1000)
    t.ok(recs == [] and h[5][0] == 2 and time.time() - t0 >= 0.9,
         "a fetch past the head is parked until its wait ends (long poll)", (h, time.time() - t0))
    sock.close()
    zc.term()

    # ---- kill -9 mid-retry: nothing lost ----
    mode["/later"] = 503
    subscribe("wy-zjj", "/later")
    cases = [report(tok, "wy-zjj") for _ in range(3)]
    wait_for(lambda: seen_paths.get("/later", 0) >= 2, 10)
    w.kill(procs["notify"], signal.SIGKILL)
    mode["/later"] = 200
    system.start("notify")
    rec = wait_for(lambda: (lambda x: x if len({b["event_id"] for h, b, ts in x}) >= 6 else None)(received("/later")), 15) or []
    ids = {b["event_id"] for h, b, ts in rec}
    t.ok(len(ids) == 6 and {b["case_id"] for h, b, ts in rec} == set(cases),
         "after kill -9 mid-retry every outstanding delivery arrives (6 events of 3 cases)", len(ids))
    st = json.loads(cli("status", "--json").stdout)["notify"]
    t.ok(st["subscriptions"] >= 8 and st["dead_letters"] >= 1 and "pending_deliveries" in st,
         "casebus status shows subscriptions, pending deliveries and dead letters", st)
    _, m, lint = scrape(mport)
    t.ok(m.get("casebus_notify_dead_letters") == st["dead_letters"] >= 1
         and m.get('casebus_notify_attempts_total{outcome="delivered"}', 0) >= 1
         and m.get("casebus_notify_webhook_seconds_count", 0) >= 1
         and 'casebus_notify_webhook_seconds_bucket{le="0.0005"}' in m
         and m.get('casebus_bus_consumer_lag{producer="router"}') is not None and lint[0] == 0,
         "notify's /metrics: the dead letters (the CasebusDeadLettersIncreasing rule's series), attempts by outcome, "
         "webhook latency, consumer lag; promtool check metrics passes", (lint, {k: v for k, v in m.items() if "notify" in k}))
    r = cli("verify")
    t.ok(r.returncode == 0 and "notify    ok" in r.stdout, "notify's log verifies", r.stdout)

    # ---- a stored event that cannot be read: a failed attempt, then a dead letter ----
    mode["/garbled"] = 503
    g_sub = subscribe("wy-sthj", "/garbled", "--events", "transfer_required")
    report(tok, "wy-sthj")
    g_rows = wait_for(lambda: [d for d in json.loads(cli("deliveries", "--subscription", g_sub, "--json").stdout or "[]")
                               if d["attempt"] >= 1], 10) or []
    system.kill("notify", signal.SIGTERM)
    # what a damaged store would hold: bytes that are neither an Envelope nor JSON
    load = subprocess.run(["mdb_load", "-T", "-s", "bodies", w.p("notify")],
                          input="".join(f"{d['id']}\nnot an envelope\n" for d in g_rows),
                          capture_output=True, text=True)
    mode["/garbled"] = 200
    before = len(received("/garbled"))
    system.start("notify")
    g_dead = wait_for(lambda: [e for e in notify_events() if e["type"] == "dead_lettered"
                               and e["event"]["delivery"]["org_id"] == "wy-sthj"], 15) or []
    t.ok(len(g_rows) == 1 and load.returncode == 0 and len(g_dead) == 1
         and "its stored event is unreadable" in g_dead[0]["event"]["last_error"]
         and len(received("/garbled")) == before,
         "a delivery whose stored event cannot be read is recorded as a failed attempt and dead-lettered, not sent",
         (g_rows, load.stderr, g_dead))

    # ---- Standard Webhooks, judged by the standardwebhooks npm package ----
    r = cli("subscribe", "--org", "wy-nync", "--url", f"http://127.0.0.1:{rport}/sw")
    sub_out = r
    made = re.search(r"secret (whsec_[A-Za-z0-9+/=]+)", r.stdout)
    t.ok(r.returncode == 0 and made, "subscribe without --secret makes a whsec_ secret and shows it once", r.stdout)
    report(tok, "wy-nync")
    wait_for(lambda: len(received("/sw")) >= 2, 10)
    legacy = "whsec_" + base64.b64encode(SECRET.encode()).decode()  # the old secret's bytes as the key
    with lock:
        items = [{"secret": made.group(1) if p == "/sw" else legacy, "headers": h, "body": b.decode()}
                 for p, h, b, _ in got]
    tampered = dict(items[-1], body=items[-1]["body"].replace("}", ' }', 1))  # one byte changed: must fail
    v = subprocess.run(["node", os.path.join(TOP, "tests/e2e/lib/verify_webhooks.js")],
                       input=json.dumps(items + [tampered]), capture_output=True, text=True)
    res = json.loads(v.stdout or "{}")
    t.ok(res.get("verified") == len(items) >= 10 and [f["index"] for f in res.get("failed", [])] == [len(items)]
         and any(i["secret"] != legacy for i in items),
         f"every delivery ({len(items)}) verifies with the standardwebhooks library (webhook-id, "
         "webhook-timestamp, webhook-signature), and a tampered body does not", (res, v.stderr[-500:]))
    def sw_id_of(r):
        return r.stdout.split()[1].rstrip(":") if r.returncode == 0 else "x"

    def named(h, b):
        """webhook-id as the body's event names it; None for a batch."""
        ce = json.loads(b)
        if not isinstance(ce, dict):
            return None
        if ce.get("seq"):
            return f"{ce['producer']}-{ce['seq']}-{ce['subscription']}"
        return f"{ce['id']}-{ce['subscription']}"
    with lock:
        ids = [(h["webhook-id"], named(h, b)) for _, h, b, _ in got]
        by_id = {}
        for _, h, b, _ in got:
            by_id.setdefault(h["webhook-id"], set()).add(h["X-Casebus-Delivery-Id"])
    singles = [(a, b) for a, b in ids if b is not None]
    sw_rows = json.loads(cli("deliveries", "--subscription", sw_id_of(sub_out), "--json").stdout or "[]")
    with lock:
        sw_got = {h["webhook-id"] for p, h, _, _ in got if p == "/sw"}
    t.ok(sw_got and sw_got <= {r.get("webhook_id") for r in sw_rows},
         "casebus deliveries --json gives each delivery's webhook_id, as the receiver got it", (sw_got, sw_rows[:2]))
    t.ok(len(singles) >= 10 and all(a == b for a, b in singles)
         and all(len(v) == 1 for v in by_id.values()),
         "webhook-id names the source event and the subscription (producer-seq-subscription), the same for "
         "every retry; one delivery each", (singles[:3], [k for k, v in by_id.items() if len(v) > 1][:3]))
    # rotation: for the overlap both secrets sign, then only the new one
    sw_id = sw_id_of(sub_out)
    r = cli("subscription", "rotate-secret", sw_id, "--overlap", "1h")
    new = re.search(r"secret (whsec_[A-Za-z0-9+/=]+)", r.stdout)
    t.ok(r.returncode == 0 and new and new.group(1) != made.group(1),
         "subscription rotate-secret makes a new whsec_ secret and shows it once", r.stdout + r.stderr)
    before = len(received("/sw"))
    report(tok, "wy-nync")
    wait_for(lambda: len(received("/sw")) >= before + 2, 10)
    with lock:
        late = [(h, b.decode()) for p, h, b, _ in got if p == "/sw"][before:]
    both = [{"secret": sec, "headers": h, "body": body} for h, body in late for sec in (new.group(1), made.group(1))]
    v = subprocess.run(["node", os.path.join(TOP, "tests/e2e/lib/verify_webhooks.js")], input=json.dumps(both),
                       capture_output=True, text=True)
    res = json.loads(v.stdout or "{}")
    t.ok(late and res.get("verified") == len(both) and all(len(h["webhook-signature"].split()) == 2 for h, _ in late),
         "during the overlap each delivery carries two signatures, and verifies with the new secret and the old",
         (res, [h["webhook-signature"] for h, _ in late][:1]))
    # ---- CloudEvents: whom a copy is for, batched mode, update in place, ping ----
    with lock:
        h0 = [h for p, h, b, _ in got if p == "/sw"][0]
    t.ok(h0.get("webhook-subscription") == sw_id and h0.get("webhook-addressee") == "wy-nync"
         and h0.get("Content-Type") == "application/cloudevents+json",
         "each delivery names its subscription and addressee (webhook-subscription, webhook-addressee) and is "
         "a structured CloudEvent", h0)
    r = cli("subscribe", "--org", "wy-jtys", "--url", f"http://127.0.0.1:{rport}/batch", "--secret", SECRET,
            "--batch", "10")
    batch_sub = r.stdout.split()[1].rstrip(":") if r.returncode == 0 else "x"
    t.ok(r.returncode == 0, "subscribe --batch 10 makes a batched-mode subscription", r.stderr)
    t.eq(w.kill(procs["notify"], signal.SIGTERM), 0, "notify stops while three cases come in")
    batched = [report(tok, "wy-jtys") for _ in range(3)]

    def routed_all():
        r = cli("tail", "--json", "--from", "beginning", "--exit-at-end", "--producer", "router",
                "--type", "transfer_required")
        return {json.loads(x)["subject"] for x in r.stdout.splitlines()} >= set(batched)
    wait_for(routed_all, 10)  # so notify finds all three waiting when it starts
    system.start("notify", log="notify-batch.log")
    wait_for(lambda: len(received("/batch")) >= 6, 15)
    with lock:
        reqs = [(h, json.loads(b)) for p, h, b, _ in got if p == "/batch"]
    t.ok(len(received("/batch")) == 6 and {d["case_id"] for _, d, _ in received("/batch")} == set(batched)
         and all(h["Content-Type"] == "application/cloudevents-batch+json" and isinstance(b, list) for h, b in reqs)
         and max(len(b) for h, b in reqs) >= 2,
         "a batched subscription gets arrays of CloudEvents (application/cloudevents-batch+json), every event once",
         [(h.get("Content-Type"), len(b)) for h, b in reqs])
    r = cli("subscription", "update", batch_sub, "--url", f"http://127.0.0.1:{rport}/single", "--batch", "0",
            "--events", "transfer_required")
    t.ok(r.returncode == 0 and "changed" in r.stdout, "subscription update changes url, batch size and event types", r.stderr)
    c_up = report(tok, "wy-jtys")
    wait_for(lambda: received("/single"), 10)
    time.sleep(0.5)
    t.ok([d["type"] for _, d, _ in received("/single")] == ["transfer_required"]
         and received("/single")[0][1]["case_id"] == c_up and len(received("/batch")) == 6,
         "after the update: the new url, one event per request, and only the types now asked for",
         [d["type"] for _, d, _ in received("/single")])
    r = cli("subscription", "update", batch_sub)
    t.ok(r.returncode == 1 and "nothing to change" in r.stderr, "an update that changes nothing is refused", r.stderr)
    r = cli("subscription", "update", "S999999", "--rate", "5")
    t.ok(r.returncode == 1 and "(subscription_id)" in r.stderr, "an update of an unknown subscription is refused", r.stderr)
    r = cli("subscription", "test", batch_sub)
    ping = wait_for(lambda: [b for p, h, b, _ in list(got) if p == "/single" and b"\"ping\"" in b], 10)
    t.ok(r.returncode == 0 and ping and json.loads(ping[0])["type"] == "cn.gov.330723.casebus.v1.ping",
         "subscription test sends a signed ping CloudEvent", (r.stdout + r.stderr, ping))
    with lock:
        everything = [(h, b) for p, h, b, _ in got]
    check_cloudevents(t, everything, "notify")
    r = cli("subscribe", "--org", "wy-nync", "--url", f"http://127.0.0.1:{rport}/x", "--secret", "whsec_not*base64*at-all")
    t.ok(r.returncode == 1 and "(secret)" in r.stderr, "a whsec_ secret that is not base64 is refused", r.stderr)
    t.eq(w.kill(procs["notify"], signal.SIGTERM), 0, "notify stops cleanly on SIGTERM")

    # ---- where webhooks may go: public addresses, and the networks webhook_allow names ----
    text = open(conf).read().replace("allow_private_webhooks = yes", "webhook_allow = 127.0.0.2/32")
    seed = f"subscribe = wy-scjg http://127.0.0.1:{rport}/ok/scjg {SECRET}"
    bad = w.p("bad-subscribe.conf")
    open(bad, "w").write(text.replace(seed, seed + " transfer_required batch=many"))
    r = subprocess.run([binary("bin/casebus-notify"), "--config", bad], capture_output=True, text=True, timeout=20)
    t.ok(r.returncode != 0 and "batch=many" in r.stderr and "[batch=N]" in r.stderr,
         "a subscribe line with a batch that is not a number stops notify, naming the line and its form", r.stderr)
    text = text.replace(seed, seed + f"\nsubscribe = wy-nync http://127.0.0.2:{rport}/seeded-batch {SECRET} batch=7")
    open(conf, "w").write(text)
    system.start("notify")
    wait_for(lambda: cli("subscriptions").returncode == 0, 10)
    seeded = [x for x in json.loads(cli("subscriptions", "--json").stdout or "[]") if x.get("url", "").endswith("/seeded-batch")]
    t.ok(len(seeded) == 1 and seeded[0].get("batch_max") == 7 and seeded[0].get("org_id") == "wy-nync",
         "a subscribe line with batch=7 makes a batched-mode subscription at start", seeded)
    for url, kind in ((f"http://127.0.0.1:{rport}/x", "loopback"), ("http://2130706433/x", "loopback"),
                      ("http://0x7f.1/x", "loopback"), ("http://169.254.169.254/latest/meta-data", "link-local"),
                      ("http://[::1]:8080/x", "loopback"), ("https://10.1.2.3/x", "private"),
                      ("http://[::ffff:127.0.0.1]/x", "loopback"), ("http://0.0.0.0:8080/x", "unspecified"),
                      ("http://192.168.1.1/x", "private")):
        r = cli("subscribe", "--org", "wy-wsj", "--url", url, "--secret", SECRET)
        t.ok(r.returncode == 1 and "(url)" in r.stderr and f"{kind} address" in r.stderr
             and "webhook_allow" in r.stderr,
             f"without allow_private_webhooks a webhook to {url} is refused as {kind}", r.stderr)
    r = cli("subscribe", "--org", "wy-wsj", "--url", f"http://127.0.0.2:{rport}/allowed", "--secret", SECRET)
    t.ok(r.returncode == 0, "a network that webhook_allow lists is accepted", r.stderr)
    r = cli("unsubscribe", r.stdout.split()[1].rstrip(":") if r.returncode == 0 else "x")
    subscribe_named = cli("subscribe", "--org", "wy-wsj", "--url", f"http://localhost:{rport}/named", "--secret",
                          SECRET, "--events", "transfer_required")
    t.ok(subscribe_named.returncode == 0, "a URL with a name is accepted: its address is judged when it is resolved",
         subscribe_named.stderr)
    report(tok, "wy-wsj")
    ev = wait_for(lambda: [e["event"] for e in notify_events() if e["type"] == "delivery_failed"
                           and e["event"]["delivery"]["org_id"] == "wy-wsj"], 10) or []
    t.ok(ev and "loopback address" in ev[0]["error"] and ev[0]["http_status"] == 0 and not received("/named"),
         "localhost resolves to loopback: the connection is refused and the failure says why", ev[:1])
    # ---- the tail's filters and ends ----
    r = cli("tail", "--type", "no_such_event")
    t.ok(r.returncode == 2 and "not an event type" in r.stderr, "tail --type naming no event type is refused", r.stderr)
    r = cli("tail", "--producer", "nope")
    t.ok(r.returncode == 2 and "not a producer" in r.stderr, "tail --producer naming no producer is refused", r.stderr)
    cut = time.strftime("%Y-%m-%dT%H:%M:%S+08:00", time.gmtime(time.time() - 5 + 8 * 3600))
    t0 = time.time()
    r = subprocess.run([binary("bin/casebus"), "--config", conf, "tail", "--json", "--from", "beginning", "--until", cut,
                        "--producer", "notify"], capture_output=True, text=True, timeout=20)
    t.ok(r.returncode == 0 and time.time() - t0 < 10 and r.stdout.count("\n") > 0,
         "tail --until a past instant prints what came before it and ends (no --exit-at-end needed)",
         (r.returncode, time.time() - t0, r.stderr[-200:]))
    t.eq(w.kill(procs["notify"], signal.SIGTERM), 0, "notify stops cleanly on SIGTERM")
    t0 = time.time()
    r = cli("tail", "--from", "beginning", "--exit-at-end", "--producer", "notify")
    t.ok(r.returncode == 1 and "notify at" in r.stderr and "does not answer within 2 s" in r.stderr
         and time.time() - t0 < 4, "tail names a daemon it cannot reach within 2 s", (r.stderr, time.time() - t0))
    for name in ("intake", "deadline", "router"):
        w.kill(procs[name], signal.SIGTERM)
except Exception as e:
    t.crashed(e)
finally:
    system.cleanup()
    srv.shutdown()
t.done()
