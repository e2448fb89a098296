"""intake end to end: starts the real casebus-intake (and a stand-in for
router's organisation registry) in a temporary directory, drives both doors,
and checks what a county platform would notice: status codes, the field and
rule named in every refusal, that refused commands write nothing, idempotent
retries, authentication, durability across kill -9, and a clean SIGTERM."""
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from cbtest import (Http, Tap, Workdir, binary, free_port, openapi_judge, pb, unpb, wait_for,  # noqa: E402
                    write_config, TOP)

import zmq  # noqa: E402

os.umask(0o022)  # a permissive umask: the socket files must be 0600 anyway
t = Tap()
w = Workdir("intake")
port = free_port()
conf = w.p("casebus.conf")
write_config(conf, f"""[intake]
data_dir = {w.p('intake')}
http_listen = 127.0.0.1:{port}
zmq_bind = ipc://{w.p('intake.cmd')}
bus_bind = ipc://{w.p('intake.bus')}
pull = router ipc://{w.p('router.bus')}
max_body = 64K
""")
exchanges = []  # every HTTP exchange, judged against the OpenAPI document at the end
http = Http(port, record=exchanges)
INTAKE = binary("bin/casebus-intake")


def token(*orgs, extra=()):
    import subprocess
    out = subprocess.run([INTAKE, "token", "create", "--config", conf, *sum((["--org", o] for o in orgs), []), *extra],
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


def start_intake():
    p = w.start([INTAKE, "--config", conf], "intake.log")
    if not wait_for(lambda: http.get("/healthz")[0] == 200, 10):
        print("# intake did not come up:\n# " + open(w.p("intake.log")).read().replace("\n", "\n# "))
    return p


def log_head():
    return http.get("/healthz")[1]["log_head"]


def http_client_errors():
    import http.client as hc
    return (hc.HTTPException, OSError)


def ago(hours):
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() - hours * 3600))


try:
    feed = w.start([binary("tests/feed"), w.p("router"), f"ipc://{w.p('router.bus')}",
                    os.path.join(TOP, "deploy/sample/orgs.csv"), "registry"], "feed.log")
    tok_dept = token("wy-scjg", "wy-scjg-jcdd", "wy-zjj")      # market regulator + its unit
    tok_town = token("wy-lt")                                  # 履坦镇
    tok_judicial = token("wy-sfj")
    tok_ghost = token("wy-ghost")                              # an org the registry lacks
    intake = start_intake()
    # The registry arrives from "router" over the bus.
    wait_for(lambda: "orgs_replicated" in open(w.p("intake.log")).read(), 10)
    import subprocess
    printed = json.loads(subprocess.run([binary("bin/casebus"), "openapi"], capture_output=True, text=True,
                                        check=True).stdout)
    st, served = http.get("/openapi.json")
    t.ok(st == 200 and served == printed and served["openapi"] == "3.1.0",
         "intake serves at /openapi.json the document `casebus openapi` prints", st)
    modes = {f: oct(os.stat(w.p(f)).st_mode & 0o777) for f in ("intake.cmd", "intake.bus")}
    t.ok(set(modes.values()) == {"0o600"}, "intake's ipc socket files are 0600 though it was started with umask 022",
         modes)

    case = {"source": "citizen_report", "matter_code": "330217001", "township_code": "330723101000",
            "discovered_at": ago(30), "discovered_by": "wy-scjg", "urgency": "normal",
            "description": "店铺占道经营", "reporter": {"name": "张三", "phone": "13800138000",
                                                  "id_number": "11010519491231002X"},
            "location": {"address": "履坦镇履坦街1号", "latitude": 28.9, "longitude": 119.8},
            "party": {"name": "武义县某某餐饮有限公司", "credit_code": "91350100M000100Y43"},
            "attachments": [{"name": "photo.jpg", "uri": "https://files.example/1.jpg",
                             "sha256": "ab" * 32, "size_bytes": 1024}]}

    # ---- report a case ----
    st, doc = http.post("/v1/cases", case, tok_dept)
    t.eq(st, 201, "a valid case report is 201 Created")
    case_id = doc.get("case_id", "") if isinstance(doc, dict) else ""
    t.ok(case_id.startswith("C") and doc.get("event_seq", 0) > 0, "the answer carries the case id and event seq", doc)
    st, view = http.get(f"/v1/cases/{case_id}", tok_dept)
    t.ok(st == 200 and view["discovered_by"]["name"] == "武义县市场监督管理局" and view["timeline"][0]["event"] == "case_reported",
         "GET /v1/cases/{id} shows the case, its organisation and its timeline", view)
    t.eq(view.get("reporter", {}).get("phone"), "13800138000", "the discovering organisation sees the reporter in full")
    t.eq(view.get("party", {}).get("credit_code"), "91350100M000100Y43", "the party and its credit code are on the case")

    # ---- every validation rule refused with its code and field, nothing written ----
    def refused(body, status, code, field, name, tok=tok_dept, path="/v1/cases"):
        before = log_head()
        st, doc = http.post(path, body, tok)
        err = doc.get("error", {}) if isinstance(doc, dict) else {}
        t.ok(st == status and err.get("code") == code and err.get("field") == field and err.get("message"),
             f"{name}: {status} {code} on '{field}'", f"got {st} {doc}")
        t.eq(log_head(), before, f"{name}: nothing written")

    def with_(**kw):
        c = dict(case)
        c.update(kw)
        return {k: v for k, v in c.items() if v is not None}

    refused(with_(matter_code=None), 400, "missing_field", "matter_code", "missing matter code")
    refused(with_(township_code="33072310100"), 400, "invalid_field", "township_code", "11-digit township code")
    refused(with_(township_code="330723101001"), 400, "invalid_field", "township_code", "village-level code")
    refused(with_(discovered_at=ago(-2)), 400, "time_in_future", "discovered_at", "discovered in the future")
    refused(with_(discovered_at="2015-01-01T00:00:00+08:00"), 400, "time_too_old", "discovered_at", "discovered absurdly long ago")
    refused(with_(discovered_at="yesterday"), 400, "invalid_field", "discovered_at", "a time that is not RFC 3339")
    refused(with_(source="gossip"), 400, "invalid_field", "source", "unknown source channel")
    refused(with_(urgency="urgent"), 400, "invalid_field", "urgency", "unknown urgency")
    refused(with_(suspected_crime="yes"), 400, "invalid_field", "suspected_crime", "boolean given as a string")
    refused(with_(colour="red"), 400, "invalid_field", "colour", "unknown field")
    refused(with_(reporter=None), 400, "missing_field", "reporter", "citizen report without a reporter")
    refused(with_(reporter={"name": "李四", "id_number": "110105194912310021"}), 400, "invalid_field",
            "reporter.id_number", "identity number with a wrong check digit")
    refused(with_(attachments=[{"name": "a", "uri": "u", "sha256": "zz"}]), 400, "invalid_field",
            "attachments[0].sha256", "attachment hash that is not hex")
    refused(with_(party={"name": "某公司", "credit_code": "91350100M000100Y44"}), 400, "invalid_field",
            "party.credit_code", "party with a wrong GB 32100 check character")
    refused(with_(discovered_by="wy-zhzf"), 403, "forbidden", "discovered_by", "acting for an organisation the token lacks")
    refused(with_(discovered_by="wy-ghost"), 400, "unknown_organisation", "discovered_by",
            "an organisation not in the registry", tok=tok_ghost)

    # ---- one answer names every missing field ----
    before = log_head()
    st, doc = http.post("/v1/cases", {"township_code": "330723101000"}, tok_dept)
    err = doc.get("error", {}) if isinstance(doc, dict) else {}
    t.ok(st == 400 and err.get("code") == "missing_field" and err.get("field") == "source"
         and err.get("fields") == ["source", "matter_code", "discovered_at", "discovered_by", "description"]
         and all(f in err.get("message", "") for f in err.get("fields", [])),
         "a report missing five fields is refused once, naming all five", doc)
    t.eq(log_head(), before, "the incomplete report wrote nothing")
    t.eq(view["discovered_by"].get("kind"), "county_department",
         "the case view spells an organisation's kind as the events do")

    # ---- transfers ----
    materials = [{"kind": "transfer_letter", "title": "移送函"},
                 {"kind": "case_source", "title": "现场检查记录"},
                 {"kind": "investigation", "text": "调查情况"}]
    transfer = {"sender": "wy-scjg", "reason": "属乡镇赋权事项", "approved_by": "王局长",
                "approved_at": ago(1), "materials": materials}
    tpath = f"/v1/cases/{case_id}/transfers"
    refused(dict(transfer, sender="wy-scjg-jcdd"), 400, "unit_may_not_transfer", "sender",
            "transfer in the name of an internal unit", path=tpath)
    st, doc = http.post(tpath, dict(transfer, sender="wy-scjg-jcdd"), tok_dept)
    t.ok("武义县市场监督管理局" in doc["error"]["message"], "the internal-unit refusal names the parent organisation", doc)
    st, doc = http.post(tpath, dict(transfer, materials=materials[:1], reason=""), tok_dept)
    msg = doc["error"]["message"]
    t.ok(st == 400 and doc["error"]["code"] == "missing_materials" and all(
        k in msg for k in ("case_source", "evidence", "reason")) and "transfer_letter" not in msg,
        "missing materials are listed by name, and only those", doc)
    refused(transfer, 404, "not_found", "case_id", "transfer of an unknown case", path="/v1/cases/C19990101-000001/transfers")

    st, doc = http.post(tpath, transfer, tok_dept)
    t.eq(st, 202, "a complete transfer is 202 Accepted (router decides what follows)")
    transfer_id = doc.get("transfer_id", "")
    t.ok(transfer_id.startswith("T"), "the answer carries the transfer id", doc)

    # emergency: needs the stop order and the moment the competent party was told
    st, doc = http.post("/v1/cases", with_(urgency="emergency", source="patrol", reporter=None), tok_dept)
    ecase = doc["case_id"]
    refused(transfer, 400, "missing_field", "stop_ordered_at", "emergency transfer without the stop order",
            path=f"/v1/cases/{ecase}/transfers")
    st, doc = http.post(f"/v1/cases/{ecase}/transfers", transfer, tok_dept)
    t.eq(doc["error"].get("fields"), ["stop_ordered_at", "competent_informed_at"],
         "an emergency transfer missing both times names both in one answer")
    st, doc = http.post(f"/v1/cases/{ecase}/transfers",
                        dict(transfer, stop_ordered_at=ago(2), competent_informed_at=ago(1.5)), tok_dept)
    t.eq(st, 202, "emergency transfer with stop order and notice is accepted")

    # steps on a transfer
    refused({"by": "wy-lt"}, 404, "not_found", "id", "receipt of an unknown transfer",
            tok=tok_town, path="/v1/transfers/T19990101-000009/receipt")
    st, doc = http.post(f"/v1/transfers/{transfer_id}/receipt", {"by": "wy-lt"}, tok_town)
    t.eq(st, 202, "the township signs for the transfer (202)")
    refused({"by": "wy-lt"}, 400, "missing_field", "reason", "return without a reason",
            tok=tok_town, path=f"/v1/transfers/{transfer_id}/return")
    st, doc = http.post(f"/v1/transfers/{transfer_id}/dispute", {"by": "wy-lt", "reason": "不属赋权目录"}, tok_town)
    dispute_id = doc.get("dispute_id", "")
    t.ok(st == 202 and dispute_id.startswith("D"), "a dispute is raised with its id", doc)
    refused({"decided_by": "wy-scjg", "competent_org": "wy-lt", "reasoning": "x"}, 403, "not_judicial_bureau",
            "decided_by", "a dispute decided by anyone but the judicial bureau", path=f"/v1/disputes/{dispute_id}/decision")
    st, doc = http.post(f"/v1/disputes/{dispute_id}/decision",
                        {"decided_by": "wy-sfj", "competent_org": "wy-lt", "reasoning": "属履坦镇赋权事项"}, tok_judicial)
    t.eq(st, 202, "the judicial bureau decides the dispute (202)")

    # assistance, decision, feedback, approvals
    st, doc = http.post(f"/v1/cases/{case_id}/assistance-requests",
                        {"requested_by": "wy-scjg", "to": "wy-zjj", "kind": "appraisal", "question": "建筑是否违章"}, tok_dept)
    aid = doc.get("assistance_id", "")
    t.ok(st == 201 and aid.startswith("A"), "an assistance request is 201 with its id", doc)
    refused({"by": "wy-lt", "answer": "x"}, 403, "not_addressee", "by", "an answer from an organisation not asked",
            tok=tok_town, path=f"/v1/assistance/{aid}/answer")
    st, doc = http.post(f"/v1/assistance/{aid}/answer", {"by": "wy-zjj", "answer": "属违章建筑"}, tok_dept)
    t.eq(st, 201, "the organisation asked answers (201)")
    st, doc = http.post(f"/v1/cases/{case_id}/decision", {"by": "wy-scjg", "decided_at": ago(1), "major": True,
                                                          "summary": "罚款", "fine_fen": 500000, "feedback_to": "wy-zjj"}, tok_dept)
    did = doc.get("decision_id", "")
    t.ok(st == 201 and did.startswith("P"), "a penalty decision is recorded (201)", doc)
    st, doc = http.post(f"/v1/cases/{case_id}/feedback", {"decision_id": did, "by": "wy-scjg", "to": "wy-zjj"}, tok_dept)
    t.eq(st, 201, "feedback of the decision to the department (201)")
    refused({"by": "wy-lt", "approved_at": ago(5), "subject": "x"}, 400, "not_a_department", "by",
            "an approval recorded by a township", tok=tok_town, path="/v1/approvals")
    st, doc = http.post("/v1/approvals", {"by": "wy-zjj", "approved_at": ago(30), "subject": "建设工程规划许可"}, tok_dept)
    t.ok(st == 201 and doc.get("approval_id", "").startswith("AP"), "an approval is recorded (201)", doc)

    st, view = http.get(f"/v1/cases/{case_id}", tok_town)
    st2, none = http.get("/v1/cases/C19990101-000001", tok_town)
    t.ok(st == st2 == 404 and view["error"]["code"] == none["error"]["code"] == "not_found",
         "a township not party to the case may not read it: the same 404 as a case that does not exist",
         (st, view, st2, none))
    st, view = http.get(f"/v1/cases/{case_id}", tok_dept)
    events = [e["event"] for e in view["timeline"]]
    t.ok(events[:2] == ["case_reported", "transfer_sent"] and "dispute_decided" in events and "feedback_given" in events,
         "the case timeline records every accepted command in order", events)

    # ---- idempotency ----
    before = log_head()
    st1, d1 = http.post("/v1/cases", case, tok_dept, headers={"Idempotency-Key": "report-42"})
    st2, d2 = http.post("/v1/cases", case, tok_dept, headers={"Idempotency-Key": "report-42"})
    t.ok(st1 == st2 == 201 and d1 == d2, "a retry with the same Idempotency-Key returns the first answer", (d1, d2))
    t.eq(log_head(), before + 1, "the retry created no second case")
    st, doc = http.post("/v1/cases", with_(description="别的"), tok_dept, headers={"Idempotency-Key": "report-42"})
    t.ok(st == 409 and doc["error"]["code"] == "idempotency_key_reused", "the same key with another body is 409", doc)

    # ---- one command's failure is its own: 200 reports beside poison commands ----
    from concurrent.futures import ThreadPoolExecutor
    victims = [http.post("/v1/cases", case, tok_dept)[1]["case_id"] for _ in range(20)]
    poison = {"by": "wy-scjg", "reason": "a" + "撤" * 100}   # its timeline summary is cut at 300 bytes

    def one(i):
        if i % 11 == 0:
            return ("poison",) + http.post(f"/v1/cases/{victims[(i // 11) % 20]}/cancellation", poison, tok_dept)
        return ("report",) + http.post("/v1/cases", with_(description=f"并发 {i}"), tok_dept)
    with ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(one, range(220)))
    reports = [a for a in answers if a[0] == "report"]
    poisons = [a for a in answers if a[0] == "poison"]
    t.ok(len(reports) == 200 and all(a[1] == 201 for a in reports),
         "200 concurrent reports beside 20 cancellations whose summary is cut inside a character: all 200 are 201",
         sorted({a[1] for a in reports}))
    st, view = http.get(f"/v1/cases/{victims[0]}", tok_dept)
    cut = [e["summary"] for e in view.get("timeline", []) if e["event"] == "case_cancelled"]
    t.ok(all(a[1] == 201 for a in poisons) and st == 200 and cut and cut[0].endswith("撤")
         and len(cut[0].encode()) <= 300,
         "and each cancellation is recorded, its summary cut before the character that did not fit",
         (sorted({a[1] for a in poisons}), st, cut))

    # A report is written in its group's own transaction (no child of its own):
    # one the handler refuses must leave nothing, and fail none beside it.
    before = log_head()

    def mixed(i):
        bad = i % 4 == 0
        body = with_(township_code="330723101001", description=f"坏 {i}") if bad else with_(description=f"好 {i}")
        return (bad,) + http.post("/v1/cases", body, tok_dept)
    with ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(mixed, range(200)))
    good = [a for a in answers if not a[0]]
    bad = [a for a in answers if a[0]]
    ids = [a[2].get("case_id") for a in good]
    listed = [http.get(f"/v1/cases/{c}", tok_dept)[0] for c in ids]
    t.ok(all(a[1] == 201 for a in good) and all(a[1] == 400 and a[2]["error"]["field"] == "township_code" for a in bad)
         and log_head() == before + len(good) and len(set(ids)) == len(good) and listed == [200] * len(good),
         "150 reports beside 50 refused ones, sent at once: every good one is 201 and kept, "
         "every bad one 400 naming township_code, and the log holds the good ones only",
         (sorted({a[1] for a in good}), sorted({a[1] for a in bad}), log_head() - before, len(good)))

    # ---- authentication ----
    st, doc = http.post("/v1/cases", case)
    t.ok(st == 401 and doc["error"]["field"] == "Authorization", "no token: 401", doc)
    st, doc = http.post("/v1/cases", case, "cbt_0000000000000000_notasecret")
    t.eq(st, 401, "unknown token: 401")
    st, doc = http.post("/v1/cases", case, tok_dept[:-2] + "xx")
    t.eq(st, 401, "a token with a wrong secret: 401")

    # ---- malformed input never crashes, never writes ----
    before = log_head()
    bad_bodies = [b'{"source": "patrol", "matter_', b'[1,2,3]', b'{"source": 12}',
                  b'{"fine": 999999999999999999999999999999}', b'{"description": "\xff\xfe"}',
                  b'{"a":1,"a":2}', b'', b'null', b'{"source":"patrol"}' + b' ' * 10]
    codes = [http.post("/v1/cases", token=tok_dept, raw=b)[0] for b in bad_bodies]
    t.ok(all(c == 400 for c in codes), "truncated, wrong-typed, huge-number, invalid-UTF-8 bodies: 400", codes)
    st, doc = http.post("/v1/cases", token=tok_dept, raw=b'{"description": "' + b"x" * 70000 + b'"}')
    t.eq(st, 413, "a body over max_body is 413")
    st, doc = http.post("/v1/cases", token=tok_dept, raw=b"{}", headers={"Content-Type": "text/plain"})
    t.eq(st, 415, "a body that is not JSON by Content-Type is 415")
    t.eq(http.get("/v1/nothing")[0], 404, "an unknown endpoint is 404")
    t.eq(http.get("/v1/approvals")[0], 405, "GET on a command endpoint is 405")
    t.eq(log_head(), before, "none of the malformed requests wrote anything")

    # ---- the ZeroMQ door ----
    zctx = zmq.Context()
    z = zctx.socket(zmq.DEALER)
    z.setsockopt(zmq.LINGER, 0)
    z.setsockopt(zmq.RCVTIMEO, 5000)
    z.connect(f"ipc://{w.p('intake.cmd')}")

    def zcmd(frame):
        z.send(frame)
        r = unpb(z.recv())
        err = unpb(r[7][0]) if 7 in r else {}
        return {"status": r.get(1, [0])[0], "id": r.get(3, [b""])[0].decode(), "case_id": r.get(4, [b""])[0].decode(),
                "seq": r.get(5, [0])[0], "request_id": r.get(2, [b""])[0].decode(),
                "code": err.get(1, [b""])[0].decode(), "field": err.get(2, [b""])[0].decode(),
                "fields": [f.decode() for f in err.get(4, [])]}

    summary = [(2, 1), (3, "330217001"), (5, "330723102000"), (8, int((time.time() - 3600) * 1000)),
               (9, [(1, "wy-scjg")]), (10, 1), (12, "巡查发现违法搭建")]
    report = lambda tok, key="", case=summary: pb([(1, tok), (2, key), (3, "req-1"), (10, [(1, case)])])
    r = zcmd(report(tok_dept))
    t.ok(r["status"] == 201 and r["case_id"].startswith("C") and r["request_id"] == "req-1",
         "ZeroMQ: a protobuf case report is 201 with the case id", r)
    r2 = zcmd(report(tok_dept, "zk-1"))
    r3 = zcmd(report(tok_dept, "zk-1"))
    t.ok(r2["status"] == 201 and r2["case_id"] == r3["case_id"] and r2["seq"] == r3["seq"],
         "ZeroMQ: an idempotent retry returns the first answer", (r2, r3))
    r = zcmd(report(tok_dept, case=[f for f in summary if f[0] != 10]))
    st, zview = http.get(f"/v1/cases/{r['case_id']}", tok_dept)
    t.eq(zview.get("urgency"), "normal", "ZeroMQ: a report without urgency is normal, as over HTTP")
    r = zcmd(pb([(1, tok_dept), (3, "req-2"), (10, [(1, [(3, "330217001")])])]))
    t.ok(r["status"] == 400 and r["code"] == "missing_field" and r["field"] == "source"
         and r["fields"] == ["source", "township_code", "discovered_at", "discovered_by", "description"],
         "ZeroMQ: a report missing fields is refused naming every one", r)
    r = zcmd(report("cbt_0000000000000000_nope"))
    t.eq(r["status"], 401, "ZeroMQ: an unknown token is 401")
    r = zcmd(b"\x0a\xff\xff\xff\xff\x0f garbage")
    t.ok(r["status"] == 400 and r["code"] == "invalid_body", "ZeroMQ: a malformed protobuf frame is 400", r)
    r = zcmd(report(tok_dept, case=[(2, 1), (3, "330217001"), (5, "33072310"), (8, int(time.time() * 1000)),
                                     (9, [(1, "wy-scjg")]), (10, 1), (12, "x")]))
    t.ok(r["status"] == 400 and r["field"] == "township_code", "ZeroMQ: a rule broken is 400 naming the field", r)

    # ---- one set of limits for both doors ----
    import struct

    def location(lat, lon):
        return pb([(1, "履坦街1号")]) + bytes([0x11]) + struct.pack("<d", lat) + bytes([0x19]) + struct.pack("<d", lon)

    att = [(1, "a.jpg"), (2, "https://files.example/a.jpg"), (3, b"\xab" * 32)]
    att_json = {"name": "a.jpg", "uri": "https://files.example/a.jpg", "sha256": "ab" * 32}

    def zreport(extra_case=(), rest=()):
        return pb([(1, tok_dept), (3, "req-lim"), (10, [(1, summary + list(extra_case))] + list(rest))])
    both = [
        ("a description over 8000 bytes", with_(description="x" * 8001), zreport([(12, "x" * 8001)]), "description"),
        ("a reporter name over 64 bytes", with_(reporter={"name": "a" * 65}), zreport(rest=[(2, [(1, "a" * 65)])]),
         "reporter.name"),
        ("65 attachments", with_(attachments=[att_json] * 65), zreport(rest=[(3, att)] * 65), "attachments"),
        ("a latitude of 91", with_(location={"address": "x", "latitude": 91, "longitude": 119.8}),
         zreport([(7, location(91, 119.8))]), "location.latitude"),
        ("an attachment uri over 2048 bytes", with_(attachments=[dict(att_json, uri="https://x/" + "a" * 2048)]),
         zreport(rest=[(3, [(1, "a"), (2, "https://x/" + "a" * 2048), (3, b"\xab" * 32)])]), "attachments[0].uri"),
    ]
    for name, body, frame, field in both:
        before = log_head()
        st, doc = http.post("/v1/cases", body, tok_dept)
        r = zcmd(frame)
        herr = doc.get("error", {}) if isinstance(doc, dict) else {}
        t.ok(st == 400 and r["status"] == 400 and herr.get("field") == field == r["field"]
             and herr.get("code") == r["code"] == "invalid_field" and log_head() == before,
             f"{name}: both doors answer 400 invalid_field on '{field}', nothing written",
             (st, herr, r))
    before = log_head()
    for name, frame, field in (
        ("a NaN latitude", zreport([(7, location(float("nan"), 119.8))]), "location.latitude"),
        ("an infinite longitude", zreport([(7, location(28.9, float("inf")))]), "location.longitude"),
        # (the frame itself is capped at max_body + 4 KiB, 68 KiB here, by libzmq)
        ("a 60 KB description", zreport([(12, "x" * 60_000)]), "description"),
        ("800 attachments", zreport(rest=[(3, att)] * 800), "attachments"),
        ("a description that is not UTF-8", zreport([(12, b"\xff\xfe bad")]), "description"),
        ("a 200-byte idempotency key", pb([(1, tok_dept), (2, "k" * 200), (10, [(1, summary)])]), "idempotency_key"),
    ):
        r = zcmd(frame)
        t.ok(r["status"] == 400 and r["code"] == "invalid_field" and r["field"] == field,
             f"ZeroMQ: {name} is 400 invalid_field on '{field}'", r)
    t.eq(log_head(), before, "ZeroMQ: none of them wrote anything")
    r = zcmd(zreport([(12, "x" * 100_000)]))  # over max_body + 4 KiB (68 KiB here), under four times it
    t.ok(r["status"] == 413 and r["code"] == "too_large",
         "ZeroMQ: a frame over max_body + 4 KiB is answered 413 too_large, like HTTP's 413", r)
    t.eq(log_head(), before, "ZeroMQ: the oversized frame wrote nothing")

    # ---- refusals hold no memory: 100k refused commands, RSS flat ----
    victim = zcmd(report(tok_dept))["case_id"]
    now_ms = int(time.time() * 1000)
    refused = [
        pb([(1, tok_dept), (4, victim), (24, [(2, [(1, "wy-zjj")]), (3, "不是发现单位")])]),     # 403: not the finder
        pb([(1, tok_dept), (4, victim), (25, [(2, 4), (3, [(1, "wy-scjg")]), (4, now_ms - 1000)])]),  # 403: not police
        pb([(1, tok_dept), (28, [(2, 1), (3, [(1, "wy-scjg")]), (4, "20x5")])]),              # 400: bad period
        report(tok_dept, case=[(2, 1), (3, "330217001"), (5, "33072310"), (8, now_ms), (9, [(1, "wy-scjg")]),
                               (10, 1), (12, "x")]),                                          # 400: township
        report("cbt_0000000000000000_nope"),                                                    # 401
    ]

    def refuse(n):
        codes = set()
        for start in range(0, n, 500):
            for i in range(start, min(n, start + 500)):
                z.send(refused[i % len(refused)])
            for i in range(start, min(n, start + 500)):
                codes.add(unpb(z.recv()).get(1, [0])[0])
        return codes

    def rss_kb():
        return int(next(ln.split()[1] for ln in open(f"/proc/{intake.pid}/status") if ln.startswith("VmRSS:")))
    head0 = log_head()
    refuse(10000)  # warm up: caches, allocator arenas
    rss0 = rss_kb()
    codes = refuse(100000)
    rss1 = rss_kb()
    print(f"# RSS of intake: {rss0 / 1024:.1f} MB before and {rss1 / 1024:.1f} MB after 100,000 refused commands")
    # Growth is what a refusal holding memory would show; under ASan the RSS
    # may also fall by a few MB as its quarantine of freed blocks turns over.
    t.ok(codes == {400, 401, 403} and rss1 - rss0 <= 5 * 1024 and log_head() == head0,
         "100,000 refused commands (not the finder, not police, a bad period, a bad township, no token) "
         "grow intake's RSS by no more than 5 MB and write nothing", (codes, rss0, rss1))

    # ---- durability: kill -9 right after an acknowledgement ----
    st, doc = http.post("/v1/cases", with_(description="持久化测试"), tok_dept)
    acked = doc["case_id"]
    head = log_head()
    w.kill(intake, signal.SIGKILL)
    intake = start_intake()
    st, view = http.get(f"/v1/cases/{acked}", tok_dept)
    t.ok(st == 200 and view["description"] == "持久化测试", "a case acknowledged just before kill -9 is there after restart", (st, view))
    t.eq(log_head(), head, "the log after restart has exactly what was acknowledged")
    p2 = w.start([INTAKE, "--config", conf], "intake2.log")
    rc = p2.wait(10)
    t.ok(rc != 0 and "held by another process" in open(w.p("intake2.log")).read(),
         "a second intake on the same data directory refuses to start", open(w.p("intake2.log")).read())

    # ---- clean stop ----
    rc = w.kill(intake, signal.SIGTERM)
    t.eq(rc, 0, "SIGTERM stops intake cleanly with exit status 0")
    z.close()
    zctx.term()

    # ---- limits: slow clients, the connection cap, a full store ----
    import socket
    lport = free_port()
    lconf = w.p("limits.conf")
    write_config(lconf, f"""[intake]
data_dir = {w.p('intake-limits')}
map_size = 1M
http_listen = 127.0.0.1:{lport}
zmq_bind = ipc://{w.p('limits.cmd')}
bus_bind = ipc://{w.p('limits.bus')}
pull = router ipc://{w.p('router.bus')}
max_connections = 4
""")
    import subprocess
    ltok = subprocess.run([INTAKE, "token", "create", "--config", lconf, "--org", "wy-scjg"],
                          capture_output=True, text=True, check=True).stdout.strip()
    lhttp = Http(lport, record=exchanges)
    limited = w.start([INTAKE, "--config", lconf], "limits.log")
    wait_for(lambda: "orgs_replicated" in open(w.p("limits.log")).read(), 10)
    slow = socket.create_connection(("127.0.0.1", lport))
    slow.sendall(b"POST /v1/cases HTTP/1.1\r\nHost: x\r\nContent-Le")   # and then nothing
    t0 = time.time()
    st, doc = lhttp.post("/v1/cases", with_(description="快"), ltok)
    early_case = doc.get("case_id") if isinstance(doc, dict) else None
    t.ok(st == 201 and time.time() - t0 < 1.0, "a client stuck mid-request does not hold up others", (st, time.time() - t0))
    # Count on intake's own gauge, read over one kept-alive connection (a probe
    # that closed would still be counted for a moment by a busy intake, and then
    # make room): once intake counts just the probe and `slow` (or the probe alone,
    # when `slow` met its request timeout), idle connections fill the cap.
    import http.client as hc
    probe = hc.HTTPConnection("127.0.0.1", lport, timeout=10)

    def open_conns():
        probe.request("GET", "/metrics")
        text = probe.getresponse().read().decode()
        return [float(x.split()[-1]) for x in text.splitlines()
                if x.startswith("casebus_intake_http_connections ")][0]
    counted = wait_for(lambda: (lambda n: n if n <= 2 else None)(open_conns()), 5) or 0
    idle = [socket.create_connection(("127.0.0.1", lport)) for _ in range(5 - int(counted))]
    time.sleep(0.2)
    try:
        refused_conn = lhttp.get("/healthz")[0] != 200
    except http_client_errors():
        refused_conn = True
    t.ok(refused_conn, "a connection beyond max_connections is closed at once")
    for c in idle:
        c.close()
    probe.close()
    t.ok(wait_for(lambda: lhttp.get("/healthz")[0] == 200, 5), "once connections close, new ones are served again")
    slow.close()
    # Fill the 1 MiB store: the answer turns to 503, nothing half-written, still serving.
    status = 201
    big = with_(description="填满" * 50)
    for i in range(5000):
        head = lhttp.get("/healthz")[1].get("log_head")
        status, doc = lhttp.post("/v1/cases", big, ltok)
        if status != 201:
            break
    t.ok(status == 503 and doc["error"]["code"] == "unavailable" and "map_size" in doc["error"]["message"],
         "a full store answers 503 naming map_size", (i, status, doc))
    t.eq(lhttp.get("/healthz")[1].get("log_head"), head, "the command refused for a full store wrote nothing")
    st2, _ = lhttp.post("/v1/cases", big, ltok)
    t.ok(st2 == 503 and lhttp.get("/healthz")[1].get("log_head") == head and limited.poll() is None,
         "the same command is refused again, nothing written, intake stays up", (st2, head))
    st, view = lhttp.get(f"/v1/cases/{early_case}", ltok)
    t.ok(st == 200 and view.get("description") == "快", "a full store still answers reads", (st, view))
    t.eq(w.kill(limited, signal.SIGTERM), 0, "a full intake still stops cleanly on SIGTERM")
    w.kill(feed, signal.SIGTERM)

    # ---- every exchange against the OpenAPI document (ajv) ----
    openapi_judge(t, served, exchanges, w.path)
except Exception as e:
    t.crashed(e)
finally:
    w.cleanup()
t.done()
