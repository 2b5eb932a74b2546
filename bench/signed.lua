-- signed.lua: wrk script that POSTs the pre-signed Groq events written by
-- bench/signer, each event id at most once. Environment:
--   BENCH_EVENTS   the signer's output file (required)
--   BENCH_THREADS  wrk's -t, so that each thread gets a disjoint slice
--   BENCH_PATH     request path (default /webhooks/groq)
--   BENCH_PROVIDER how the signature travels (default groq): groq
--                  (X-Groq-Timestamp, X-Groq-Signature), stripe
--                  (Stripe-Signature: t=..,v1=..) or standard (webhook-id,
--                  webhook-timestamp, webhook-signature: v1,..)
--   BENCH_ONCE     if set, a thread that has sent its whole slice stops
--                  (wrk ends when every thread has: -d is then only a bound)
-- A thread that runs out of events starts its slice again and counts a wrap
-- (the ids then repeat: duplicates); with BENCH_ONCE it stops instead, and
-- its last request repeats one id, counted as a wrap. done() prints one machine-readable line:
--   BENCH requests=.. duration_us=.. status=.. connect=.. read=.. write=..
--         timeout=.. p50_us=.. p99_us=.. sent=.. wraps=..

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("slot", #threads - 1)
end

function init(args)
  local file = assert(os.getenv("BENCH_EVENTS"), "BENCH_EVENTS is not set")
  local nthreads = tonumber(os.getenv("BENCH_THREADS") or "1")
  local path = os.getenv("BENCH_PATH") or "/webhooks/groq"
  local lines = assert(io.open(file, "r"))
  local ts, prefix, suffix = lines:read("*l"), lines:read("*l"), lines:read("*l")
  ids, sigs, n = {}, {}, 0
  local k = 0
  for line in lines:lines() do
    if k % nthreads == slot then
      local id, sig = line:match("^(%S+) (%S+)$")
      n = n + 1
      ids[n], sigs[n] = id, sig
    end
    k = k + 1
  end
  lines:close()
  assert(n > 0, "no events for thread " .. slot)
  local size = #prefix + #ids[1] + #suffix
  head = "POST " .. path .. " HTTP/1.1\r\n" ..
    "Host: " .. wrk.host .. ":" .. wrk.port .. "\r\n" ..
    "Content-Type: application/json\r\n" ..
    "Content-Length: " .. size .. "\r\n"
  local provider = os.getenv("BENCH_PROVIDER") or "groq"
  standard = provider == "standard"
  if provider == "groq" then
    head = head .. "X-Groq-Timestamp: " .. ts .. "\r\n" .. "X-Groq-Signature: "
  elseif provider == "stripe" then
    head = head .. "Stripe-Signature: t=" .. ts .. ",v1="
  elseif standard then
    head = head .. "webhook-timestamp: " .. ts .. "\r\n" .. "webhook-id: "
  else
    error("BENCH_PROVIDER " .. provider .. ": want groq, stripe or standard")
  end
  mid = "\r\n\r\n" .. prefix
  tail = suffix
  i, sent, wraps = 0, 0, 0
  once = os.getenv("BENCH_ONCE") ~= nil and os.getenv("BENCH_ONCE") ~= ""
end

function request()
  i = i + 1
  if i > n then
    i, wraps = 1, wraps + 1
    if once then
      wrk.thread:stop()
    end
  end
  sent = sent + 1
  if standard then
    return head .. ids[i] .. "\r\nwebhook-signature: v1," .. sigs[i] .. mid .. ids[i] .. tail
  end
  return head .. sigs[i] .. mid .. ids[i] .. tail
end

function done(summary, latency, requests)
  local sent, wraps = 0, 0
  for _, t in ipairs(threads) do
    sent = sent + t:get("sent")
    wraps = wraps + t:get("wraps")
  end
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d status=%d connect=%d read=%d write=%d timeout=%d p50_us=%d p99_us=%d sent=%d wraps=%d\n",
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99), sent, wraps))
end
