"""Power cuts: what intake acknowledged is on disk, whatever the disk kept of the rest.

intake runs with tests/shim/powercut.c preloaded, which keeps beside its
store the copy a disk would hold after a power cut at any instant: what a
completed fsync covered, the meta pages LMDB writes with O_DSYNC, and a random
share of every other write (the pages a disk may have written back early, in
any order). Under a load of concurrent POSTs from 16 keep-alive connections
(so that the group commit runs on its own thread, its fsync overlapping the
next group's work) and a consumer polling intake's log, the shim cuts the power
inside a commit: after one of its page writes, or inside the write of its meta
page, held there 30 ms while the page is in the page cache and not on disk.
intake is then started again on a copy of the shadow store. Every case it had
answered 201 must be there, whole, in the case view and in its log; every
event the consumer was given must be in the log as given (else the consumer's
chain breaks); the store must take new cases. Then router, a consumer and a
producer at once, has its power cut twice while intake takes cases: started
again on what its disk kept, it must resume by itself and route every case
exactly once, and every event it gave its own consumer must be in its log as
given. Then notify's power is cut inside a commit while it delivers (it sends
before its commit): restarted on what its disk kept, it must deliver every
case, no webhook-id may name two events and no event come under two. A last run has the
shim keep nothing at a sync, a daemon that acknowledged what is not on disk:
the same checks must find it out."""
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import http.client

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from cbtest import (Http, System, Tap, WebhookReceiver, Workdir, ago, binary, free_port,  # noqa: E402
                    import_sample_county, pb, unpb, wait_for, write_config, TOP)

import zmq  # noqa: E402

t = Tap()
w = Workdir("powercut")
INTAKE = binary("bin/casebus-intake")
SHIM = binary("tests/powercut.so")
CONNS = 16


def config(name):
    port = free_port()
    path = w.p(f"{name}.conf")
    write_config(path, f"""[intake]
data_dir = {w.p(name)}
http_listen = 127.0.0.1:{port}
zmq_bind = ipc://{w.p(name + '.cmd')}
bus_bind = ipc://{w.p(name + '.bus')}
pull = router ipc://{w.p('router.bus')}
""")
    return path, port


def start(conf, port, name, env=None, registry=True):
    """intake up (and, on a new store, with the registry replicated)."""
    p = w.start([INTAKE, "--config", conf], f"{name}.log", env=env)
    up = wait_for(lambda: Http(port).get("/healthz")[0] == 200, 15)
    up = up and (not registry or wait_for(lambda: "orgs_replicated" in open(w.p(f"{name}.log")).read(), 15))
    return p, bool(up)


def shim_env(store, shadow, early, seed, ignore_sync, arm, skip, where):
    # After whatever is preloaded already (libfaketime under make test-dates);
    # an AddressSanitizer build accepts a preloaded library when told not to
    # insist on coming first.
    pre = ":".join(filter(None, [os.environ.get("LD_PRELOAD", ""), SHIM]))
    asan = ":".join(filter(None, [os.environ.get("ASAN_OPTIONS", ""), "verify_asan_link_order=0"]))
    return {"LD_PRELOAD": pre, "ASAN_OPTIONS": asan, "POWERCUT_DIR": store, "POWERCUT_SHADOW": shadow,
            "POWERCUT_EARLY": str(early), "POWERCUT_SEED": str(seed),
            "POWERCUT_IGNORE_SYNC": "1" if ignore_sync else "0", "POWERCUT_ARM": arm,
            "POWERCUT_SKIP": str(skip), "POWERCUT_STATS": store + ".syncs", "POWERCUT_CUT": where,
            "POWERCUT_WINDOW_MS": "30"}


def load(port, token, tag, acked, stop):
    """POSTs cases on one kept-alive connection until stop is set or intake goes;
    keeps (case_id, description) of every 201."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    head = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    n = 0
    while not stop.is_set():
        n += 1
        desc = f"断电测试 {tag}-{n}：沿街店铺占道经营"
        body = json.dumps({"source": "patrol", "matter_code": "330217001", "township_code": "330723101000",
                           "discovered_at": ago(3600), "discovered_by": "wy-scjg", "description": desc},
                          ensure_ascii=False).encode()
        try:
            conn.request("POST", "/v1/cases", body=body, headers=head)
            r = conn.getresponse()
            doc = json.loads(r.read())
        except (OSError, http.client.HTTPException, ValueError):
            return
        if r.status == 201:
            acked.append((doc["case_id"], desc))


class Consumer:
    """A consumer of intake's log over the bus protocol that asks again at once
    (max_wait_ms 0) rather than waiting at the producer: it reads whatever a
    read transaction of intake's shows at any instant. Keeps {seq: record}."""

    def __init__(self, endpoint):
        self.sock = zctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(endpoint)
        self.got, self.asked, self.error = {}, 0, None

    def poll(self, until_head=False):
        """Until the producer is gone (or, until_head, has nothing more, or
        answers with an error, which is kept)."""
        nxt, end = 1, time.time() + 60
        while time.time() < end:
            self.asked += 1
            self.sock.send(pb([(1, [(1, self.asked), (2, nxt), (3, 512), (4, 0)])]))
            if not self.sock.poll(2000):
                return  # the producer is gone
            frames = self.sock.recv_multipart()
            h = unpb(frames[0])
            if h.get(6) or (h.get(3, [0])[0] != nxt and len(frames) > 1):
                self.error = f"the answer to a fetch from {nxt}: {h}"
                return
            for k, rec in enumerate(frames[1:]):
                self.got[nxt + k] = bytes(rec)
            nxt += len(frames) - 1
            if len(frames) == 1:
                if until_head and nxt > h.get(5, [0])[0]:
                    return
                time.sleep(0.002)
        self.error = "still reading after 60 s"

    def close(self):
        self.sock.close()


def read_log(bus, given):
    """The producer's whole log at bus now, as a Consumer that read it, and the
    seqs of given ({seq: record}, what a consumer was given before the cut)
    that are not in it as given."""
    log = Consumer(bus)
    log.poll(until_head=True)
    log.close()
    return log, [seq for seq, rec in given.items() if log.got.get(seq) != rec]


def pages_differ(a, b, size=4096):
    with open(a, "rb") as fa, open(b, "rb") as fb:
        x, y = fa.read(), fb.read()
    n = max(len(x), len(y))
    return sum(x[o:o + size] != y[o:o + size] for o in range(0, n, size))


def load_and_cut(port, token, tag, bus, arm, proc, rng, after=0.0, at=None, conns=None):
    """POSTs to intake on CONNS connections while a Consumer polls bus; once
    200 cases are acknowledged, and a random while later, arms the shim of proc
    and waits for it to cut the power (after: seconds the load goes on then;
    at: what must hold too before it is armed; conns: connections, CONNS unless given).
    Returns the acknowledged (case_id, description) and the consumer."""
    consumer = Consumer(bus)
    reader = threading.Thread(target=consumer.poll)
    reader.start()
    acked, stop = [], threading.Event()
    threads = [threading.Thread(target=load, args=(port, token, f"{tag}.{k}", acked, stop))
               for k in range(conns or CONNS)]
    for th in threads:
        th.start()
    wait_for(lambda: len(acked) >= 200 and (at is None or at()), 20)
    time.sleep(rng.uniform(0.0, 1.0))
    open(arm, "w").close()  # the shim cuts the power at its next write (see shim_env)
    try:
        proc.wait(10)
    except Exception:
        w.kill(proc, signal.SIGKILL)
    time.sleep(after)
    stop.set()
    for th in threads:
        th.join(10)
    reader.join(10)
    consumer.close()
    return list(acked), consumer


def check_after(rport, bus, token, acked, followed):
    """What intake, started again on the store the disk kept, has of what was
    acknowledged and of what its consumer was given: (lost cases, problems)."""
    http = Http(rport)
    lost = []
    for case_id, desc in acked:
        st, view = http.get(f"/v1/cases/{case_id}", token)
        if st != 200 or view.get("description") != desc:
            lost.append(case_id)
    problems = []
    after, gone = read_log(bus, followed)
    if after.error:
        problems.append(f"reading the log after the cut: {after.error}")
    logged = set(re.findall(rb"C[0-9]{8}-[0-9]{6}", b"".join(after.got.values())))
    missing = [c for c, _ in acked if c.encode() not in logged]
    if missing:
        problems.append(f"{len(missing)} acknowledged cases are not in its log, e.g. {missing[:3]}")
    if gone:
        problems.append(f"{len(gone)} of the {len(followed)} events a consumer was given are not in the "
                        f"log after the cut as they were given, from seq {min(gone)}")
    st, doc = http.post("/v1/cases", {"source": "patrol", "matter_code": "330217001",
                                      "township_code": "330723101000", "discovered_at": ago(60),
                                      "discovered_by": "wy-scjg", "description": "断电后的新案件"}, token)
    if st != 201:
        problems.append(f"a new case after the restart was answered {st}: {doc}")
    return lost, problems


def cut(i, early, where, ignore_sync, rng):
    """One power cut. Returns (acked, lost, problems, on_thread): the
    acknowledged cases, those the restarted intake does not have whole, what
    else went wrong, and the syncs of its commits on the committer thread."""
    conf, port = config(f"cut{i}")
    store, shadow = w.p(f"cut{i}"), w.p(f"cut{i}-shadow")
    os.makedirs(shadow)
    token = subprocess.run([INTAKE, "token", "create", "--config", conf, "--org", "wy-scjg"],
                           capture_output=True, text=True, check=True).stdout.strip()
    os.sync()  # the store as the token left it is where the shadow begins
    arm, skip = w.p(f"cut{i}.arm"), rng.randrange(40)
    proc, up = start(conf, port, f"cut{i}",
                     shim_env(store, shadow, early, 1000 + i, ignore_sync, arm, skip, where))
    if not up:
        return [], [], [f"intake under the shim did not start: {open(w.p(f'cut{i}.log')).read()[-2000:]}"], 0
    # a consumer of intake's log: what it is given must survive the cut too
    acked, consumer = load_and_cut(port, token, str(i), f"ipc://{w.p(f'cut{i}.bus')}", arm, proc, rng)
    followed = consumer.got

    # The machine comes back: the store is what the disk kept.
    differ = pages_differ(os.path.join(store, "data.mdb"), os.path.join(shadow, "data.mdb"))
    on_loop, on_thread = 0, 0  # no file: no sync at all
    if os.path.exists(store + ".syncs"):
        on_loop, on_thread = map(int, open(store + ".syncs").read().split())
    rconf, rport = config(f"cut{i}-after")
    os.makedirs(w.p(f"cut{i}-after"))
    shutil.copy(os.path.join(shadow, "data.mdb"), w.p(f"cut{i}-after", "data.mdb"))
    rproc, up = start(rconf, rport, f"cut{i}-after", registry=False)
    if not up:
        log = open(w.p(f"cut{i}-after.log")).read()[-1000:]
        return acked, acked, [f"intake did not start on the store the disk kept: {log}"], on_thread
    try:
        lost, problems = check_after(rport, f"ipc://{w.p(f'cut{i}-after.bus')}", token, acked, followed)
    except (OSError, http.client.HTTPException) as e:
        log = open(w.p(f"cut{i}-after.log")).read()[-1000:]
        lost, problems = acked, [f"intake stopped answering while it was read after the cut ({e!r}): {log}"]
    w.kill(rproc, signal.SIGTERM)
    if consumer.error:
        problems.append(f"reading the log during the load: {consumer.error}")
    print(f"# cut {i} ({'inside a meta page write' if where == 'dsync' else 'after a write'}): "
          f"{early}% of unsynced writes kept; {differ} pages of the store the disk kept differ "
          f"from the file the killed process left; {len(acked)} acknowledged, {len(lost)} lost; "
          f"{on_thread} of {on_loop + on_thread} syncs on the committer thread; a consumer was given {len(followed)} events")
    return acked, lost, problems, on_thread


def router_cut(early, where, rng):
    """A power cut of router, a consumer (of intake) and a producer at once,
    while intake takes cases. Returns (acked, problems)."""
    system = System("powercut-router", daemons=("intake", "router"))
    try:
        store, shadow = system.w.p("router"), system.w.p("router-shadow")
        os.makedirs(shadow)
        token = system.offline_token("wy-scjg")
        arm = system.w.p("router.arm")
        system.start("router", env=shim_env(store, shadow, early, 77, False, arm, rng.randrange(40), where))
        system.start("intake")
        wait_for(lambda: system.http.get("/healthz")[0] == 200, 10)
        import_sample_county(system.cli, system.w)
        acked, consumer = load_and_cut(system.port, token, "r", f"ipc://{system.w.p('router.bus')}", arm,
                                       system.procs["router"], rng, after=0.3)  # intake goes on meanwhile
        acked = [c for c, _ in acked]

        differ = pages_differ(os.path.join(store, "data.mdb"), os.path.join(shadow, "data.mdb"))
        for f in os.listdir(store):
            os.unlink(os.path.join(store, f))
        shutil.copy(os.path.join(shadow, "data.mdb"), os.path.join(store, "data.mdb"))
        system.start("router", log="router-after.log")

        def resolved():
            r = system.cli("tail", "--json", "--producer", "router", "--type", "jurisdiction_resolved",
                           "--from", "beginning", "--exit-at-end")
            return [json.loads(line)["subject"] for line in r.stdout.splitlines()] if r.returncode == 0 else []
        got = wait_for(lambda: (lambda c: c if set(acked) <= set(c) else None)(resolved()), 30) or resolved()
        problems = []
        twice = sorted({c for c in got if got.count(c) > 1})
        unrouted = [c for c in acked if c not in got]
        if unrouted:
            problems.append(f"{len(unrouted)} of {len(acked)} cases were never routed after the cut, e.g. {unrouted[:3]}")
        if twice:
            problems.append(f"{len(twice)} cases were routed twice, e.g. {twice[:3]}")
        after, gone = read_log(f"ipc://{system.w.p('router.bus')}", consumer.got)
        if gone or after.error or consumer.error:
            problems.append(f"{len(gone)} of the {len(consumer.got)} events router's consumer was given are not "
                            f"in its log as given ({after.error or consumer.error or ''})")
        print(f"# router cut ({where}, {early}% of unsynced writes kept): {differ} pages of the store the "
              f"disk kept differ from the file the killed process left; {len(acked)} cases taken by intake; "
              f"router's consumer was given {len(consumer.got)} events")
        return acked, problems
    finally:
        system.cleanup()


def notify_cut(rng, cuts=4):
    """Power cuts of notify inside a commit while it delivers, cuts times.
    notify sends a delivery made while an event is applied before its commit,
    so a cut can take back a delivery whose webhook went out: after the
    restart the event is applied again and delivered again, perhaps under
    another number, and a receiver that drops repeats by webhook-id must see it
    as the repeat it is. Returns (what the receiver got: [(webhook-id,
    CloudEvent)], the cases acknowledged meanwhile, the case ids none of whose
    transfer_required reached the receiver)."""
    receiver = WebhookReceiver()
    # deadline too: notify pulls two producers whose batches come back in any
    # order after a restart, so a delivery's number may go to another event
    system = System("powercut-notify")

    def received():
        with receiver.lock:
            return [({k.lower(): v for k, v in h.items()}["webhook-id"], json.loads(b)) for h, b in receiver.raw]

    def routed_cases():
        return {ce.get("subject") for _, ce in received() if ce.get("type", "").endswith(".transfer_required")}
    try:
        store, token = system.w.p("notify"), system.offline_token("wy-scjg")
        system.start("intake", "router", "deadline", "notify")
        wait_for(lambda: system.http.get("/healthz")[0] == 200, 10)
        import_sample_county(system.cli, system.w)
        receiver.subscribe(system.cli, ["wy-scjg"], "s3cret-for-the-power-cut-0123456789")
        cases = []
        for k in range(cuts):
            system.kill("notify", signal.SIGTERM)
            os.sync()  # where the shadow begins
            shadow, arm, before = system.w.p(f"notify-shadow{k}"), system.w.p(f"notify{k}.arm"), len(received())
            os.makedirs(shadow)
            system.start("notify", env=shim_env(store, shadow, 0, 99 + k, False, arm, 0, "dsync"))
            # one connection: a load notify keeps up with, so that its endpoint
            # has room and deliveries go before their commit
            acked, _ = load_and_cut(system.port, token, f"n{k}", f"ipc://{system.w.p('notify.bus')}", arm,
                                    system.procs["notify"], rng, at=lambda: len(received()) >= before + 100,
                                    conns=1)
            cases += [c for c, _ in acked]
            # the upstream of the last webhook before the cut pauses while notify
            # starts again, as an upstream may: the other's events may be applied
            # first this time, and the deliveries the disk lost made again under
            # other numbers
            now = received()
            last = now[-1][1].get("producer") if len(now) > before else None
            paused = system.procs["deadline" if last == "deadline" else "router"].pid
            os.kill(paused, signal.SIGSTOP)
            try:
                system.start("notify")
                time.sleep(1.0)
            finally:
                os.kill(paused, signal.SIGCONT)
        wait_for(lambda: routed_cases() >= set(cases), 60)
        return received(), cases, sorted(set(cases) - routed_cases())
    finally:
        system.cleanup()
        receiver.srv.shutdown()


zctx = zmq.Context()
try:
    feed = w.start([binary("tests/feed"), w.p("router"), f"ipc://{w.p('router.bus')}",
                    os.path.join(TOP, "deploy/sample/orgs.csv"), "registry"], "feed.log")
    rng = random.Random(int(os.environ.get("POWERCUT_SEED", "310")))
    threaded = []  # per cut, the syncs of intake's commits on its committer thread
    # the share of unsynced writes the disk happens to have written back
    for i, (early, where) in enumerate(((50, "write"), (0, "dsync"), (90, "write"), (50, "dsync"),
                                        (25, "write"), (75, "dsync"))):
        acked, lost, problems, on_thread = cut(i, early, where, False, rng)
        threaded.append(on_thread)
        t.ok(len(acked) >= 200 and not lost and not problems,
             f"power cut {i} under load ({where}, {early}% of unsynced writes kept): all {len(acked)} "
             "acknowledged cases are there whole, in the case view and the log, so is every event a "
             "consumer was given, and new cases are taken",
             "\n".join([f"lost: {len(lost)} of {len(acked)}, e.g. {lost[:3]}"] + problems))

    t.ok(sum(threaded) > 0, f"the load made intake commit on its committer thread ({threaded} of the "
         "syncs in each cut), the path whose acknowledgements are under test", threaded)

    for where in ("write", "dsync"):
        acked, problems = router_cut(50, where, rng)
        t.ok(len(acked) >= 200 and not problems,
             f"a power cut of router ({where}) while intake takes cases: router resumes by itself, routes "
             f"each of the {len(acked)} cases exactly once, and every event it gave is in its log as given",
             "\n".join(problems))

    got, cases, missing = notify_cut(rng)
    events, ids = {}, {}  # webhook-id: the events sent under it; event: the webhook-ids it came under
    for wid, ce in got:
        events.setdefault(wid, set()).add(ce.get("id"))
        ids.setdefault(ce.get("id"), set()).add(wid)
    reused = {wid: e for wid, e in events.items() if len(e) > 1}
    renamed = {e: w for e, w in ids.items() if len(w) > 1}
    again = len(got) - len(events)
    t.ok(len(cases) >= 400 and not missing and not reused and not renamed,
         f"4 power cuts of notify inside a commit while it delivers ({len(cases)} cases meanwhile): restarted "
         f"on what its disk kept, it delivers every case's transfer_required; each of the {len(events)} "
         f"webhook-ids names one event, and an event that came again ({again} webhooks) came under its "
         "first id, so a receiver dropping repeats by webhook-id drops the repeat and nothing else",
         f"missing: {len(missing)}, e.g. {missing[:3]}; webhook-ids of two events: {list(reused.items())[:3]}; "
         f"events under two webhook-ids: {list(renamed.items())[:3]}")

    acked, lost, problems, _ = cut(9, 0, "write", True, rng)
    t.ok(len(acked) >= 200 and len(lost) == len(acked),
         "with syncs that keep nothing (acknowledged before durable), the same checks find every "
         "acknowledged case lost", (len(acked), len(lost), problems))
finally:
    w.cleanup()
    zctx.term()
t.done()
