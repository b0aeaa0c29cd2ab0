// A minimal client written with Node's standard library only, put in the actions.js of `usine driver init
// --lang javascript`: practitioner.login (OpenID Connect code flow, PKCE S256, state, nonce, full ID token
// validation) and patient.lookup (the national identity look-up). Other actions stay "not implemented".
"use strict";
const crypto = require("node:crypto");
const https = require("node:https");

const REDIRECT_URI = "http://127.0.0.1:8765/oidc/callback";
const SKEW = 60;
const MAX_AUTH_AGE = 43200;
const TRAITS = ["birth_name", "first_names", "birth_date", "sex", "birth_place_code"];
const INS_OIDS = ["1.2.250.1.213.1.4.8", "1.2.250.1.213.1.4.9", "1.2.250.1.213.1.4.10", "1.2.250.1.213.1.4.11"];

let app = null; // the session: context, provider metadata and keys, the logged-in practitioner

function notImplemented(action) {
  const err = new Error(`not implemented: ${action}`);
  err.notImplemented = true;
  return err;
}

class Refused extends Error {}

function b64url(buf) { return Buffer.from(buf).toString("base64url"); }
function random(bytes) { return b64url(crypto.randomBytes(bytes)); }

function request(url, { method = "GET", headers = {}, body = null, timeout = 10000 } = {}) {
  const ua = `${app.ctx.software.name}/${app.ctx.software.version} (${app.ctx.software.registration_id})`;
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method, headers: { "User-Agent": ua, ...headers },
                                     ca: app.ctx.trust_anchors.ca_certificates, minVersion: "TLSv1.2", timeout },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, text: Buffer.concat(chunks).toString() }));
      });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    if (body) req.write(body);
    req.end();
  });
}

async function metadata() {
  if (!app.meta) {
    const r = await request(`${app.issuer}/.well-known/openid-configuration`);
    const meta = JSON.parse(r.text);
    if (meta.issuer !== app.issuer) throw new Refused(`discovery issuer ${meta.issuer} is not ${app.issuer}`);
    app.meta = meta;
  }
  return app.meta;
}

async function fetchKeys() {
  const r = await request((await metadata()).jwks_uri);
  app.keys = JSON.parse(r.text).keys;
}

async function keyFor(header) {
  if (!app.keys) await fetchKeys();
  const pick = () => (header.kid === undefined ? (app.keys.length === 1 ? app.keys[0] : null)
                                                : app.keys.find((k) => k.kid === header.kid));
  let jwk = pick();
  if (!jwk && (!app.refetched || Date.now() - app.refetched > 300000)) { // one refetch per 5 minutes
    app.refetched = Date.now();
    await fetchKeys();
    jwk = pick();
  }
  if (!jwk) throw new Refused(`no key ${header.kid} in the provider's JWKS`);
  return crypto.createPublicKey({ key: jwk, format: "jwk" });
}

async function verifyJwt(token) {
  const parts = String(token).split(".");
  if (parts.length !== 3) throw new Refused("not a signed JWT");
  const header = JSON.parse(Buffer.from(parts[0], "base64url").toString());
  const algs = ((await metadata()).id_token_signing_alg_values_supported || []).filter((a) => a !== "none");
  const kty = { RS256: "RSA", ES256: "EC" }[header.alg];  // the provider's two algorithms, never "none" or HMAC
  if (!kty || !algs.includes(header.alg)) throw new Refused(`algorithm ${header.alg} refused`);
  const key = await keyFor(header);
  if (key.asymmetricKeyType !== { RSA: "rsa", EC: "ec" }[kty]) throw new Refused(`key ${header.kid} is not ${kty}`);
  const options = kty === "EC" ? { key, dsaEncoding: "ieee-p1363" } : { key };
  const ok = crypto.verify("sha256", Buffer.from(`${parts[0]}.${parts[1]}`), options,
                           Buffer.from(parts[2], "base64url"));
  if (!ok) throw new Refused("signature does not verify");
  return JSON.parse(Buffer.from(parts[1], "base64url").toString());
}

function halfHash(value) {
  return b64url(crypto.createHash("sha256").update(value).digest().subarray(0, 16));
}

function checkIdToken(claims, nonce, accessToken, code) {
  const now = Date.now() / 1000;
  const client = app.ctx.credentials.client_id;
  const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  if (claims.iss !== app.issuer) throw new Refused("another issuer");
  if (!aud.includes(client)) throw new Refused("another audience");
  if ((aud.length > 1 || claims.azp !== undefined) && claims.azp !== client) throw new Refused("azp is not this client");
  for (const name of ["exp", "iat", "sub", "auth_time"]) {
    if (claims[name] === undefined) throw new Refused(`${name} missing`);
  }
  if (claims.exp < now - SKEW) throw new Refused("expired");
  if (claims.iat > now + SKEW) throw new Refused("issued in the future");
  if (claims.nbf !== undefined && claims.nbf > now + SKEW) throw new Refused("not valid yet");
  if (claims.nonce !== nonce) throw new Refused("another nonce");
  if (claims.acr !== "eidas1") throw new Refused("acr is not eidas1");
  if (now - claims.auth_time > MAX_AUTH_AGE + SKEW) throw new Refused("authentication too old");
  if (claims.at_hash !== undefined && claims.at_hash !== halfHash(accessToken)) throw new Refused("at_hash");
  if (claims.c_hash !== undefined && claims.c_hash !== halfHash(code)) throw new Refused("c_hash");
}

async function login(loginHint) {
  const meta = await metadata();
  const state = random(24), nonce = random(24), verifier = random(48);
  const challenge = b64url(crypto.createHash("sha256").update(verifier).digest());
  const query = new URLSearchParams({ response_type: "code", client_id: app.ctx.credentials.client_id,
    redirect_uri: REDIRECT_URI, scope: "openid profile", state, nonce, code_challenge: challenge,
    code_challenge_method: "S256", login_hint: loginHint, acr_values: "eidas1", max_age: String(MAX_AUTH_AGE) });
  const auth = await request(`${meta.authorization_endpoint}?${query}`);
  if (![302, 303].includes(auth.status) || !auth.headers.location) throw new Refused(`authorization answered ${auth.status}`);
  const callback = new URL(auth.headers.location).searchParams;
  if (callback.get("error")) throw new Refused(`authorization refused: ${callback.get("error")}`);
  if (callback.get("state") !== state) throw new Refused("state in the callback is not the one sent");
  if (callback.has("iss") && callback.get("iss") !== app.issuer) throw new Refused("callback from another issuer");
  const code = callback.get("code");
  const basic = Buffer.from(`${encodeURIComponent(app.ctx.credentials.client_id)}:${encodeURIComponent(app.ctx.credentials.client_secret)}`).toString("base64");
  const tokenAnswer = await request(meta.token_endpoint, { method: "POST", body: new URLSearchParams({
    grant_type: "authorization_code", code, redirect_uri: REDIRECT_URI, code_verifier: verifier }).toString(),
    headers: { "Content-Type": "application/x-www-form-urlencoded", Authorization: `Basic ${basic}` } });
  if (tokenAnswer.status !== 200) throw new Refused(`token request answered ${tokenAnswer.status}`);
  const tokens = JSON.parse(tokenAnswer.text);
  const claims = await verifyJwt(tokens.id_token);
  checkIdToken(claims, nonce, tokens.access_token, code);
  const ui = await request(meta.userinfo_endpoint, { headers: { Authorization: `Bearer ${tokens.access_token}` } });
  if (ui.status !== 200) throw new Refused(`userinfo answered ${ui.status}`);
  let info;
  if ((ui.headers["content-type"] || "").startsWith("application/jwt")) {
    info = await verifyJwt(ui.text);
    const aud = Array.isArray(info.aud) ? info.aud : [info.aud];
    if (info.iss !== app.issuer || !aud.includes(app.ctx.credentials.client_id)) throw new Refused("signed userinfo for another party");
  } else {
    info = JSON.parse(ui.text);
  }
  if (info.sub !== claims.sub) throw new Refused("userinfo is about another practitioner");
  return { nationalId: info.SubjectNameID || info.sub, accessToken: tokens.access_token };
}

async function initialize(context) {
  app = { ctx: context, issuer: context.endpoints.idp.replace(/\/+$/, ""), meta: null, keys: null, refetched: 0,
          practitioner: null };
}

async function practitioner_login(input) {
  try {
    app.practitioner = await login(input.login_hint);
    return { authenticated: true, national_id: app.practitioner.nationalId };
  } catch (err) {
    app.practitioner = null;
    console.error(`login refused: ${err.message}`);
    return { authenticated: false, error: String(err.message).slice(0, 500) };
  }
}

function normaliseName(text) {
  let t = String(text).replace(/Œ/g, "OE").replace(/œ/g, "oe").replace(/Æ/g, "AE").replace(/æ/g, "ae").replace(/ß/g, "ss");
  t = t.normalize("NFKD").replace(/[\u0300-\u036f]/g, "").toUpperCase();
  t = t.replace(/[’‘]/g, "'").replace(/[‐–]/g, "-").replace(/[^A-Z '\-]/g, " ");
  t = t.replace(/\s*-\s*/g, "-").replace(/\s*'\s*/g, "'").replace(/\s+/g, " ");
  return t.replace(/^[ '\-]+|[ '\-]+$/g, "");
}

async function patient_lookup(input) {
  const typed = Object.fromEntries(TRAITS.map((k) => [k, String(input[k])]));
  const checked = Boolean(input.identity_document_checked);
  const sent = { ...typed, birth_name: normaliseName(typed.birth_name), first_names: normaliseName(typed.first_names),
                 sex: typed.sex.toUpperCase(), birth_place_code: typed.birth_place_code.toUpperCase() };
  const unchanged = { status: checked ? "validated" : "provisional", traits: typed };
  try {
    if (!app.practitioner && !process.env.SKIP_IMPLICIT_LOGIN) { // the convention: log the first practitioner in
      app.practitioner = await login(app.ctx.fixtures.practitioners[0].national_id);
    }
    const r = await request(`${app.ctx.endpoints.insi.replace(/\/+$/, "")}/lookup`, { method: "POST",
      body: JSON.stringify(sent), timeout: 3000,
      headers: { "Content-Type": "application/json",
                 ...(app.practitioner ? { Authorization: `Bearer ${app.practitioner.accessToken}` } : {}) } });
    if (r.status !== 200) return { ...unchanged, error: `identity service answered ${r.status}` };
    const answer = JSON.parse(r.text);
    if (answer.outcome !== "match") return unchanged;
    const id = answer.identity || {};
    if (!/^[0-9]{6}[0-9AB][0-9]{8}$/.test(id.ins || "") || !INS_OIDS.includes(id.oid)) {
      return { ...unchanged, error: "the INS returned is out of format" };
    }
    return { status: checked ? "qualified" : "recovered", ins: id.ins, oid: id.oid,
             traits: Object.fromEntries(TRAITS.map((k) => [k, id.traits[k]])) };
  } catch (err) {
    return { ...unchanged, error: `look-up failed: ${err.message}` };
  }
}

const ACTIONS = {
  "practitioner.login": practitioner_login,
  "patient.lookup": patient_lookup,
  "message.send": async () => { throw notImplemented("message.send"); },
};

// the session ended and this process serves the next (reuse = true): nothing of it stays, as in a new process
async function reset() {
  app = null;
}

module.exports = { initialize, reset, ACTIONS };
