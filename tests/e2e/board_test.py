"""The command board (指挥大屏) in a real browser. The whole system runs; Debian's
chromium, driven by the playwright-core npm package, signs in at /board with the
command platform's token and reads the page itself:
- every township has a light; a case a township must transfer, discovered 30
  days ago, is overdue the moment it is reported, and its township's light turns
  red within 2 s (the overdue list names it);
- intake is restarted; the page reconnects by itself (EventSource, Last-Event-ID)
  and stays right, and the next overdue case turns another township red;
- the board answers no stranger (401), nor a township's token (403); the token
  travels as an HttpOnly cookie and appears in no log.
A screenshot is saved under BUILD/artifacts/board.png."""
import http.client as http_client
import json
import os
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from cbtest import BUILD, System, Tap, wait_for, TOP  # noqa: E402

t = Tap()
system = System("board", {"intake": f"board_dir = {os.path.join(TOP, 'deploy/board')}"})
w, port, conf, http, cli = system.w, system.port, system.conf, system.http, system.cli
shot = os.path.join(TOP, BUILD, "artifacts", "board.png")
os.makedirs(os.path.dirname(shot), exist_ok=True)
if os.path.exists(shot):
    os.unlink(shot)
browser = None
try:
    system.up("deadline")
    procs = system.procs
    platform, lt, tx, dept = (system.token(o) for o in ("wy-zhzf", "wy-lt", "wy-tx", "wy-scjg"))

    st, doc = http.get("/v1/board")
    t.eq(st, 401, "the board's data answers no stranger")
    st, doc = http.get("/v1/board", dept)
    t.ok(st == 403 and doc["error"]["code"] == "forbidden", "nor a department's token: the board shows every case", doc)
    st, doc = http.get("/v1/board", platform)
    t.ok(st == 200 and len(doc["townships"]) == 8 and all(x["light"] == "green" for x in doc["townships"]),
         "the command platform's token gets the board: every township, all green", doc)
    conn = http_client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", f"/board?token={platform}")
    r = conn.getresponse()
    st, headers = r.status, {k.lower(): v for k, v in r.getheaders()}
    r.read()
    conn.close()
    cookie = headers.get("set-cookie", "")
    t.ok(st == 303 and headers.get("location") == "/board" and "HttpOnly" in cookie and "SameSite=Strict" in cookie,
         "signing in by URL sets an HttpOnly cookie and sends the browser on without the token", (st, headers))

    def stream(last_id=None, seconds=1.5):
        """What /v1/board/stream sends in the first seconds (text)."""
        sock = socket.create_connection(("127.0.0.1", port), timeout=seconds)
        extra = f"Last-Event-ID: {last_id}\r\n" if last_id else ""
        sock.sendall((f"GET /v1/board/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {platform}\r\n"
                      f"{extra}\r\n").encode())
        got, end = b"", time.time() + seconds
        try:
            while time.time() < end:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                got += chunk
        except socket.timeout:
            pass
        sock.close()
        return got.decode(errors="replace")

    first = stream()
    ids = [line[4:] for line in first.splitlines() if line.startswith("id: ")]
    t.ok("text/event-stream" in first and first.count("event: board") == 1 and ids,
         "the stream sends the board once on connect, with an event id", first[:300])
    again = stream(ids[0] if ids else "x")
    t.ok("event: board" not in again and "retry:" in again,
         "a browser reconnecting with the Last-Event-ID it shows gets nothing until the next change", again[:300])
    stale = stream("1.0")
    t.ok(stale.count("event: board") == 1, "one with an older id gets the board at once", stale[:300])

    browser = subprocess.Popen(["node", os.path.join(TOP, "tests/e2e/lib/board_browser.js"),
                                f"http://127.0.0.1:{port}", platform, lt, tx, shot],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    steps = {}
    for line in browser.stdout:
        step = json.loads(line)
        steps[step["step"]] = step
        if step["step"] == "restart_intake":
            t.eq(w.kill(procs["intake"], signal.SIGTERM), 0, "intake stops cleanly with a board stream open")
            system.start("intake")
            wait_for(lambda: http.get("/healthz")[0] == 200, 10)
            browser.stdin.write("go\n")
            browser.stdin.flush()
        if step["step"] in ("screenshot", "error"):
            break
    browser.wait(timeout=60)
    t.ok("error" not in steps, "the browser session ran to its end", steps.get("error", {}).get("error", "")
         + browser.stderr.read()[-2000:])
    s = steps.get("login_page", {})
    t.ok(s.get("status") == 401 and s.get("has_form"), "/board without a token shows the login form", s)
    s = steps.get("signed_in", {})
    t.ok(s.get("url", "").endswith("/board") and any(c["name"] == "cb_board" and c["httpOnly"]
                                                     for c in s.get("cookies", [])),
         "the login form signs in: an HttpOnly cookie, back on /board", s)
    s = steps.get("board", {})
    t.ok(s.get("light") == "green" and s.get("townships") == 8 and "指挥大屏" in s.get("heading", ""),
         "the page shows every township's light (履坦镇 green), labelled in Chinese", s)
    s = steps.get("red", {})
    t.ok(s.get("report") == 201 and s.get("red_after_ms") is not None and s["red_after_ms"] <= 2000,
         f"an overdue case turns 履坦镇's light red on the page within 2 s ({s.get('red_after_ms')} ms)", s)
    s = steps.get("overdue_list", {})
    t.ok(any(steps.get("red", {}).get("case_id", "?") in row for row in s.get("rows", [])),
         "the overdue list names the case, with how late", s)
    s = steps.get("reconnected", {})
    t.ok(s.get("light") == "red", "after intake restarts, the page reconnects by itself and still shows red", s)
    s = steps.get("red_after_restart", {})
    t.ok(s.get("report") == 201 and s.get("red_after_ms") is not None and s["red_after_ms"] <= 2000,
         f"and keeps updating: 桃溪镇 turns red within 2 s ({s.get('red_after_ms')} ms)", s)
    today = steps.get("today", {})
    t.ok(today.get("total") in ("1", "2") and steps.get("red_after_restart", {}).get("case_id", "?") in
         " ".join(today.get("rows", [])), "today's new cases list the latest one", today)
    t.ok(os.path.getsize(shot) > 10000 if os.path.exists(shot) else False,
         f"a screenshot of the board is saved: {shot}")
    print(f"# board screenshot: {shot}")
    logs = "".join(open(w.p(f"{d}.log"), errors="replace").read() for d in ("intake", "router", "deadline", "notify"))
    t.ok(platform not in logs and platform.split("_")[-1] not in logs, "the board's token appears in no daemon's log")
except Exception as e:
    t.crashed(e)
finally:
    if browser and browser.poll() is None:
        browser.kill()
    system.cleanup()
t.done()
