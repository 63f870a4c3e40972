// Eclipse Tahu's sparkplug-payload (JS), an implementation independent of vplc's, as a codec
// for the tests: reads one JSON request per line on stdin, answers one JSON line each.
//   {"op": "decode", "b64": "..."}         -> {"ok": true, "payload": {...}} (Longs as strings)
//   {"op": "encode", "payload": {...}}     -> {"ok": true, "b64": "..."}
// A payload it cannot decode answers {"ok": false, "error": "..."}.
"use strict";
const readline = require("readline");
const Long = require("long");
const sparkplug = require("sparkplug-payload").get("spBv1.0");

function plain(value) {
  if (Long.isLong(value)) return value.toString();
  if (value instanceof Uint8Array) return { bytes: Buffer.from(value).toString("base64") };
  if (Array.isArray(value)) return value.map(plain);
  if (value !== null && typeof value === "object") {
    const out = {};
    for (const [k, v] of Object.entries(value)) out[k] = plain(v);
    return out;
  }
  return value;
}

function handle(req) {
  if (req.op === "decode") {
    return { ok: true, payload: plain(sparkplug.decodePayload(Buffer.from(req.b64, "base64"))) };
  }
  if (req.op === "encode") {
    const payload = req.payload;
    if (payload.timestamp !== undefined) payload.timestamp = Long.fromString(String(payload.timestamp), true);
    for (const m of payload.metrics || []) {
      if (m.timestamp !== undefined) m.timestamp = Long.fromString(String(m.timestamp), true);
      if (m.alias !== undefined) m.alias = Long.fromString(String(m.alias), true);
    }
    return { ok: true, b64: Buffer.from(sparkplug.encodePayload(payload)).toString("base64") };
  }
  return { ok: false, error: `unknown op ${req.op}` };
}

const rl = readline.createInterface({ input: process.stdin });
rl.on("line", (line) => {
  let answer;
  try {
    answer = handle(JSON.parse(line));
  } catch (err) {
    answer = { ok: false, error: String(err && err.message ? err.message : err) };
  }
  process.stdout.write(JSON.stringify(answer) + "\n");
});
