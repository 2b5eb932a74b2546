// sign.js signs test webhooks the way the senders do, with the senders' own
// npm packages (pinned in package-lock.json), so that the end-to-end tests
// check our verifier against the real thing rather than against our own
// signing code.
//
// Input on stdin: a JSON array of jobs; output on stdout: a JSON array with
// one {"headers": {...}, "url": "..."} per job, in order. A job is
//
//   {"provider": "stripe",   "secret": S, "timestamp": T, "body": B}
//   {"provider": "standard", "secret": "whsec_...", "id": I, "timestamp": T, "body": B}
//   {"provider": "svix",     "secret": "whsec_...", "id": I, "timestamp": T, "body": B}
//   {"provider": "github",   "secret": S, "body": B}
//   {"provider": "twilio",   "secret": TOKEN, "url": U, "params": {name: value}}
//   {"provider": "twilio",   "secret": TOKEN, "url": U, "body": B}   (JSON body)
//
// T is in Unix seconds, B a string sent as is. For a Twilio JSON body the
// URL gets the body's bodySHA256 query parameter, as Twilio adds it; the
// answer's "url" is the URL that was signed.
"use strict";

const crypto = require("node:crypto");
const Stripe = require("stripe");
const standardwebhooks = require("standardwebhooks");
const svix = require("svix");
const twilio = require("twilio");

async function sign(job) {
  switch (job.provider) {
    case "stripe":
      return {
        headers: {
          "Stripe-Signature": Stripe.webhooks.generateTestHeaderString({
            payload: job.body,
            secret: job.secret,
            timestamp: job.timestamp,
          }),
        },
      };
    case "standard": {
      const when = new Date(job.timestamp * 1000);
      const signature = new standardwebhooks.Webhook(job.secret).sign(job.id, when, job.body);
      return {
        headers: {
          "webhook-id": job.id,
          "webhook-timestamp": String(job.timestamp),
          "webhook-signature": signature,
        },
      };
    }
    case "svix": {
      const when = new Date(job.timestamp * 1000);
      const signature = new svix.Webhook(job.secret).sign(job.id, when, job.body);
      return {
        headers: {
          "svix-id": job.id,
          "svix-timestamp": String(job.timestamp),
          "svix-signature": signature,
        },
      };
    }
    case "github": {
      // An ES module: loaded when needed.
      const { sign: githubSign } = await import("@octokit/webhooks-methods");
      return { headers: { "X-Hub-Signature-256": await githubSign(job.secret, job.body) } };
    }
    case "twilio": {
      let url = job.url;
      let params = job.params || {};
      if (job.body !== undefined) {
        const digest = crypto.createHash("sha256").update(job.body).digest("hex");
        url += (url.includes("?") ? "&" : "?") + "bodySHA256=" + digest;
        params = {};
      }
      return {
        url,
        headers: { "X-Twilio-Signature": twilio.getExpectedTwilioSignature(job.secret, url, params) },
      };
    }
    default:
      throw new Error(`sign.js: no npm signer for provider ${JSON.stringify(job.provider)}`);
  }
}

async function main() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  const jobs = JSON.parse(Buffer.concat(chunks).toString("utf8"));
  const out = [];
  for (const job of jobs) out.push(await sign(job));
  process.stdout.write(JSON.stringify(out));
}

main().catch((err) => {
  process.stderr.write(`${err.stack || err}\n`);
  process.exit(1);
});
