"""make run's supervisor on an operator's bad day: the whole system as `make run`
starts it (deploy/run.sh in a temporary VAR_DIR), cases posted steadily with
retries on the same Idempotency-Key, and 100 SIGKILLs of the daemons at random
0.2-3 s intervals: single kills, two daemons at once, a kill while another
daemon waits out its restart delay, and a daemon killed again just after its
restart. Whether a daemon runs is read from /proc, not from the supervisor.

Then: every kill was seen and restarted, all four daemons run, every consumer
is at lag 0, every acknowledged case was routed and had its limit opened
exactly once. A daemon that cannot start (a broken configuration line) is named
as degraded by the supervisor and by `casebus status`, and recovers once the
line is fixed. A supervisor killed with -9 takes its daemons with it and
`casebus status` says so. SUPERVISOR_SEED=N replays one run's kill sequence."""
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from cbtest import BUILD, TOP, Http, Tap, Workdir, binary, free_port, report_steadily, wait_for  # noqa: E402

DAEMONS = ("intake", "router", "deadline", "notify")
KILLS = int(os.environ.get("SUPERVISOR_KILLS", "100"))
seed = int(os.environ.get("SUPERVISOR_SEED", str(int(time.time() * 1000) % 1000000)))
rng = random.Random(seed)
print(f"# seed {seed} (SUPERVISOR_SEED={seed} replays this run's kills)")

t = Tap()
w = Workdir("supervisor")
var = w.path
port = free_port()
conf = w.p("casebus.conf")
http = Http(port)
CLI = binary("bin/casebus")
env = dict(os.environ, VAR_DIR=var, HTTP_PORT=str(port))
run_out = open(w.p("run.out"), "w")
run = subprocess.Popen(["bash", "deploy/run.sh", BUILD], cwd=TOP, env=env, stdout=run_out,
                       stderr=subprocess.STDOUT, start_new_session=True)


def cli(*args):
    return subprocess.run([CLI, "--config", conf, *args], capture_output=True, text=True, cwd=TOP)


def status():
    r = cli("status", "--json")
    try:
        return r.returncode, json.loads(r.stdout), r.stderr
    except ValueError:
        return r.returncode, {}, r.stderr


def output():
    return open(w.p("run.out")).read()


def pids():
    """{daemon: [pid, …]} of this system's daemons, from /proc."""
    found = {d: [] for d in DAEMONS}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
            with open(f"/proc/{entry}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state == "Z" or len(argv) < 3 or argv[1:3] != [b"--config", conf.encode()]:
            continue
        name = os.path.basename(argv[0].decode())
        if name.startswith("casebus-") and name[8:] in found:
            found[name[8:]].append(int(entry))
    return found


def all_up(killed=()):
    """True when each daemon runs exactly once, none with a pid killed earlier."""
    p = pids()
    return all(len(p[d]) == 1 and p[d][0] not in killed for d in DAEMONS)


reported = []
load_errors = []
stop = threading.Event()


def load(tok):
    report_steadily(http, tok, stop, reported, load_errors, f"soak-{seed}", 0.1)


kill_log = []     # (time, daemon, pid)
events = []       # (time of a kill event, the pids killed so far)
samples = []      # (time, all four up with none of the pids killed so far)


def monitor():
    while not stop_monitor.is_set():
        killed = {pid for _, _, pid in kill_log}
        samples.append((time.time(), all_up(killed)))
        time.sleep(0.02)


def kill(d):
    p = pids()[d]
    if not p:
        return False
    try:
        os.kill(p[0], signal.SIGKILL)
    except ProcessLookupError:
        return False
    kill_log.append((time.time(), d, p[0]))
    return True


def wait_new_pid(d, old, timeout=15):
    return wait_for(lambda: (lambda p: p[d] and p[d][0] not in old)(pids()), timeout, step=0.01)


try:
    t.ok(wait_for(lambda: "Ctrl-C stops everything" in output(), 60), "the system starts as make run starts it")
    tok = open(w.p("token")).read().strip()
    t.ok(wait_for(lambda: http.get("/healthz")[0] == 200 and
                  "orgs_replicated" in open(w.p("intake.log")).read(), 20), "intake answers with the sample county")
    loader = threading.Thread(target=load, args=(tok,), daemon=True)
    loader.start()
    stop_monitor = threading.Event()
    mon = threading.Thread(target=monitor, daemon=True)
    mon.start()
    wait_for(lambda: len(reported) >= 5, 10)

    kinds = {"single": 0, "pair": 0, "during_backoff": 0, "just_restarted": 0}
    while len(kill_log) < KILLS:
        kind = rng.choices(list(kinds), weights=[55, 15, 15, 15])[0]
        a, b = rng.sample(DAEMONS, 2)
        t0 = time.time()
        if kind == "single":
            kill(a)
        elif kind == "pair":
            kill(a)
            kill(b)
        elif kind == "during_backoff":           # b dies while a waits out its restart delay
            kill(a)
            time.sleep(rng.uniform(0.01, 0.15))
            kill(b)
        else:                                    # a dies again inside its first second up
            old = {pid for _, _, pid in kill_log}
            if kill(a) and wait_new_pid(a, old | {kill_log[-1][2]}):
                time.sleep(rng.uniform(0, 0.3))
                kill(a)
        kinds[kind] += 1
        events.append((t0, {pid for _, _, pid in kill_log}))
        time.sleep(max(0.0, rng.uniform(0.2, 3.0) - (time.time() - t0)))
    kills = len(kill_log)
    last = kill_log[-1][0]
    print(f"# {kills} SIGKILLs in {last - kill_log[0][0]:.0f} s: " +
          ", ".join(f"{k} {v}" for k, v in kinds.items()) + "; per daemon " +
          ", ".join(f"{d} {sum(1 for _, x, _ in kill_log if x == d)}" for d in DAEMONS))

    up = wait_for(lambda: all_up({pid for _, _, pid in kill_log}), 30, step=0.02)
    stop_monitor.set()
    mon.join()
    if up:  # this check saw them all up; the monitor may have stopped before its next sample
        samples.append((time.time(), True))
    t.ok(up, f"after {kills} SIGKILLs all four daemons run again, each once, none of them a killed pid",
         (pids(), output()[-2000:]))

    # Time from each kill event to the next moment all four ran with fresh pids.
    worst, took = 0.0, []
    for at, killed in events:
        nxt = next((ts for ts, ok in samples if ts >= at and ok), None)
        if nxt is not None:
            took.append(nxt - at)
    took.sort()
    worst = took[-1] if took else float("inf")
    print(f"# time to all-four-up after a kill event: median {took[len(took) // 2]:.2f} s, "
          f"p90 {took[int(len(took) * 0.9)]:.2f} s, worst {worst:.2f} s over {len(took)} events")
    t.ok(len(took) == len(events), "after every kill event all four daemons were up again at some moment",
         (len(took), len(events)))

    out = output()
    seen = {d: out.count(f"casebus: {d} exited (killed by signal 9)") for d in DAEMONS}
    sent = {d: sum(1 for _, x, _ in kill_log if x == d) for d in DAEMONS}
    t.ok(seen == sent, "the supervisor saw every kill: one 'exited (killed by signal 9)' line per SIGKILL, per daemon",
         (seen, sent))

    stop.set()
    loader.join()
    t.ok(not load_errors, "no case was refused for anything but a daemon being down", load_errors[:3])

    def settled():
        rc, st, _ = status()
        ups = [u for d in DAEMONS for u in st.get(d, {}).get("upstreams", [])]
        return rc == 0 and len(ups) == 8 and all(u.get("lag") == 0 for u in ups)
    t.ok(wait_for(settled, 30, step=0.2), "casebus status then exits 0 with every consumer at lag 0", status())

    def routed():
        r = cli("tail", "--json", "--from", "beginning", "--exit-at-end", "--producer", "router",
                "--type", "jurisdiction_resolved")
        got = [json.loads(x)["subject"] for x in r.stdout.splitlines()]
        return got if set(got) >= set(reported) else None
    got = wait_for(routed, 20, step=0.5) or []
    t.ok(len(reported) > 100 and set(got) >= set(reported) and len(got) == len(set(got)),
         f"every one of {len(reported)} acknowledged cases was routed, once", (len(reported), len(got), len(set(got))))

    def opened():
        r = cli("tail", "--json", "--from", "beginning", "--exit-at-end", "--producer", "deadline",
                "--type", "obligation_opened")
        got = [json.loads(x)["subject"] for x in r.stdout.splitlines()
               if json.loads(x)["data"]["event"]["obligation"]["rule_id"] == "transfer"]
        return got if set(got) >= set(reported) else None
    got = wait_for(opened, 20, step=0.5) or []
    t.ok(set(got) >= set(reported) and len(got) == len(set(got)),
         "and had its transfer limit opened, once", (len(reported), len(got), len(set(got))))

    # ---- a daemon that cannot start is loud ----
    text = open(conf).read()
    open(conf, "w").write(text.replace("\nbatch = 256\n", "\nbatch = many\n", 1))
    t_bad, mark = time.time(), len(output())  # the soak may have said the same lines already
    kill("deadline")
    warned = wait_for(lambda: "WARNING: deadline has been down for" in output()[mark:], 20, step=0.1)
    took_warn = time.time() - t_bad
    rc, st, err = status()
    sup = st.get("deadline", {}).get("supervisor", {})
    t.ok(warned and rc == 1 and "deadline has been down for" in err and "longer than its" in err
         and sup.get("degraded") is True and "exit status 1" in sup.get("last_exit", ""),
         f"a deadline that fails at every start is named degraded by the supervisor ({took_warn:.1f} s) and by "
         "casebus status (exit 1, on stderr, with its last exit)", (err, sup, output()[-1500:]))
    open(conf, "w").write(text)
    back = wait_for(lambda: "casebus: deadline is up again" in output()[mark:], 20, step=0.1)
    t.ok(back and wait_for(lambda: status()[0] == 0, 10, step=0.2),
         "with the line fixed it comes back by itself, said so, and casebus status exits 0 again",
         (output()[-800:], status()))

    # ---- the supervisor itself killed ----
    sup_pid = json.load(open(w.p("supervisor.json")))["pid"]
    os.kill(sup_pid, signal.SIGKILL)
    gone = wait_for(lambda: not any(pids().values()), 15, step=0.1)
    time.sleep(3.5)  # its state file goes stale
    rc, st, err = status()
    t.ok(gone and rc == 1 and "the supervisor (pid" in err and st.get("supervisor", {}).get("state") == "gone",
         "a supervisor killed with -9 takes its daemons with it (SIGTERM), and casebus status says it is gone",
         (pids(), err, st.get("supervisor")))
    t.ok(run.wait(10) != 0, "make run's script ends when its supervisor is killed")
finally:
    stop.set()
    if run.poll() is None:
        os.killpg(run.pid, signal.SIGTERM)
        try:
            run.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(run.pid, signal.SIGKILL)
    for d, ps in pids().items():
        for p in ps:
            os.kill(p, signal.SIGKILL)
    w.cleanup()
t.done()
