"""capture_seeds — turns the POST bodies the end-to-end tests sent into seed
corpora: tests/fuzz/seeds/fuzz_intake_json (kind byte, body) and
tests/fuzz/seeds/fuzz_intake_command (actor byte, 0xFF, kind byte, body). At
most PER_KIND distinct bodies per command kind, shortest first, so the seeds
stay small and every kind is there.
    CASEBUS_FUZZ_CAPTURE=/tmp/capture sh tests/run.sh build
    /usr/bin/python3 tests/fuzz/capture_seeds.py /tmp/capture"""
import hashlib
import json
import os
import sys

PER_KIND = 40
ACTOR = {"wy-scjg": 0, "wy-scjg-jcdd": 0, "wy-lt": 1, "wy-sfj": 2, "wy-gaj": 3, "wy-zhzf": 4, "wy-ldxz": 5,
         "wy-jcy": 6}
here = os.path.dirname(os.path.abspath(__file__))
by_kind = {}
for name in os.listdir(sys.argv[1]):
    data = open(os.path.join(sys.argv[1], name), "rb").read()
    by_kind.setdefault(data[0], set()).add(data)
for target in ("fuzz_intake_json", "fuzz_intake_command"):
    d = os.path.join(here, "seeds", target)
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):
        os.remove(os.path.join(d, f))
kept = 0
for kind, seeds in sorted(by_kind.items()):
    for data in sorted(seeds, key=len)[:PER_KIND]:
        try:
            body = json.loads(data[1:])
        except ValueError:
            body = {}
        who = next((body[k] for k in ("by", "sender", "discovered_by", "decided_by", "requested_by")
                    if isinstance(body, dict) and isinstance(body.get(k), str)), "")
        for target, seed in (("fuzz_intake_json", data),
                             ("fuzz_intake_command", bytes([ACTOR.get(who, 7), 0xFF]) + data)):
            with open(os.path.join(here, "seeds", target, hashlib.sha1(seed).hexdigest()[:16]), "wb") as f:
                f.write(seed)
        kept += 1
print(f"{kept} seeds from {sum(len(s) for s in by_kind.values())} distinct bodies of {len(by_kind)} command kinds")
