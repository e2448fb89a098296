"""router end to end: starts the real intake and router daemons in a temporary
directory, imports the sample county through `casebus org import` and
`casebus catalog import`, and follows cases through intake's HTTP API (the
case view intake keeps from router's events): every routing rule, the
transfer transitions allowed and refused, dispute -> decision -> re-route, a
catalogue change between two discovery times, and kill -9 of router."""
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from cbtest import System, Tap, openapi_document, openapi_judge, wait_for, TOP  # noqa: E402

t = Tap()
exchanges = []  # judged against the OpenAPI document at the end
system = System("router", daemons=("intake", "router"), record=exchanges)
w, http, cli, token = system.w, system.http, system.cli, system.offline_token
ORGS, CATALOG = os.path.join(TOP, "deploy/sample/orgs.csv"), os.path.join(TOP, "deploy/sample/catalog.csv")


def status():
    import json
    return json.loads(cli("status", "--json").stdout)["router"]


def days_ago(days, fmt="%Y-%m-%dT%H:%M:%S+08:00"):
    """An instant (China time) some days before now: the test runs on any date."""
    return time.strftime(fmt, time.gmtime(time.time() - days * 86400 + 8 * 3600))


def report(tok, matter, township, discovered=None, by="wy-scjg", **extra):
    body = {"source": "patrol", "matter_code": matter, "township_code": township,
            "discovered_at": discovered or days_ago(12), "discovered_by": by, "description": "e2e"}
    body.update(extra)
    st, doc = http.post("/v1/cases", body, tok)
    assert st == 201, (st, doc)
    return doc["case_id"]


def view(tok, case_id, pred, timeout=10):
    return system.view(tok, case_id, pred, timeout)


def events(v):
    return [e["event"] for e in v.get("timeline", [])]


def transfer(tok, case_id, sender="wy-scjg"):
    st, doc = http.post(f"/v1/cases/{case_id}/transfers",
                        {"sender": sender, "reason": "不属本部门管辖", "approved_by": "王局长",
                         "approved_at": days_ago(11),
                         "materials": [{"kind": "transfer_letter", "title": "移送函"},
                                       {"kind": "case_source", "title": "现场检查记录"},
                                       {"kind": "party_info", "text": "当事人情况"}]}, tok)
    assert st == 202, (st, doc)
    return doc["transfer_id"]


def step(tok, path, body):
    st, doc = http.post(path, body, tok)
    assert st == 202, (path, st, doc)
    return doc


try:
    tok = token("wy-scjg", "wy-zhzf", "wy-gaj")
    lt, dt, sfj = token("wy-lt"), token("wy-dt"), token("wy-sfj")
    router = system.start("router")["router"]
    intake = system.start("intake")["intake"]
    wait_for(lambda: http.get("/healthz")[0] == 200, 10)

    # ---- imports through the CLI: all or nothing ----
    r = cli("catalog", "import", CATALOG)
    t.ok(r.returncode == 1 and "import the organisations first" in r.stderr,
         "a catalogue before any registry is refused", r.stderr)
    bad = w.p("bad-orgs.csv")
    with open(ORGS) as f:
        lines = f.read().splitlines()
    with open(bad, "w") as f:
        f.write("\n".join(lines[:5] + ["wy-x,TOWNSHIP,某镇,,33072310,"] + lines[5:]) + "\n")
    r = cli("org", "import", bad)
    t.ok(r.returncode == 1 and "line 6, column 5 (division_code)" in r.stderr and "nothing changed" in r.stderr,
         "a registry with a bad row is refused naming line and column", r.stderr)
    t.eq(status()["orgs"], 0, "the refused registry changed nothing")
    r = cli("org", "import", ORGS)
    t.ok(r.returncode == 0 and "29 organisations" in r.stdout, "the sample registry imports (version 1)", r.stdout + r.stderr)
    badcat = w.p("bad-catalog.csv")
    with open(CATALOG) as f:
        text = f.read()
    with open(badcat, "w") as f:
        f.write(text.replace("DEPARTMENT,wy-scjg,", "DEPARTMENT,wy-nobody,", 1))
    r = cli("catalog", "import", badcat)
    t.ok(r.returncode == 1 and "(department_id): 'wy-nobody' is not a registered county department" in r.stderr
         and "line 36" in r.stderr, "a catalogue naming an unknown department is refused with its line", r.stderr)
    t.eq(status()["catalog_version"], 0, "the refused catalogue changed nothing")
    with open(badcat, "w") as f:
        f.write(text.replace("330217001,对占道经营行为的行政处罚,", "330217001,对占道经营行为的行政处罚,依据第三条,", 1))
    r = cli("catalog", "import", badcat)
    t.ok(r.returncode == 1 and "line 2: 9 fields, but the header has 8" in r.stderr and "nothing changed" in r.stderr,
         "a catalogue row with an extra field (an unquoted comma) is refused with its line", r.stderr)
    t.eq(status()["catalog_version"], 0, "the refused catalogue changed nothing")
    r = cli("catalog", "import", CATALOG, "--effective-from", "2024-01-01")
    t.ok(r.returncode == 0 and "40 matters" in r.stdout, "the sample catalogue imports (version 1)", r.stdout + r.stderr)
    v2 = w.p("catalog-v2.csv")
    with open(v2, "w") as f:
        f.write(text.replace("330219003,对餐饮服务业油烟超标排放的行政处罚,生态环境,ENFORCEMENT_BUREAU",
                             "330219003,对餐饮服务业油烟超标排放的行政处罚,生态环境,TOWNSHIP_BASIC"))
    v2_from = days_ago(180, "%Y-%m-%d")
    r = cli("catalog", "import", v2, "--effective-from", v2_from)
    t.ok(r.returncode == 0 and "version 2" in r.stdout, f"a second catalogue version in force from {v2_from}", r.stdout)
    wait_for(lambda: "orgs_replicated" in open(w.p("intake.log")).read(), 10)

    # ---- the five rules ----
    def routed(case_id, tk=tok):
        return view(tk, case_id, lambda v: v.get("competent") is not None)

    c_town = report(tok, "330217001", "330723101000")
    v = routed(c_town)
    t.ok(v["competent"]["org_id"] == "wy-lt" and v["jurisdiction_rule"] == "township"
         and v["transfer_required"]["to"]["org_id"] == "wy-lt",
         "a basic matter goes to its township, and a transfer is required of the finder", v)
    c_crime = report(tok, "330217001", "330723101000", suspected_crime=True)
    v = routed(c_crime)
    t.ok(v["competent"]["org_id"] == "wy-gaj" and v["jurisdiction_rule"] == "suspected_crime",
         "a suspected crime goes to public security", v)
    c_unknown = report(tok, "999000111", "330723101000")
    v = view(tok, c_unknown, lambda v: v.get("state") == "manual_dispatch")
    t.ok(v.get("holder", {}).get("org_id") == "wy-zhzf" and "routing_failed" in events(v),
         "an unknown matter goes to the command platform for manual dispatch, with an alert", v)
    c_opt = report(tok, "330218001", "330723103000")
    v = routed(c_opt)
    t.ok(v["competent"]["org_id"] == "wy-sw" and v["jurisdiction_rule"] == "department",
         "an optional matter the township did not accept stays with its department", v)
    c_old = report(tok, "330219003", "330723101000", discovered=days_ago(192))
    c_new = report(tok, "330219003", "330723101000", discovered=days_ago(170))
    v_old, v_new = routed(c_old), routed(c_new)
    t.ok(v_old["competent"]["org_id"] == "wy-zhzf" and v_new["competent"]["org_id"] == "wy-lt",
         "a catalogue change between two discovery times routes the two cases differently",
         (v_old.get("competent"), v_new.get("competent")))

    c_back = report(tok, "330217001", "330723102000", by="wy-gaj", source="police_referral")
    v = routed(c_back)
    t.ok(v["competent"]["org_id"] == "wy-tx" and v["jurisdiction_rule"] == "township",
         "a case public security sends back for administrative handling is routed by the catalogue", v)

    # ---- a transfer, step by step ----
    tid = transfer(tok, c_town)
    v = view(tok, c_town, lambda v: tid in v["transfers"])
    t.ok(v["transfers"][tid]["state"] == "sent" and v["transfers"][tid]["receiver"] == "wy-lt",
         "the transfer is routed to the competent township", v.get("transfers"))
    st, doc = http.post(f"/v1/transfers/{tid}/receipt", {"by": "wy-dt"}, dt)
    t.ok(st == 403 and doc["error"]["code"] == "not_receiver" and "wy-dt" in doc["error"]["message"],
         "signing for by an organisation that is not the receiver is refused at the door (403 not_receiver)", doc)
    st, doc = http.post(f"/v1/cases/{c_town}/transfers", {
        "sender": "wy-dt", "reason": "不是我的", "approved_by": "乡长", "approved_at": days_ago(0.01),
        "materials": [{"kind": "transfer_letter", "title": "移送函"}]}, dt)
    t.ok(st == 403 and doc["error"]["code"] == "not_holder",
         "a township that does not hold the case may not transfer it (403 not_holder)", doc)
    st, doc = http.post(f"/v1/cases/{c_town}/decision", {"by": "wy-dt", "decided_at": days_ago(0.01),
                                                         "summary": "罚款", "fine_fen": 100000000}, dt)
    t.ok(st == 403 and doc["error"]["code"] == "not_handling",
         "nor record a decision on it (403 not_handling)", doc)
    st, doc = http.get(f"/v1/cases/{c_town}", dt)
    t.ok(st == 404, "nor read it: 404, as for a case that does not exist", (st, doc))
    step(lt, f"/v1/transfers/{tid}/receipt", {"by": "wy-lt"})
    v = view(tok, c_town, lambda v: v["transfers"][tid]["state"] == "received")
    t.eq(v["transfers"][tid]["state"], "received", "the receiver signs for it")
    step(lt, f"/v1/transfers/{tid}/receipt", {"by": "wy-lt"})
    v = view(tok, c_town, lambda v: events(v).count("transfer_rejected") == 1)
    t.eq(events(v).count("transfer_rejected"), 1, "signing for twice is refused (by router: the state)")
    step(lt, f"/v1/transfers/{tid}/acceptance", {"by": "wy-lt"})
    v = view(tok, c_town, lambda v: v["transfers"][tid]["state"] == "accepted")
    t.ok(v["transfers"][tid]["state"] == "accepted" and v["holder"]["org_id"] == "wy-lt",
         "acceptance: the township holds the case", v.get("holder"))
    step(lt, f"/v1/transfers/{tid}/return", {"by": "wy-lt", "reason": "晚了"})
    v = view(tok, c_town, lambda v: events(v).count("transfer_rejected") == 2)
    t.eq(v["transfers"][tid]["state"], "accepted", "returning an accepted transfer is refused; it stays accepted")

    # ---- return, dispute, judicial decision, re-route ----
    c_disp = report(tok, "330217002", "330723101000")
    routed(c_disp)
    tid2 = transfer(tok, c_disp)
    view(tok, c_disp, lambda v: tid2 in v["transfers"])
    step(lt, f"/v1/transfers/{tid2}/return", {"by": "wy-lt", "reason": "地点在大田乡"})
    v = view(tok, c_disp, lambda v: v["transfers"][tid2]["state"] == "returned")
    t.ok(v["transfers"][tid2]["state"] == "returned" and v["holder"]["org_id"] == "wy-scjg",
         "a returned transfer is back with the sender", v.get("holder"))
    d = step(tok, f"/v1/transfers/{tid2}/dispute", {"by": "wy-scjg", "reason": "地点确在履坦镇"})
    v = view(tok, c_disp, lambda v: "dispute_escalated" in events(v))
    t.eq(v["transfers"][tid2]["state"], "disputed", "the sender disputes the return; escalated to the judicial bureau")
    step(sfj, f"/v1/disputes/{d['dispute_id']}/decision",
         {"decided_by": "wy-sfj", "competent_org": "wy-dt", "reasoning": "经核实地点在大田乡"})
    v = view(tok, c_disp, lambda v: v["transfers"][tid2]["receiver"] == "wy-dt")
    t.ok(v["transfers"][tid2]["state"] == "sent" and v["transfers"][tid2]["receiver"] == "wy-dt",
         "the decision re-routes the transfer to the decided organisation", v.get("transfers"))
    step(dt, f"/v1/transfers/{tid2}/acceptance", {"by": "wy-dt"})
    v = view(tok, c_disp, lambda v: v["transfers"][tid2]["state"] == "accepted")
    t.eq(v.get("holder", {}).get("org_id"), "wy-dt", "the decided organisation accepts and holds the case")

    # ---- the finder is competent: nothing to transfer ----
    c_own = report(lt, "330217001", "330723101000", by="wy-lt")
    v = routed(c_own, lt)
    t.ok(v["competent"]["org_id"] == "wy-lt" and "transfer_required" not in v,
         "a case found by the competent township needs no transfer", v)
    st, doc = http.post(f"/v1/cases/{c_own}/transfers",
                        {"sender": "wy-lt", "reason": "x", "approved_by": "李", "approved_at": days_ago(11),
                         "materials": [{"kind": "transfer_letter", "title": "函"}, {"kind": "case_source", "title": "记录"},
                                       {"kind": "party_info", "text": "x"}]}, lt)
    v = view(lt, c_own, lambda v: "transfer_rejected" in events(v))
    t.ok(any("own jurisdiction" in e["summary"] for e in v["timeline"]),
         "router refuses a transfer by the competent organisation itself", v.get("timeline"))

    # ---- kill -9 router mid-stream: nothing lost, nothing twice ----
    w.kill(router, signal.SIGKILL)
    more = [report(tok, "330217004", "330723102000") for _ in range(5)]
    router = system.start("router")["router"]
    vs = [routed(c) for c in more]
    t.ok(all(x.get("competent", {}).get("org_id") == "wy-tx" for x in vs),
         "cases reported while router was down are routed once it is back", [x.get("competent") for x in vs])
    v = view(tok, c_town, lambda v: True)
    t.eq(events(v).count("jurisdiction_resolved"), 1, "no event was applied twice across the restart")
    t.eq(status()["catalog_version"], 2, "the imports survived the kill (catalogue version 2)")

    r = cli("verify")
    t.ok(r.returncode == 0 and "intake    ok" in r.stdout and "router    ok" in r.stdout,
         "casebus verify finds both logs' hash chains intact while the daemons run", r.stdout + r.stderr)

    t.eq(w.kill(router, signal.SIGTERM), 0, "router stops cleanly on SIGTERM")
    # Tamper with router's record 5 on disk (as someone with the files could), then verify.
    dump = subprocess.run(["mdb_dump", "-s", "log", w.p("router")], capture_output=True, text=True, check=True).stdout
    lines = dump.split("\n")
    key5 = " " + "00" * 7 + "05"
    i = lines.index(key5) + 1                       # the value line of seq 5
    val = lines[i]
    lines[i] = val[:-2] + ("00" if val[-2:] != "00" else "01")   # flip the record's last byte
    subprocess.run(["mdb_load", "-s", "log", w.p("router")], input="\n".join(lines), text=True, check=True,
                   capture_output=True)
    r = cli("verify")
    t.ok(r.returncode == 1 and "router    BROKEN at record 5" in r.stdout and "intake    ok" in r.stdout,
         "a record altered on disk is caught by casebus verify at its sequence", r.stdout + r.stderr)
    openapi_judge(t, openapi_document(), exchanges, w.path)
    t.eq(w.kill(intake, signal.SIGTERM), 0, "intake stops cleanly on SIGTERM")
except Exception as e:
    t.crashed(e)
finally:
    system.cleanup()
t.done()
