"""intake_probe — POST /v1/cases at a steady RATE per second for SECONDS over one
keep-alive connection; prints the latency of each answer (p50, p99, max) and
how many were not 201. Used by bench/deadline.sh to watch intake during the
midnight herd.   usage: intake_probe.py PORT TOKEN RATE SECONDS"""
import http.client
import json
import sys
import time

port, token, rate, seconds = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
lat, bad = [], 0
start = time.time()
i = 0
while time.time() - start < seconds:
    due = start + i / rate
    if due > time.time():
        time.sleep(due - time.time())
    at = time.strftime("%Y-%m-%dT%H:%M:%S+08:00", time.gmtime(time.time() - 60 + 8 * 3600))
    body = json.dumps({"source": "patrol", "matter_code": "330217001", "township_code": "330723101000",
                       "discovered_at": at, "discovered_by": "wy-scjg", "description": "probe"})
    t0 = time.perf_counter()
    conn.request("POST", "/v1/cases", body, {"Authorization": f"Bearer {token}",
                                            "Content-Type": "application/json"})
    r = conn.getresponse()
    r.read()
    lat.append((time.perf_counter() - t0) * 1000)
    bad += r.status != 201
    i += 1
lat.sort()
n = len(lat)
print(f"{n} requests, {bad} not 201: p50={lat[n // 2]:.1f} p99={lat[n * 99 // 100]:.1f} max={lat[-1]:.1f} ms")
