// Parses deliveries with the cloudevents npm SDK (HTTP.toEvent, structured and
// batched mode), which nobody here wrote, validates each event against the
// CloudEvents 1.0 schema, and checks its attributes against its data (casebus's
// event document) and the request's headers. Reads JSON on stdin:
// {"type_prefix": "cn.gov.330723.casebus.v1", "division_code": "330723",
//  "requests": [{"headers": {…}, "body": "…"}]}
// and prints {"requests": N, "events": M, "batched": B, "failed": [{index, error}]}.
'use strict';
const { HTTP } = require('cloudevents');

function check(ev, req, want) {
  ev.validate(); // throws on anything the specification's schema refuses
  const d = ev.data;
  const h = {};
  for (const [k, v] of Object.entries(req.headers)) h[k.toLowerCase()] = v;
  const expect = [
    ['specversion', ev.specversion, '1.0'],
    ['id', ev.id, d.event_id],
    ['type', ev.type, `${want.type_prefix}.${d.type}`],
    ['source', ev.source, `/casebus/${want.division_code}/${d.producer}`],
    ['subject', ev.subject, d.case_id ? d.case_id : undefined],
    ['time', new Date(ev.time).getTime(), new Date(d.recorded_at).getTime()],
    ['datacontenttype', ev.datacontenttype, 'application/json'],
    ['producer', ev.producer, d.producer],
    ['subscription', ev.subscription, h['webhook-subscription']],
    ['addressee', ev.addressee, h['webhook-addressee']],
  ];
  if (d.type !== 'ping') {
    expect.push(['seq', ev.seq, d.seq], ['hash', ev.hash, d.hash]);
  }
  for (const [name, got, wanted] of expect) {
    if (got !== wanted) throw new Error(`${name}: ${JSON.stringify(got)} != ${JSON.stringify(wanted)}`);
  }
}

let input = '';
process.stdin.on('data', (c) => { input += c; });
process.stdin.on('end', () => {
  const want = JSON.parse(input);
  const failed = [];
  let events = 0;
  let batched = 0;
  want.requests.forEach((req, index) => {
    try {
      const got = HTTP.toEvent({ headers: req.headers, body: req.body });
      const list = Array.isArray(got) ? got : [got];
      if (Array.isArray(got)) batched++;
      list.forEach((ev) => check(ev, req, want));
      events += list.length;
    } catch (e) {
      failed.push({ index, error: String(e && e.message ? e.message : e) });
    }
  });
  process.stdout.write(JSON.stringify({ requests: want.requests.length, events, batched, failed }) + '\n');
});
