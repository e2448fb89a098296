"""The sample county, walked through the whole system as `make run` starts it
(deploy/run.sh in a temporary VAR_DIR, the sample token, the CLI), with the
organisations' platforms subscribed to a loopback webhook receiver:
  1. a citizen report that belongs to a township;
  2. an emergency found by a department that belongs to the enforcement bureau
     (24-hour limit);
  3. a suspected crime (public security, with a copy to the procuratorate);
  4. a return, a dispute and the judicial bureau's decision;
  5. a transfer sent late (red, 督办, met late).
Each step is checked on `casebus tail --json --from beginning` and at the receiver."""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from cbtest import Http, Tap, WebhookReceiver, binary, free_port, wait_for, TOP  # noqa: E402

hook = WebhookReceiver()

t = Tap()
var = tempfile.mkdtemp(prefix="casebus-walk-")
port = free_port()
env = dict(os.environ, VAR_DIR=var, HTTP_PORT=str(port), ALLOW_PRIVATE_WEBHOOKS="yes")  # the receiver is on loopback
BUILD = os.environ.get("BUILD", "build")
sup = subprocess.Popen(["bash", "deploy/run.sh", BUILD], cwd=TOP, env=env, stdout=open(os.path.join(var, "run.out"), "w"),
                       stderr=subprocess.STDOUT, start_new_session=True)
CLI = binary("bin/casebus")
conf = os.path.join(var, "casebus.conf")
http = Http(port)


def cli(*args):
    return subprocess.run([CLI, "--config", conf, *args], capture_output=True, text=True, cwd=TOP)


def tail(*args):
    r = cli("tail", "--json", "--from", "beginning", "--exit-at-end", *args)
    return [json.loads(x)["data"] for x in r.stdout.splitlines()]


def at_receiver(org, typ, case_id):
    return [b for b in hook.bodies(f"/{org}") if b["type"] == typ and b["case_id"] == case_id]


def iso(ts):
    return time.strftime("%Y-%m-%dT%H:%M:%S+08:00", time.gmtime(ts + 8 * 3600))


def report(body):
    st, doc = http.post("/v1/cases", body, tok)
    assert st == 201, (st, doc)
    return doc["case_id"]


def send(case_id, sender, **extra):
    body = {"sender": sender, "reason": "不属本单位管辖", "approved_by": "负责人", "approved_at": iso(int(time.time()) - 60),
            "materials": [{"kind": "transfer_letter", "title": "移送函"}, {"kind": "case_source", "title": "现场检查记录"},
                          {"kind": "party_info", "text": "当事人情况"}]}
    body.update(extra)
    st, doc = http.post(f"/v1/cases/{case_id}/transfers", body, tok)
    assert st == 202, (st, doc)
    return doc["transfer_id"]


def events_of(case_id, typ):
    return [e for e in tail("--case", case_id) if e["type"] == typ]


try:
    ok = wait_for(lambda: "Ctrl-C stops everything" in open(os.path.join(var, "run.out")).read(), 30)
    t.ok(ok, "the system starts as make run starts it, with its banner")
    tok = open(os.path.join(var, "token")).read().strip()
    wait_for(lambda: http.get("/healthz")[0] == 200, 10)
    wait_for(lambda: "orgs_replicated" in open(os.path.join(var, "intake.log")).read(), 10)
    hook.subscribe(cli, ("wy-lt", "wy-zhzf", "wy-gaj", "wy-jcy", "wy-sthj", "wy-dt", "wy-sfj", "wy-ldxz", "wy-scjg"),
                   "walk-secret-0123456789")
    now = int(time.time())

    # 1. a citizen report (to the command platform) that belongs to a township
    c1 = report({"source": "citizen_report", "reporter": {"name": "张三", "phone": "13800000000"},
                 "matter_code": "330217001", "township_code": "330723101000", "discovered_at": iso(now - 600),
                 "discovered_by": "wy-zhzf", "description": "群众举报：沿街占道经营"})
    t1 = send(c1, "wy-zhzf")
    ok = wait_for(lambda: at_receiver("wy-lt", "transfer_routed", c1), 15)
    evs = tail("--case", c1)
    jr = [e["event"] for e in evs if e["type"] == "jurisdiction_resolved"]
    t.ok(ok and jr and jr[0]["competent"]["org_id"] == "wy-lt" and jr[0]["rule"] == "township",
         "1. a citizen report of a basic matter goes to its township; the township's platform receives the transfer",
         [e["type"] for e in evs])
    rep = [e["event"]["reporter"] for e in evs if e["type"] == "case_reported"]
    t.ok(rep and rep[0]["name"] == "***" and rep[0]["phone"] == "***", "the reporter's personal data is masked on the tail", rep)

    # 2. an emergency found by a department that belongs to the enforcement bureau
    c2 = report({"source": "patrol", "matter_code": "330219003", "township_code": "330723101000",
                 "discovered_at": iso(now - 3600), "discovered_by": "wy-sthj", "urgency": "emergency",
                 "description": "餐饮油烟超标，责令停止"})
    ok = wait_for(lambda: at_receiver("wy-sthj", "obligation_opened", c2), 15)
    ob = ok[0]["event"]["obligation"] if ok else {}
    t.ok(ob.get("rule_id") == "transfer_emergency" and ob.get("unit") == "hours" and ob.get("length") == 24
         and ob.get("due_at_ms") == (now - 3600) * 1000 + 24 * 3600 * 1000,
         "2. an emergency found by a department: 24 hours from discovery, on the finder's platform", ob)
    send(c2, "wy-sthj", stop_ordered_at=iso(now - 3500), competent_informed_at=iso(now - 3400))
    ok = wait_for(lambda: at_receiver("wy-zhzf", "transfer_routed", c2), 15)
    met = wait_for(lambda: [e for e in events_of(c2, "obligation_met")], 10) or []
    t.ok(ok and met and met[0]["event"]["on_time"], "the enforcement bureau receives it; the 24-hour limit is met on time")

    # 3. a suspected crime: public security, with a copy to the procuratorate
    c3 = report({"source": "patrol", "matter_code": "330217001", "township_code": "330723102000",
                 "discovered_at": iso(now - 1800), "discovered_by": "wy-scjg", "suspected_crime": True,
                 "description": "涉嫌非法经营，数额较大"})
    send(c3, "wy-scjg")
    ok = wait_for(lambda: at_receiver("wy-gaj", "transfer_routed", c3) and at_receiver("wy-jcy", "transfer_routed", c3), 15)
    routed = ok[0]["event"] if ok else {}
    t.ok(ok and routed["receiver"]["org_id"] == "wy-gaj" and [c["org_id"] for c in routed["copies"]] == ["wy-jcy"],
         "3. a suspected crime goes to public security with a copy to the procuratorate; both platforms receive it", routed)

    # 4. a return, a dispute, the judicial bureau's decision
    c4 = report({"source": "patrol", "matter_code": "330217002", "township_code": "330723101000",
                 "discovered_at": iso(now - 900), "discovered_by": "wy-scjg", "description": "乱堆物料"})
    t4 = send(c4, "wy-scjg")
    wait_for(lambda: at_receiver("wy-lt", "transfer_routed", c4), 15)
    st, _ = http.post(f"/v1/transfers/{t4}/return", {"by": "wy-lt", "reason": "地点在大田乡"}, tok)
    wait_for(lambda: [e for e in events_of(c4, "transfer_state_changed") if e["event"]["to_state"] == "returned"], 10)
    st, d = http.post(f"/v1/transfers/{t4}/dispute", {"by": "wy-scjg", "reason": "地点确在履坦镇"}, tok)
    ok = wait_for(lambda: at_receiver("wy-sfj", "dispute_escalated", c4), 15)
    t.ok(ok, "4. a return and a dispute: the judicial bureau's platform receives the dispute")
    paused = wait_for(lambda: [e for e in events_of(c4, "obligation_changed") if e["event"]["change"] == "paused"], 10)
    t.ok(paused, "the finder's clock is paused while the dispute waits")
    st, _ = http.post(f"/v1/disputes/{d['dispute_id']}/decision",
                      {"decided_by": "wy-sfj", "competent_org": "wy-dt", "reasoning": "经核实在大田乡"}, tok)
    ok = wait_for(lambda: at_receiver("wy-dt", "transfer_routed", c4), 15)
    t.ok(ok and ok[0]["event"]["route_count"] == 2,
         "the decision re-routes the transfer; the decided township's platform receives it", ok)

    # 5. a transfer sent late: red, 督办, met late
    c5 = report({"source": "patrol", "matter_code": "330217003", "township_code": "330723201000",
                 "discovered_at": iso(now - 10 * 86400), "discovered_by": "wy-scjg", "description": "擅自设置户外广告"})
    red = wait_for(lambda: at_receiver("wy-scjg", "deadline_breached", c5), 15)
    esc = wait_for(lambda: at_receiver("wy-ldxz", "escalated", c5), 15)
    t.ok(red and esc and red[0]["event"]["alert"]["late"],
         "5. a case found 10 days ago: red on the finder's platform, 督办 on the leading-group office's", (red, esc))
    send(c5, "wy-scjg")
    met = wait_for(lambda: events_of(c5, "obligation_met"), 15) or []
    t.ok(met and not met[0]["event"]["on_time"] and met[0]["event"]["late_by_ms"] > 86400 * 1000,
         "the transfer sent late meets its limit late, by how much", met)

    # the operator's views
    r = cli("case", c4)
    t.ok(r.returncode == 0 and "transfer   " in r.stdout and "wy-dt" in r.stdout, "casebus case shows the disputed case end to end", r.stdout[-600:])
    st = json.loads(cli("status", "--json").stdout)
    t.ok(all(st[d].get("daemon") == d for d in ("intake", "router", "deadline", "notify")) and st["notify"]["dead_letters"] == 0,
         "casebus status: every daemon up, no dead letters", st)
    r = cli("verify")
    t.ok(r.returncode == 0 and r.stdout.count(" ok: ") == 4, "casebus verify: all four logs intact", r.stdout)
    hook.check_cloudevents(t, "the walk")
except Exception as e:
    t.crashed(e)
finally:
    try:
        os.killpg(sup.pid, signal.SIGTERM)
        sup.wait(30)
    except Exception:
        pass
    hook.srv.shutdown()
    if not os.environ.get("KEEP_TMP"):
        import shutil
        shutil.rmtree(var, ignore_errors=True)
t.done()
