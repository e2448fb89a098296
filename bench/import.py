"""import — how long a large catalogue import takes, and what it does to routing
meanwhile. Starts router and intake (ipc, a temporary directory), imports the
sample county, then reports a case every 10 ms and measures each one's routing
latency (intake's 201 to router's jurisdiction_resolved, recorded_at_ms) while
idle and while a ROWS-row catalogue is imported.
Baseline (issue 12): a 100k-row import blocked router's loop for 23 s; routing
latency must stay under 100 ms during it.   usage: import.py BUILD [ROWS]"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "e2e", "lib"))
from cbtest import Http, free_port, wait_for, write_config, TOP  # noqa: E402

build = sys.argv[1] if len(sys.argv) > 1 else "build"
rows = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
B = os.path.join(TOP, build, "bin")
d = tempfile.mkdtemp(prefix="casebus-bench-import-")
port = free_port()
conf = os.path.join(d, "casebus.conf")
write_config(conf, f"""[intake]
data_dir = {d}/intake
http_listen = 127.0.0.1:{port}
zmq_bind = ipc://{d}/intake.cmd
bus_bind = ipc://{d}/intake.bus
control_bind = ipc://{d}/intake.ctl
pull = router ipc://{d}/router.bus
log_level = warn
[router]
data_dir = {d}/router
map_size = 8G
bus_bind = ipc://{d}/router.bus
control_bind = ipc://{d}/router.ctl
pull = intake ipc://{d}/intake.bus
log_level = warn
""")
procs = []


def cli(*args):
    return subprocess.run([os.path.join(B, "casebus"), "--config", conf, *args], capture_output=True, text=True)


try:
    token = subprocess.run([os.path.join(B, "casebus-intake"), "token", "create", "--config", conf, "--org", "wy-scjg"],
                           capture_output=True, text=True, check=True).stdout.strip()
    for name in ("router", "intake"):
        procs.append(subprocess.Popen([os.path.join(B, f"casebus-{name}"), "--config", conf],
                                      stdout=open(f"{d}/{name}.log", "w"), stderr=subprocess.STDOUT))
    http = Http(port)
    wait_for(lambda: http.get("/healthz")[0] == 200, 10)
    assert cli("org", "import", os.path.join(TOP, "deploy/sample/orgs.csv")).returncode == 0
    assert cli("catalog", "import", os.path.join(TOP, "deploy/sample/catalog.csv"),
               "--effective-from", "2024-01-01").returncode == 0
    wait_for(lambda: "orgs_replicated" in open(f"{d}/intake.log").read() or
             http.post("/v1/cases", {}, token)[0] != 400, 5)
    time.sleep(1)

    big = os.path.join(d, "big.csv")
    with open(os.path.join(TOP, "deploy/sample/catalog.csv")) as src, open(big, "w") as out:
        out.write(src.read())
        for i in range(rows):
            out.write(f"9{i:08d},第{i}项行政处罚事项(压力测试),综合行政执法,TOWNSHIP_BASIC,,,2024-01-01,\n")

    routed = {}  # case id -> router's recorded_at_ms
    tail = subprocess.Popen([os.path.join(B, "casebus"), "--config", conf, "tail", "--json", "--from", "now",
                             "--producer", "router", "--type", "jurisdiction_resolved"],
                            stdout=subprocess.PIPE, text=True)

    def read_tail():
        for line in tail.stdout:
            e = json.loads(line)["data"]
            routed[e["case_id"]] = e["recorded_at_ms"]
    threading.Thread(target=read_tail, daemon=True).start()
    time.sleep(0.5)

    sent = {}  # case id -> (phase, acknowledged at ms)
    phase = ["idle"]
    stop = threading.Event()

    def probe():
        while not stop.is_set():
            at = time.strftime("%Y-%m-%dT%H:%M:%S+08:00", time.gmtime(time.time() - 60 + 8 * 3600))
            st, doc = http.post("/v1/cases", {"source": "patrol", "matter_code": "330217001",
                                              "township_code": "330723101000", "discovered_at": at,
                                              "discovered_by": "wy-scjg", "description": "probe"}, token)
            if st == 201:
                sent[doc["case_id"]] = (phase[0], time.time() * 1000)
            time.sleep(0.01)
    th = threading.Thread(target=probe)
    th.start()
    time.sleep(3)
    phase[0] = "import"
    t0 = time.time()
    r = cli("catalog", "import", big, "--effective-from", "2024-01-01")
    took = time.time() - t0
    phase[0] = "after"
    time.sleep(2)
    stop.set()
    th.join()
    time.sleep(1)
    print(f"catalogue of {rows + 40} rows imported in {took:.2f} s (casebus catalog import): "
          f"{r.stdout.strip() or r.stderr.strip()}")
    for ph in ("idle", "import", "after"):
        lat = sorted(routed[c] - t for c, (p, t) in sent.items() if p == ph and c in routed)
        lost = sum(1 for c, (p, t) in sent.items() if p == ph and c not in routed)
        if lat:
            n = len(lat)
            print(f"routing latency {ph:6}: {n} cases, p50={lat[n // 2]:.0f} p99={lat[n * 99 // 100]:.0f} "
                  f"max={lat[-1]:.0f} ms{f', {lost} not routed' if lost else ''}")
    print("baseline: a 100k-row import blocked router's loop for 23 s; target: routing under 100 ms during it")
    tail.terminate()
finally:
    for p in procs:
        p.terminate()
        p.wait(10)
    shutil.rmtree(d, ignore_errors=True)
