"""cbtest — what casebus's end-to-end tests share: TAP output, daemons started
in a temporary directory and stopped by pid, an HTTP client, and a minimal
protobuf wire encoder/decoder (written here, independent of the C decoders
under test)."""
import datetime
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BUILD = os.environ.get("BUILD", "build")
TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


class Tap:
    def __init__(self):
        self.n = 0
        self.failed = 0

    def ok(self, cond, name, detail=""):
        self.n += 1
        if cond:
            print(f"ok {self.n} - {name}", flush=True)
        else:
            self.failed += 1
            print(f"not ok {self.n} - {name}", flush=True)
            if detail:
                for line in str(detail).splitlines()[:20]:
                    print(f"#   {line}", flush=True)
        return cond

    def eq(self, got, want, name):
        return self.ok(got == want, name, f"got {got!r}, want {want!r}")

    def crashed(self, e):
        """A crash of the test itself is a failure, never a pass."""
        import traceback
        self.ok(False, f"the test ran to its end ({e!r})", traceback.format_exc())

    def done(self):
        print(f"1..{self.n}")
        sys.exit(1 if self.failed else 0)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Workdir:
    def __init__(self, tag):
        self.path = tempfile.mkdtemp(prefix=f"casebus-{tag}-")
        self.procs = []

    def p(self, *parts):
        return os.path.join(self.path, *parts)

    def start(self, argv, log, env=None):
        f = open(self.p(log), "ab")
        proc = subprocess.Popen(argv, stdout=f, stderr=f, cwd=self.path,
                                env=None if env is None else {**os.environ, **env})
        self.procs.append(proc)
        return proc

    def kill(self, proc, sig=signal.SIGKILL, timeout=10):
        try:
            os.kill(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            return proc.wait()

    def cleanup(self):
        for proc in self.procs:
            if proc.poll() is None:
                self.kill(proc)
        if os.environ.get("KEEP_TMP"):
            print(f"# kept {self.path}")
        else:
            shutil.rmtree(self.path, ignore_errors=True)


def faketime_env(instant):
    """The environment that starts a process with its clock at instant (a
    timezone-aware datetime) and running on: libfaketime's offset, counted from
    the real clock even when this test itself runs under an offset
    (tests/dates.sh). None when libfaketime is not installed."""
    lib = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"
    if not os.path.exists(lib):
        return None
    ours = os.environ.get("FAKETIME", "") if "faketime" in os.environ.get("LD_PRELOAD", "") else ""
    real_now = time.time() - (float(ours) if ours[:1] in "+-" and ours[1:].replace(".", "").isdigit() else 0)
    # An AddressSanitizer build (make check) accepts a preloaded library only when
    # told not to insist on coming first.
    asan = ":".join(filter(None, [os.environ.get("ASAN_OPTIONS", ""), "verify_asan_link_order=0"]))
    return {"LD_PRELOAD": lib, "FAKETIME": "%+d" % int(instant.timestamp() - real_now),
            "FAKETIME_NO_CACHE": "1", "ASAN_OPTIONS": asan}


class ReceiverServer(ThreadingHTTPServer):
    """http.server with a listen backlog that takes a burst of connections
    (the default, 5, drops SYNs: a 1 s retransmit reads as a slow endpoint)."""
    request_queue_size = 256
    daemon_threads = True


class WebhookReceiver:
    """A loopback webhook endpoint that answers 200 and keeps what it got:
    (path, headers, event document) in .got, one per CloudEvent (a batch gives
    several), and (headers, raw body) per request in .raw."""

    def __init__(self):
        self.got, self.raw, self.lock = [], [], threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with outer.lock:
                    outer.raw.append((dict(self.headers), body))
                    outer.got.extend((self.path, dict(self.headers), d) for d in ce_data(body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.srv = ReceiverServer(("127.0.0.1", 0), Handler)
        self.srv.daemon_threads = True
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def bodies(self, path):
        with self.lock:
            return [b for p, _, b in self.got if p == path]

    def received(self, org, type_, pred=lambda e: True, timeout=15):
        """The events of type_ that org's path (/org) got and pred accepts,
        waiting up to timeout for the first (0: what is there now)."""
        def now():
            return [b["event"] for b in self.bodies(f"/{org}") if b.get("type") == type_ and pred(b["event"])]
        return (wait_for(now, timeout) if timeout else now()) or []

    def subscribe(self, cli, orgs, secret):
        """Subscribes each of orgs to its own path here (casebus subscribe)."""
        for org in orgs:
            r = cli("subscribe", "--org", org, "--url", self.url(f"/{org}"), "--secret", secret)
            assert r.returncode == 0, r.stderr

    def check_cloudevents(self, t, what):
        with self.lock:
            raw = list(self.raw)
        return check_cloudevents(t, raw, what)


# Decree 310 第六条: the dossier a handover to public security carries.
CRIME_DOSSIER = [{"kind": "crime_transfer_notice", "title": "涉嫌犯罪案件移送书"},
                 {"kind": "crime_investigation_report", "title": "调查报告"},
                 {"kind": "exhibit_list", "title": "涉案物品清单"}]


def cli_for(conf, env=None):
    """casebus --config conf ARGS…, as a function returning the CompletedProcess
    (env: variables added to the environment, such as faketime's)."""
    return lambda *args: subprocess.run([binary("bin/casebus"), "--config", conf, *args],
                                        capture_output=True, text=True,
                                        env=None if env is None else {**os.environ, **env})


def make_token(cli, *orgs):
    """A token for orgs through `casebus token create` (cli from cli_for)."""
    r = cli("token", "create", *sum((["--org", o] for o in orgs), []))
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def ago(seconds):
    """The instant seconds ago, China time, RFC 3339."""
    return datetime.datetime.fromtimestamp(time.time() - seconds,
                                           datetime.timezone(datetime.timedelta(hours=8))).isoformat()


def binary(name):
    return os.path.join(TOP, BUILD, name)


def wait_for(pred, timeout=10.0, step=0.05):
    end = time.time() + timeout
    while time.time() < end:
        try:
            v = pred()
            if v:
                return v
        except Exception:
            pass
        time.sleep(step)
    return None


# POST routes by command kind (intake.proto's Command field numbers), for the
# fuzz seed corpus (tests/fuzz/capture_seeds.py).
ROUTES = {("cases",): 10, ("cases", "transfers"): 11, ("transfers", "receipt"): 12,
          ("transfers", "acceptance"): 13, ("transfers", "return"): 14, ("transfers", "dispute"): 15,
          ("disputes", "decision"): 16, ("cases", "assistance-requests"): 17, ("assistance", "answer"): 18,
          ("cases", "decision"): 19, ("cases", "feedback"): 20, ("approvals",): 21,
          ("obligations", "extension-request"): 22, ("obligations", "extension-decision"): 23,
          ("cases", "cancellation"): 24, ("cases", "crime-referral"): 25, ("cases", "decision-filing"): 26,
          ("joint-operations",): 27, ("filings",): 28}


def capture(path, body):
    """Keeps a POST body as a fuzz seed: one byte of command kind (minus 10), then the body."""
    parts = path.split("?")[0].strip("/").split("/")
    if len(parts) < 2 or parts[0] != "v1":
        return
    key = (parts[1],) if len(parts) == 2 else (parts[1], parts[3]) if len(parts) == 4 else None
    kind = ROUTES.get(key)
    if kind is None:
        return
    import hashlib
    seed = bytes([kind - 10]) + body
    d = os.environ["CASEBUS_FUZZ_CAPTURE"]
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(seed).hexdigest()[:16]), "wb") as f:
        f.write(seed)


class Http:
    """A plain HTTP/1.1 client. With record set (a list), every exchange is kept
    there for openapi_check(): method, path, the request's JSON and the answer."""

    def __init__(self, port, record=None):
        self.port = port
        self.record = record

    def request(self, method, path, body=None, token=None, headers=None, raw=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        h = {}
        if token:
            h["Authorization"] = f"Bearer {token}"
        data = raw
        if body is not None:
            data = json.dumps(body, ensure_ascii=False).encode()
        if data is not None:
            h["Content-Type"] = "application/json"
        h.update(headers or {})
        if method == "POST" and data is not None and os.environ.get("CASEBUS_FUZZ_CAPTURE"):
            capture(path, data)
        conn.request(method, path, body=data, headers=h)
        r = conn.getresponse()
        text = r.read()
        conn.close()
        try:
            doc = json.loads(text)
        except ValueError:
            doc = text
        if self.record is not None:
            self.record.append({"method": method, "path": path, "status": r.status,
                                "request_type": h.get("Content-Type", ""),
                                "request": data.decode("utf-8", "replace") if data is not None else None,
                                "response_type": r.getheader("Content-Type", ""),
                                "response": text.decode("utf-8", "replace")})
        return r.status, doc

    def post(self, path, body=None, token=None, **kw):
        return self.request("POST", path, body, token, **kw)

    def get(self, path, token=None):
        return self.request("GET", path, None, token)


def openapi_document():
    """The API's OpenAPI document, as `casebus openapi` prints it (and intake serves it)."""
    return json.loads(subprocess.run([binary("bin/casebus"), "openapi"], capture_output=True, text=True,
                                     check=True).stdout)


def openapi_judge(t, doc, exchanges, workdir):
    """Judges recorded exchanges (Http(record=...)) against the OpenAPI document
    doc with ajv (npm), by tests/e2e/lib/openapi_check.mjs: one check, and a
    line of counts for the log."""
    doc_path, rec = os.path.join(workdir, "openapi.json"), os.path.join(workdir, "exchanges.json")
    with open(doc_path, "w") as f:
        json.dump(doc, f, ensure_ascii=False)
    with open(rec, "w") as f:
        json.dump(exchanges, f, ensure_ascii=False)
    script = os.path.join(os.path.dirname(__file__), "openapi_check.mjs")
    r = subprocess.run(["node", script, doc_path, rec], capture_output=True, text=True, timeout=120)
    try:
        v = json.loads(r.stdout)
    except ValueError:
        v = {"failures": [f"the checker failed: {r.stdout[-500:]} {r.stderr[-1500:]}"]}
    print(f"# openapi: {v.get('exchanges')} exchanges; {v.get('requests_validated')} request bodies validated "
          f"({v.get('accepted_requests_valid')} accepted, all valid; {v.get('refused_requests')} refused, "
          f"{v.get('refused_requests_the_schema_refuses_too')} of them by the schema too); "
          f"{v.get('responses_validated')} responses validated; {v.get('answered_outside_the_document')} "
          f"404/405 outside it; operations seen: {len(v.get('operations_seen', []))}")
    print(f"# openapi operations seen: {', '.join(v.get('operations_seen', []))}")
    t.ok(not v.get("failures") and v.get("responses_validated", 0) > 0,
         "every response is described by the OpenAPI document and every request accepted validates "
         "against it (ajv)", "\n".join(v.get("failures", [])[:15]))
    return v


# ---- protobuf wire format (just what the tests need) ----

def _varint(n):
    if n < 0:
        n += 1 << 64
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def pb(fields):
    """Encodes [(number, value)]: int -> varint, str/bytes -> length-delimited,
    list of pairs -> nested message, bool -> varint."""
    out = bytearray()
    for num, val in fields:
        if isinstance(val, bool) or isinstance(val, int):
            out += _varint(num << 3) + _varint(int(val))
        elif isinstance(val, (str, bytes)):
            b = val.encode() if isinstance(val, str) else val
            out += _varint(num << 3 | 2) + _varint(len(b)) + b
        elif isinstance(val, list):
            b = pb(val)
            out += _varint(num << 3 | 2) + _varint(len(b)) + b
        else:
            raise TypeError(val)
    return bytes(out)


def unpb(data):
    """Decodes one message into {number: [values]} (varints as int,
    length-delimited as bytes)."""
    out = {}
    i = 0
    while i < len(data):
        key, i = _read_varint(data, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _read_varint(data, i)
        elif wt == 2:
            n, i = _read_varint(data, i)
            v, i = data[i:i + n], i + n
        elif wt == 1:
            v, i = data[i:i + 8], i + 8
        elif wt == 5:
            v, i = data[i:i + 4], i + 4
        else:
            raise ValueError(f"wire type {wt}")
        out.setdefault(num, []).append(v)
    return out


def _read_varint(data, i):
    shift = n = 0
    while True:
        b = data[i]
        i += 1
        n |= (b & 0x7F) << shift
        if not b & 0x80:
            return n, i
        shift += 7


DIVISION_CODE = "330723"   # the sample county (deploy/casebus.conf [events])
TYPE_PREFIX = f"cn.gov.{DIVISION_CODE}.casebus.v1"


def write_config(path, text):
    """A deployment file; every deployment names its county ([events]), so one
    is added when text has none."""
    if "[events]" not in text:
        text = f"[events]\ndivision_code = {DIVISION_CODE}\n" + text
    with open(path, "w") as f:
        f.write(text)


def scrape(port):
    """A daemon's metrics_listen: (the /metrics text, {series: value}, promtool
    check metrics' (exit status, output))."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request("GET", "/metrics")
    text = c.getresponse().read().decode()
    c.close()
    series = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            series[name] = float(value)
    p = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
    return text, series, (p.returncode, p.stdout + p.stderr)


def ce_data(body):
    """The casebus event documents inside a webhook body (a CloudEvent, or a
    batch of them): each one's data."""
    doc = json.loads(body or b"null")
    return [e["data"] for e in doc] if isinstance(doc, list) else [doc["data"]] if doc else [None]


def check_cloudevents(t, requests, what):
    """Every (headers, raw body) of requests parsed by the cloudevents npm SDK
    (tests/e2e/lib/parse_cloudevents.js) and its attributes checked; one TAP
    line. Returns the SDK's answer."""
    items = [{"headers": h, "body": b.decode() if isinstance(b, bytes) else b} for h, b in requests]
    v = subprocess.run(["node", os.path.join(TOP, "tests/e2e/lib/parse_cloudevents.js")],
                       input=json.dumps({"type_prefix": TYPE_PREFIX, "division_code": DIVISION_CODE,
                                         "requests": items}),
                       capture_output=True, text=True)
    res = json.loads(v.stdout or "{}")
    t.ok(items and res.get("requests") == len(items) and not res.get("failed") and res.get("events", 0) >= len(items),
         f"{what}: every webhook ({len(items)} requests, {res.get('events')} events) parses with the cloudevents "
         "SDK as a valid CloudEvent whose id, type, source, subject, time, seq, hash and addressee match its data",
         (res.get("failed", [])[:3], v.stderr[-300:]))
    return res


def system_config(w, port, extra=None, rules=None, daemons=("intake", "router", "deadline", "notify"),
                  pulls=None):
    """The system's deployment file in w (ipc endpoints in it, HTTP on
    127.0.0.1:port, the shipped calendars and rules, or the rules file given):
    a section for each of daemons, each pulling from the others it needs that
    are there (pulls maps a section to other upstreams); extra maps a section
    to lines appended to it. Returns the path."""
    extra = extra or {}
    pulls = {"intake": ("router", "deadline"), "router": ("intake",), "deadline": ("intake", "router"),
             "notify": ("intake", "router", "deadline"), **(pulls or {})}
    sections = {
        "intake": f"""data_dir = {w.p('intake')}
http_listen = 127.0.0.1:{port}
zmq_bind = ipc://{w.p('intake.cmd')}
bus_bind = ipc://{w.p('intake.bus')}
control_bind = ipc://{w.p('intake.ctl')}""",
        "router": f"""data_dir = {w.p('router')}
bus_bind = ipc://{w.p('router.bus')}
control_bind = ipc://{w.p('router.ctl')}""",
        "deadline": f"""data_dir = {w.p('deadline')}
bus_bind = ipc://{w.p('deadline.bus')}
control_bind = ipc://{w.p('deadline.ctl')}
rules = {rules or os.path.join(TOP, 'deploy/deadlines.conf')}
calendar_dir = {os.path.join(TOP, 'deploy/calendar')}
compress_log_after = 16""",
        "notify": f"""data_dir = {w.p('notify')}
bus_bind = ipc://{w.p('notify.bus')}
control_bind = ipc://{w.p('notify.ctl')}
stream_bind = ipc://{w.p('notify.stream')}
allow_private_webhooks = yes""",
    }
    text = ""
    for name in daemons:
        lines = "".join(f"\npull = {up} ipc://{w.p(up + '.bus')}" for up in pulls[name] if up in daemons)
        text += f"[{name}]\n{sections[name]}{lines}\n{extra.get(name, '')}\n"
    path = w.p("casebus.conf")
    write_config(path, text)
    return path


class System:
    """One casebus for an end-to-end test, the one place that starts a
    configured system: a temporary directory with its deployment file
    (system_config), the daemons started and stopped by pid, an HTTP client on
    intake (record: a list that keeps every exchange), the CLI, and what every
    test asks of it (tokens, a case's view, the events on the tail)."""
    DAEMONS = ("intake", "router", "deadline", "notify")

    def __init__(self, tag, extra=None, rules=None, record=None, daemons=DAEMONS, pulls=None,
                 env=None):
        """rules: a deadline rules file, relative to the test's directory
        (written there before deadline starts) or absolute; env: variables
        for every daemon and CLI run (faketime's)."""
        self.env = env
        self.w = Workdir(tag)
        if rules and not os.path.isabs(rules):
            rules = self.w.p(rules)
        self.port = free_port()
        self.daemons = daemons
        self.conf = system_config(self.w, self.port, extra, rules, daemons, pulls)
        self.http = Http(self.port, record=record)
        self.cli = cli_for(self.conf, env)
        self.procs = {}

    def start(self, *daemons, env=None, log=None):
        """Starts daemons (all of the system's by default); returns their processes."""
        for d in daemons or self.daemons:
            self.procs[d] = self.w.start([binary(f"bin/casebus-{d}"), "--config", self.conf],
                                         log or f"{d}.log", env=env or self.env)
        return self.procs

    def up(self, *also_replicated):
        """Starts every daemon, waits for intake and imports the sample county
        (waiting until intake and also_replicated have its registry)."""
        self.start()
        wait_for(lambda: self.http.get("/healthz")[0] == 200, 10)
        import_sample_county(self.cli, self.w, *also_replicated)

    def kill(self, daemon, sig=signal.SIGKILL):
        return self.w.kill(self.procs[daemon], sig)

    def token(self, *orgs):
        return make_token(self.cli, *orgs)

    def offline_token(self, *orgs):
        """A token made before intake runs (casebus-intake token create)."""
        return subprocess.run([binary("bin/casebus-intake"), "token", "create", "--config", self.conf,
                               *sum((["--org", o] for o in orgs), [])],
                              capture_output=True, text=True, check=True).stdout.strip()

    def view(self, tok, case_id, pred=lambda v: True, timeout=15):
        """GET /v1/cases/{case_id} until pred holds (or timeout): the last view seen."""
        got = {}

        def check():
            st, v = self.http.get(f"/v1/cases/{case_id}", tok)
            got["v"] = v
            return st == 200 and pred(v)
        wait_for(check, timeout)
        return got.get("v", {})

    def tail(self, *args):
        """Every event on the tail (casebus tail --json from the beginning) that
        args select, as the envelopes' JSON."""
        r = self.cli("tail", "--json", "--from", "beginning", "--exit-at-end", *args)
        if r.returncode != 0:
            raise RuntimeError(f"casebus tail {' '.join(args)}: {r.stderr.strip()}")
        return [json.loads(line)["data"] for line in r.stdout.splitlines()]

    def status(self):
        """casebus status --json, or {} while it cannot answer."""
        try:
            return json.loads(self.cli("status", "--json").stdout)
        except ValueError:
            return {}

    def cleanup(self):
        self.w.cleanup()


def import_sample_county(cli, w, *also_replicated):
    """Imports the sample county's organisations and catalogue through the CLI
    (cli(*args) -> CompletedProcess) and waits until intake, and each daemon
    named in also_replicated, has replicated the registry (its log in w)."""
    r = cli("org", "import", os.path.join(TOP, "deploy/sample/orgs.csv"))
    assert r.returncode == 0, r.stderr
    r = cli("catalog", "import", os.path.join(TOP, "deploy/sample/catalog.csv"), "--effective-from", "2024-01-01")
    assert r.returncode == 0, r.stderr
    for d in ("intake",) + also_replicated:
        wait_for(lambda: "orgs_replicated" in open(w.p(f"{d}.log")).read(), 10)


def report_steadily(http, tok, stop, reported, errors, tag, period=0.2):
    """Reports a case every period seconds until stop (a threading.Event) is
    set, appending each acknowledged case id to reported. A refusal while intake
    is down (no answer, 503) is retried with the same Idempotency-Key, as a
    platform would, so every case lands once; any other answer goes to errors."""
    n = 0
    while not stop.is_set():
        n += 1
        key = f"{tag}-{n}"
        body = {"source": "patrol", "matter_code": "330217001", "township_code": "330723101000",
                "discovered_at": time.strftime("%Y-%m-%dT%H:%M:%S+08:00", time.gmtime(time.time() - 60 + 8 * 3600)),
                "discovered_by": "wy-scjg", "description": f"{tag} {n}", "urgency": "normal"}
        while not stop.is_set():
            try:
                st, doc = http.post("/v1/cases", body, tok, headers={"Idempotency-Key": key})
            except OSError:
                st, doc = 0, None
            if st == 201:
                reported.append(doc["case_id"])
                break
            if st not in (0, 503):
                errors.append((st, doc))
                break
            time.sleep(0.1)
        time.sleep(period)  # not Event.wait: its timeout ignores a moved clock (make test-dates)
