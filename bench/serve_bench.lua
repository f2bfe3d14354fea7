-- wrk script for bench/serve_bench: POSTs the pre-signed deliveries of
-- $BENCH_REQUESTS (see serve_bench_gen.py), each thread its own share, and
-- counts answers by status. Deliveries answered 202 are written to
-- $BENCH_ACKED (one id a line) so a kill can be checked for losses; without
-- it the answers' bodies are not looked at (wrk's CPU is the server's loss).
local threads = {}
local counter = 0

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  nthreads = counter_total or 0
  lines = {}
  local f = assert(io.open(os.getenv("BENCH_REQUESTS"), "r"))
  local n, i = tonumber(os.getenv("BENCH_THREADS") or "1"), 0
  -- Formatted here, once, not in request(): wrk shares the two cores with
  -- the server, and its per-request Lua work is CPU the server does not get.
  for line in f:lines() do
    if i % n == tid then
      local id, sig, body = line:match("^([^\t]+)\t([^\t]+)\t(.*)$")
      table.insert(lines, wrk.format("POST", "/hooks/github", {
        ["Content-Type"] = "application/json",
        ["X-GitHub-Event"] = "push",
        ["X-GitHub-Delivery"] = id,
        ["X-Hub-Signature-256"] = sig,
      }, body))
    end
    i = i + 1
  end
  f:close()
  next_line = 1
  accepted, other, exhausted = 0, 0, 0
  acked = {}
end

function request()
  local line = lines[next_line]
  if line == nil then
    exhausted = exhausted + 1
    return wrk.format("GET", "/healthz")
  end
  next_line = next_line + 1
  return line
end

local keep_ids = os.getenv("BENCH_ACKED") ~= nil

function response(status, headers, body)
  if status == 202 then
    accepted = accepted + 1
    if keep_ids then
      local id = body:match('"delivery":"([^"]+)"')
      if id then table.insert(acked, id) end
    end
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local acc, oth, exh = 0, 0, 0
  local out = os.getenv("BENCH_ACKED") and io.open(os.getenv("BENCH_ACKED"), "w")
  for _, t in ipairs(threads) do
    acc = acc + t:get("accepted")
    oth = oth + t:get("other")
    exh = exh + t:get("exhausted")
    if out then
      for _, id in ipairs(t:get("acked")) do out:write(id, "\n") end
    end
  end
  if out then out:close() end
  local secs = summary.duration / 1e6
  io.write(string.format("BENCH accepted=%d other=%d exhausted=%d seconds=%.2f accepted_per_s=%.0f p50_ms=%.2f p99_ms=%.2f max_ms=%.2f\n",
    acc, oth, exh, secs, acc / secs, latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
