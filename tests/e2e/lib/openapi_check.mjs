// openapi_check.mjs DOC.json EXCHANGES.json — judges HTTP exchanges recorded
// by an end-to-end test against the OpenAPI document, with ajv (JSON Schema
// 2020-12, the dialect of OpenAPI 3.1) and ajv-formats.
//
// - Every response must be described: its path, method and status are in the
//   document and its body validates against the schema there. A path or
//   method the document lacks may only be answered 404 or 405 with the error
//   shape.
// - Every request intake accepted (2xx) must validate against its operation's
//   requestBody; a request intake refused is counted, and so is whether the
//   schema refuses it too.
// Prints a JSON summary; exits 1 when anything fails.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const Ajv2020 = require("ajv/dist/2020").default;
const addFormats = require("ajv-formats");

const [docPath, exPath] = process.argv.slice(2);
const doc = JSON.parse(readFileSync(docPath, "utf8"));
const exchanges = JSON.parse(readFileSync(exPath, "utf8"));

const ajv = new Ajv2020({ strict: false, allErrors: false, validateFormats: true });
addFormats(ajv);
ajv.addSchema(doc, "openapi.json");

const pointer = (...parts) =>
  "openapi.json#/" + parts.map((p) => String(p).replaceAll("~", "~0").replaceAll("/", "~1")).join("/");
const compiled = new Map();
function validator(ptr) {
  if (!compiled.has(ptr)) compiled.set(ptr, ajv.compile({ $ref: ptr }));
  return compiled.get(ptr);
}

const routes = Object.keys(doc.paths).map((template) => ({
  template,
  re: new RegExp("^" + template.replace(/\{[^}]+\}/g, "[^/]+") + "$"),
  literal: !template.includes("{"),
}));
function findPath(path) {
  const bare = path.split("?")[0];
  // a literal path wins over a template (/v1/cases before /v1/cases/{id})
  return (routes.find((r) => r.literal && r.re.test(bare)) || routes.find((r) => r.re.test(bare)))?.template;
}

const summary = {
  exchanges: exchanges.length,
  requests_validated: 0,
  accepted_requests_valid: 0,
  refused_requests: 0,
  refused_requests_the_schema_refuses_too: 0,
  responses_validated: 0,
  answered_outside_the_document: 0,
  operations_seen: [],
  failures: [],
};
const seen = new Set();
const fail = (ex, why) =>
  summary.failures.push(`${ex.method} ${ex.path} -> ${ex.status}: ${why}`.slice(0, 600));
const errs = (v) => ajv.errorsText(v.errors, { separator: "; " }).slice(0, 300);
const json = (text) => {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false };
  }
};

for (const ex of exchanges) {
  const template = findPath(ex.path);
  const op = template && doc.paths[template][ex.method.toLowerCase()];
  if (!op) {
    const body = json(ex.response);
    const v = validator(pointer("components", "schemas", "Error"));
    if (![404, 405].includes(ex.status)) fail(ex, "no such operation in the document");
    else if (!body.ok || !v(body.value)) fail(ex, "a 404/405 without the error shape");
    else summary.answered_outside_the_document++;
    continue;
  }
  seen.add(`${ex.method} ${template}`);
  const method = ex.method.toLowerCase();
  // the request
  if (op.requestBody && ex.request !== null) {
    const body = json(ex.request);
    const accepted = ex.status >= 200 && ex.status < 300;
    const v = validator(pointer("paths", template, method, "requestBody", "content", "application/json", "schema"));
    const valid = body.ok && v(body.value);
    summary.requests_validated++;
    if (accepted) {
      if (valid) summary.accepted_requests_valid++;
      else fail(ex, `intake accepted a request the document refuses: ${body.ok ? errs(v) : "not JSON"}`);
    } else {
      summary.refused_requests++;
      if (!valid) summary.refused_requests_the_schema_refuses_too++;
    }
  }
  // the response
  const answer = op.responses[String(ex.status)];
  if (!answer) {
    fail(ex, "this status is not among the operation's responses");
    continue;
  }
  const content = answer.content || {};
  const type = (ex.response_type || "").split(";")[0].trim();
  if (Object.keys(content).length === 0) {
    summary.responses_validated++;
    continue;
  }
  if (!content[type]) {
    fail(ex, `answered ${type || "(no type)"}; the document says ${Object.keys(content).join(", ")}`);
    continue;
  }
  if (type === "application/json") {
    const body = json(ex.response);
    const v = validator(pointer("paths", template, method, "responses", String(ex.status), "content", type, "schema"));
    if (!body.ok) fail(ex, "the response is not JSON");
    else if (!v(body.value)) fail(ex, `the response does not match the document: ${errs(v)}`);
    else summary.responses_validated++;
  } else {
    summary.responses_validated++;
  }
}
summary.operations_seen = [...seen].sort();
console.log(JSON.stringify(summary));
process.exit(summary.failures.length ? 1 : 0);
