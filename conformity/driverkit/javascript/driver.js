#!/usr/bin/env node
// usine driver (protocol usine.driver/1): JSON-RPC 2.0, one object a line on stdin (requests) and stdout (answers).
// Written by `usine driver init`. You should not need to change this file: implement your actions in actions.js.
// Never write anything else on stdout (no console.log!): the harness reads every stdout line as an answer.
// Log with console.error (stderr): its last lines are kept as evidence when something goes wrong.
// With `reuse = true` in vendor.toml one process serves scenario after scenario: between two, the harness sends
// `reset` and this file calls your `actions.reset()`, which must forget everything of the session that ended.
"use strict";
const readline = require("node:readline");
const actions = require("./actions.js");

const NOT_IMPLEMENTED = -32001; // the action is declared but your driver does not do it yet
let context = null; // what `initialize` gave: endpoints, credentials, trust anchors, software, fixtures

function answer(id, result, error) {
  const msg = error ? { jsonrpc: "2.0", id, error } : { jsonrpc: "2.0", id, result };
  process.stdout.write(JSON.stringify(msg) + "\n");
}

async function handle(msg) {
  const { id, method, params = {} } = msg;
  if (method === "initialize") {
    context = params;
    if (typeof actions.initialize === "function") await actions.initialize(context);
    return answer(id, { software: { name: params.software.name, version: params.software.version },
                        actions: Object.keys(actions.ACTIONS) });
  }
  if (method === "perform") {
    const handler = actions.ACTIONS[params.action];
    if (!context) return answer(id, null, { code: -32002, message: "perform before initialize" });
    if (!handler) return answer(id, null, { code: -32601, message: `unsupported action ${params.action}` });
    try {
      return answer(id, await handler(params.input || {}, context));
    } catch (err) {
      if (err && err.notImplemented) return answer(id, null, { code: NOT_IMPLEMENTED, message: err.message });
      console.error(err && err.stack ? err.stack : err);
      return answer(id, null, { code: -32000, message: String(err && err.message ? err.message : err).slice(0, 500) });
    }
  }
  if (method === "reset") { // only sent when vendor.toml says reuse = true
    context = null;
    if (typeof actions.reset !== "function") {
      return answer(id, null, { code: NOT_IMPLEMENTED, message: "actions.js has no reset(): one process per scenario" });
    }
    try {
      await actions.reset();
    } catch (err) { // not fresh: the harness starts a new process for the next scenario
      console.error(err && err.stack ? err.stack : err);
      return answer(id, null, { code: -32000, message: `reset failed: ${String(err && err.message ? err.message : err)}`.slice(0, 500) });
    }
    // the harness's marker on stderr: what you logged before it belongs to the scenario that ended
    await new Promise((resolve) => process.stderr.write(String(params.marker || "") + "\n", resolve));
    return answer(id, { fresh: true });
  }
  if (method === "shutdown") {
    answer(id, null);
    process.exit(0);
  }
  return answer(id, null, { code: -32601, message: `unknown method ${method}` });
}

// one request at a time, in order: the harness waits for each answer before the next request
let queue = Promise.resolve();
readline.createInterface({ input: process.stdin }).on("line", (line) => {
  queue = queue.then(async () => {
    let msg;
    try { msg = JSON.parse(line); } catch { return answer(null, null, { code: -32700, message: "parse error" }); }
    await handle(msg);
  });
});
