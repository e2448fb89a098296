"""CURVE on every ZeroMQ socket, end to end: the four real daemons with keys
made by `casebus keys init`, the sample county imported with the operator's
key, a case routed and its time limit opened across the daemons' CURVE bus.
Then the strangers: a plain client, a client with an unknown key, an observer
on a control socket, a platform key on the bus; each gets nothing. An
observer's tail gets reporters masked by the producer, an operator's does not.
A platform key works on the command door until its .pub is removed. A tcp
endpoint without keys is refused unless insecure = yes."""
import json
import os
import stat
import subprocess
import sys
import time

import zmq

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from cbtest import Http, Tap, Workdir, binary, free_port, import_sample_county, pb, system_config, unpb, wait_for, write_config  # noqa: E402

t = Tap()
w = Workdir("curve")
port = free_port()
keys = w.p("keys")
conf = system_config(w, port)
with open(conf, "a") as f:
    f.write(f"[curve]\nkeys_dir = {keys}\n")
http = Http(port)
BIN = {d: binary(f"bin/casebus-{d}") for d in ("intake", "router", "deadline", "notify")}
CLI = binary("bin/casebus")
zctx = zmq.Context()


def cli(*args, key=None):
    env = dict(os.environ)
    env.pop("CASEBUS_KEY", None)
    if key:
        env["CASEBUS_KEY"] = key
    return subprocess.run([CLI, "--config", conf, *args], capture_output=True, text=True, env=env)


def read_key(path):
    out = {}
    for line in open(path):
        if " = " in line:
            k, v = line.rstrip("\n").split(" = ", 1)
            out[k] = v.encode()
    return out


def dealer(endpoint, server=None, client=None, timeout=1500):
    """A DEALER to endpoint: plain, or CURVE to daemon server's key with the
    client key file (None: a fresh key nobody knows)."""
    s = zctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.RCVTIMEO, timeout)
    s.setsockopt(zmq.SNDTIMEO, timeout)  # a peer that fails the handshake leaves no pipe to send on
    if server:
        mine = read_key(client) if client else dict(zip(("public", "secret"), zmq.curve_keypair()))
        s.curve_serverkey = read_key(os.path.join(keys, "daemons", f"{server}.pub"))["public"]
        s.curve_publickey = mine["public"]
        s.curve_secretkey = mine["secret"]
    s.connect(endpoint)
    return s


def ask(sock, frame):
    try:
        sock.send(frame)
        return sock.recv_multipart()
    except zmq.Again:
        return None
    finally:
        sock.close()


FETCH = pb([(1, [(1, 7), (2, 1), (3, 10)])])  # BusRequest{fetch{request_id 7, from 1, max 10}}
STATUS = pb([(1, "s"), (12, [])])              # ControlRequest{status}

try:
    r = cli("keys", "init")
    made = sorted(os.listdir(os.path.join(keys, "daemons")))
    modes = {f: stat.S_IMODE(os.stat(os.path.join(keys, "daemons", f)).st_mode)
             for f in made if f.endswith(".key")}
    t.ok(r.returncode == 0 and len(made) == 8 and set(modes.values()) == {0o600}
         and os.path.exists(os.path.join(keys, "operators", "operator.key")),
         "casebus keys init makes the four daemons' and the operator's key pairs, secrets 0600", (r.stderr, made, modes))
    again = cli("keys", "init")
    t.ok(again.returncode == 0 and again.stdout == "", "keys init again keeps the keys it made", again.stdout)

    tok = subprocess.run([BIN["intake"], "token", "create", "--config", conf, "--org", "wy-scjg"],
                         capture_output=True, text=True).stdout.strip()
    procs = {d: w.start([BIN[d], "--config", conf], f"{d}.log") for d in BIN}
    wait_for(lambda: cli("status", "--json").returncode in (0, 1) and "router" in cli("status", "--json").stdout, 10)
    import_sample_county(cli, w, "deadline")
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600))
    st, doc = http.post("/v1/cases", {"source": "citizen_report", "reporter": {"name": "李四", "phone": "13900000000"},
                                      "matter_code": "330217001", "township_code": "330723101000",
                                      "discovered_at": at, "discovered_by": "wy-scjg", "description": "占道经营"}, token=tok)
    case_id = doc.get("case_id", "") if isinstance(doc, dict) else ""

    def routed():
        s, v = http.get(f"/v1/cases/{case_id}", token=tok)
        return s == 200 and v.get("obligations") and v

    view = wait_for(routed, 10)
    t.ok(st == 201 and view and view["state"] == "transfer_required",
         "with CURVE on every socket, the operator imports the county and a case is routed and its limit opened (intake, router, deadline over the CURVE bus)",
         (st, doc, view))
    logs = "".join(open(w.p(f"{d}.log")).read() for d in BIN)
    t.ok(logs.count("curve keys_dir=") == 4, "every daemon says it runs behind CURVE", logs[-500:])

    bus = f"ipc://{w.p('router.bus')}"
    t.eq(ask(dealer(bus), FETCH), None, "a plain client gets no answer from router's bus")
    t.eq(ask(dealer(bus, "router"), FETCH), None, "a client with a key nobody listed gets no answer from the bus")
    t.ok(wait_for(lambda: "curve_refused domain=bus" in open(w.p("router.log")).read(), 3),
         "router logs the refused key")
    got = ask(dealer(bus, "router", os.path.join(keys, "operators", "operator.key")), FETCH)
    t.ok(got is not None and len(got) > 1, "the operator's key fetches router's log", got and len(got))

    cli("keys", "gen", "observers/hall")
    cli("keys", "gen", "platforms/wy-scjg")
    observer = os.path.join(keys, "observers", "hall.key")
    platform = os.path.join(keys, "platforms", "wy-scjg.key")
    for d in ("intake", "notify"):
        ctl = f"ipc://{w.p(d + '.ctl')}"
        t.eq(ask(dealer(ctl, d, observer), STATUS), None, f"an observer's key gets no answer from {d}'s control socket")
    s = cli("status", key=observer)
    t.ok(s.returncode != 0 and "operators" in s.stderr, "casebus status with an observer's key fails and says the key is not an operator's", s.stderr[-300:])
    t.eq(ask(dealer(f"ipc://{w.p('intake.bus')}", "intake", platform), FETCH), None,
         "a platform's key gets no answer from intake's bus")

    def reporters(key):
        r = cli("tail", "--json", "--from", "beginning", "--exit-at-end", "--type", "case_reported",
                "--case", case_id, "--show-personal-data", key=key)
        return [json.loads(line)["data"]["event"]["reporter"]["name"] for line in r.stdout.splitlines() if line]

    t.eq(reporters(observer), ["***"], "an observer's tail gets the reporter masked by intake itself, even with --show-personal-data")
    t.eq(reporters(None), ["李四"], "the operator's tail with --show-personal-data reads the reporter")

    door = f"ipc://{w.p('intake.cmd')}"
    report = pb([(1, tok), (3, "z1"), (10, [(1, [(2, 1), (3, "330217001"), (5, "330723101000"),
                                                 (8, int((time.time() - 3600) * 1000)), (9, [(1, "wy-scjg")]),
                                                 (10, 1), (12, "巡查发现")])])])
    got = ask(dealer(door, "intake", platform, 5000), report)
    t.ok(got is not None and unpb(got[-1]).get(1, [0])[0] == 201, "a platform's key reports a case on the command door", got)
    t.eq(ask(dealer(door, "intake", observer), report), None, "an observer's key gets no answer from the command door")
    os.unlink(os.path.join(keys, "platforms", "wy-scjg.pub"))
    t.eq(ask(dealer(door, "intake", platform), report), None,
         "once its .pub is removed, the platform's next connection is refused (no restart)")

    # A tcp endpoint without keys.
    for p in procs.values():
        w.kill(p)
    tport = free_port()
    lone = w.p("lone.conf")
    write_config(lone, f"[router]\ndata_dir = {w.p('lone')}\nbus_bind = tcp://127.0.0.1:{tport}\n"
                       f"control_bind = ipc://{w.p('lone.ctl')}\n")
    r = subprocess.run([BIN["router"], "--config", lone], capture_output=True, text=True, timeout=10)
    t.ok(r.returncode != 0 and "CURVE is off" in r.stderr and "insecure = yes" in r.stderr,
         "a daemon refuses to bind tcp without keys, and says how to fix it", r.stderr[-300:])
    with open(lone, "a") as f:
        f.write("[curve]\ninsecure = yes\n")
    p = w.start([BIN["router"], "--config", lone], "lone.log")
    up = wait_for(lambda: "started pid" in open(w.p("lone.log")).read(), 5)
    text = open(w.p("lone.log")).read()
    t.ok(up and p.poll() is None and "INSECURE endpoint=tcp://127.0.0.1" in text,
         "with insecure = yes it starts, and says INSECURE in its log", text[-300:])
    w.kill(p)
    os.chmod(os.path.join(keys, "daemons", "router.key"), 0o644)
    r = subprocess.run([BIN["router"], "--config", conf], capture_output=True, text=True, timeout=10)
    t.ok(r.returncode != 0 and "chmod 600" in r.stderr, "a daemon refuses a secret key others can read", r.stderr[-300:])
finally:
    w.cleanup()
t.done()
