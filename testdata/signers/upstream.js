// upstream.js is a backend that trusts nothing but a Standard Webhooks
// signature: it verifies every request with the standardwebhooks npm
// package and the secret in $SIGN_UPSTREAM_SECRET (a whsec_ value), as a
// backend behind `sign_upstream` would, and records what it got.
//
// It listens on 127.0.0.1 on a free port and prints "listening <port>" on
// stdout. A verified request is answered 200 {"verified":true}, any other
// 401 {"verified":false,"error":...}. GET /__recorded answers the JSON
// array of everything received so far: method, url, headers, body
// (base64), verified, error.
"use strict";

const http = require("node:http");
const { Webhook } = require("standardwebhooks");

const secret = process.env.SIGN_UPSTREAM_SECRET;
if (!secret) {
  process.stderr.write("upstream.js: SIGN_UPSTREAM_SECRET is not set\n");
  process.exit(2);
}
const webhook = new Webhook(secret);
const recorded = [];

const server = http.createServer((req, res) => {
  if (req.method === "GET" && req.url === "/__recorded") {
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(JSON.stringify(recorded));
    return;
  }
  const chunks = [];
  req.on("data", (chunk) => chunks.push(chunk));
  req.on("end", () => {
    const body = Buffer.concat(chunks);
    let verified = false;
    let error = "";
    try {
      webhook.verify(body, req.headers, { jsonParse: false });
      verified = true;
    } catch (err) {
      error = String(err.message || err);
    }
    recorded.push({
      method: req.method,
      url: req.url,
      headers: req.headers,
      body: body.toString("base64"),
      verified,
      error,
    });
    res.writeHead(verified ? 200 : 401, { "Content-Type": "application/json" });
    res.end(JSON.stringify(verified ? { verified } : { verified, error }));
  });
});

server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
