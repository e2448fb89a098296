"""Bus liveness end to end: the four real daemons in a temporary directory, the
sample county, and a small steady load (a case every 200 ms, each routed,
opening a time limit, and so flowing through every log). Each daemon in turn is
killed with SIGKILL and started again; every consumer of the killed daemon must
be back to lag 0 in `casebus status` within 5 s of the restart, and none may be
marked stalled. At the end every case reported was routed and had its limit
opened exactly once."""
import json
import os
import zmq
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from cbtest import System, Tap, import_sample_county, pb, report_steadily, wait_for  # noqa: E402

t = Tap()
system = System("liveness", {"notify": "pull_max_wait_ms = 500"})
w, http, cli, status = system.w, system.http, system.cli, system.status
CONSUMERS = {"intake": ["router", "deadline"], "router": ["intake", "deadline", "notify"],
             "deadline": ["intake", "notify"], "notify": []}


def upstream(st, consumer, producer):
    for u in st.get(consumer, {}).get("upstreams", []):
        if u.get("producer") == producer:
            return u
    return None


def pairs_of(d):
    """(consumer, producer) pairs through d: its consumers, and its own upstreams."""
    return [(c, d) for c in CONSUMERS[d]] + [(d, p) for p, cs in CONSUMERS.items() if d in cs]


def heads():
    st = status()
    return {d: st.get(d, {}).get("log_head", 0) for d in CONSUMERS}


def caught_up(pairs, marks=None):
    """True when every pair shows lag 0, is not stalled and, given marks (the
    producers' heads before a kill), has applied an event made after them."""
    st = status()
    for c, p in pairs:
        u = upstream(st, c, p)
        if u is None or u.get("lag") != 0 or u.get("state") == "stalled":
            return False
        if marks and u.get("next_seq", 0) <= marks[p] + 1:
            return False
    return True


ALL_PAIRS = [(c, p) for p, cs in CONSUMERS.items() for c in cs]


procs = system.procs


def start(d):
    system.start(d)


reported = []
load_errors = []
stop = threading.Event()


def load(tok):
    report_steadily(http, tok, stop, reported, load_errors, "liveness", 0.2)


try:
    tok = system.offline_token("wy-scjg")
    for d in ("router", "deadline", "notify", "intake"):
        start(d)
    wait_for(lambda: http.get("/healthz")[0] == 200, 10)
    import_sample_county(cli, w)
    loader = threading.Thread(target=load, args=(tok,), daemon=True)
    loader.start()
    wait_for(lambda: len(reported) >= 5, 10)
    t.ok(wait_for(lambda: caught_up(ALL_PAIRS), 10),
         "under the steady load every consumer keeps up (lag 0 in casebus status)", status())

    worst = {}
    for d in ("intake", "router", "deadline", "notify"):
        for round_ in range(3):
            time.sleep(0.3 + 0.4 * round_)  # different moments of the load's rhythm
            marks = heads()
            w.kill(procs[d], signal.SIGKILL)
            time.sleep(0.5)
            start(d)
            t0 = time.time()
            back = wait_for(lambda: caught_up(pairs_of(d), marks), 5, step=0.05)
            took = time.time() - t0
            worst[d] = max(worst.get(d, 0), took)
            if not back:
                break
        t.ok(back and status().get(d, {}).get("daemon") == d,
             f"after each of 3 kill -9s of {d}, it and its consumers apply new events again and are "
             f"back to lag 0 within 5 s (worst {worst[d]:.2f} s)", json.dumps(status())[:1500])
    print("# worst time to lag 0 after a restart: " + ", ".join(f"{k} {v:.2f} s" for k, v in worst.items()))

    stop.set()
    loader.join()
    t.ok(not load_errors, "no case was refused for anything but a daemon being down", load_errors[:3])

    def all_opened():
        r = cli("tail", "--json", "--from", "beginning", "--exit-at-end", "--producer", "deadline")
        evs = [json.loads(x)["data"] for x in r.stdout.splitlines()]
        opened = [e["case_id"] for e in evs if e["type"] == "obligation_opened"
                  and e["event"]["obligation"]["rule_id"] == "transfer"]
        return opened if set(opened) >= set(reported) else None
    opened = wait_for(all_opened, 10) or []
    t.ok(len(reported) > 50 and set(opened) >= set(reported) and len(opened) == len(set(opened)),
         f"every one of {len(reported)} cases had its transfer limit opened, and only once",
         (len(reported), len(opened), len(set(opened))))
    st = status()
    t.ok(cli("status", "--json").returncode == 0 and wait_for(lambda: caught_up(ALL_PAIRS), 5),
         "at the end casebus status shows all four up, nothing stalled, lag 0", st)

    st_, text = http.get("/metrics")
    text = text.decode() if isinstance(text, bytes) else str(text)
    ages = {ln.split('"')[1]: float(ln.split()[-1]) for ln in text.splitlines()
            if ln.startswith("casebus_bus_last_answer_age_seconds{")}
    t.ok(st_ == 200 and set(ages) == {"router", "deadline"} and all(0 <= a < 6 for a in ages.values()),
         "intake's /metrics has the age of each producer's last answer, beside the lag", ages)

    # ---- a stall is visible: a "router" that is up and ahead but never answers ----
    for d in ("intake", "router", "deadline"):
        w.kill(procs[d], signal.SIGTERM)
    ctx = zmq.Context()
    bus = ctx.socket(zmq.ROUTER)
    bus.bind(f"ipc://{w.p('router.bus')}")          # takes fetches, answers none
    ctl = ctx.socket(zmq.ROUTER)
    ctl.bind(f"ipc://{w.p('router.ctl')}")
    fake_head = marks["router"] + 1000

    def serve_status():
        while not stop_fake.is_set():
            if ctl.poll(50):
                ident, _ = ctl.recv_multipart()
                ctl.send_multipart([ident, pb([(2, True), (9, json.dumps(
                    {"daemon": "router", "log_head": fake_head, "upstreams": []}))])])
            while bus.poll(0):
                bus.recv_multipart()
    stop_fake = threading.Event()
    fake = threading.Thread(target=serve_status, daemon=True)
    fake.start()
    t0 = time.time()
    stalled = wait_for(lambda: (lambda u: u if u and u.get("state") == "stalled" else None)(
        upstream(status(), "notify", "router")), 10)
    took = time.time() - t0
    r = cli("status", "--json")
    t.ok(stalled and stalled["lag"] > 0 and stalled["last_answer_age_ms"] > 3 * 500
         and r.returncode == 1 and "notify is stalled on router" in r.stderr,
         "a producer that is up and ahead but silent for over 3 x max_wait marks its consumer "
         "stalled in casebus status (exit 1, named on stderr)", (stalled, took, r.stderr))
    stop_fake.set()
    fake.join()
    bus.close(0)
    ctl.close(0)
    ctx.term()
    w.kill(procs["notify"], signal.SIGTERM)
except Exception as e:
    t.crashed(e)
finally:
    stop.set()
    system.cleanup()
t.done()
