// Verifies deliveries with the standardwebhooks npm package (the Standard
// Webhooks reference implementation), which nobody here wrote. Reads JSON on
// stdin: [{"secret": "whsec_…", "headers": {…}, "body": "…"}]; prints
// {"verified": N, "failed": [{"index", "error"}]}.
'use strict';
const { Webhook } = require('standardwebhooks');

let input = '';
process.stdin.on('data', (c) => { input += c; });
process.stdin.on('end', () => {
  const items = JSON.parse(input);
  const failed = [];
  let verified = 0;
  items.forEach((it, index) => {
    const headers = {};
    for (const [k, v] of Object.entries(it.headers)) headers[k.toLowerCase()] = v;
    try {
      new Webhook(it.secret).verify(it.body, headers);
      verified++;
    } catch (e) {
      failed.push({ index, error: String(e && e.message ? e.message : e) });
    }
  });
  process.stdout.write(JSON.stringify({ verified, failed }) + '\n');
});
