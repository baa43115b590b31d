-- wrk script of the benchmarks: the method, an optional file of request bodies and wrk's thread count come after
-- `--`; each thread posts its own share of the bodies in turn (wrapping around when the file is exhausted);
-- statuses are counted per thread, and `done` prints one line, "JSON {...}", with requests, statuses, errors and
-- latency percentiles.

local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  method = args[1] or "GET"
  bodies = {}
  statuses = {}
  local path = args[2]
  local nthreads = tonumber(args[3]) or 1
  if path ~= nil and path ~= "" then
    local n = 0
    for line in io.lines(path) do
      if n % nthreads == id then
        table.insert(bodies, line)
      end
      n = n + 1
    end
  end
  nextbody = 1
end

function request()
  if #bodies == 0 then
    return wrk.format(method)
  end
  local body = bodies[nextbody]
  nextbody = nextbody + 1
  if nextbody > #bodies then
    nextbody = 1
    wrapped = true
  end
  return wrk.format(method, nil, nil, body)
end

function response(status, headers, body)
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
end

function done(summary, latency, requests)
  local counts = {}
  local wrapped_any = false
  for _, thread in ipairs(threads) do
    local s = thread:get("statuses")
    for k, v in pairs(s) do
      counts[k] = (counts[k] or 0) + v
    end
    if thread:get("wrapped") then
      wrapped_any = true
    end
  end
  local parts = {}
  for k, v in pairs(counts) do
    table.insert(parts, string.format('"%s": %d', k, v))
  end
  local e = summary.errors
  io.write(string.format(
    'JSON {"requests": %d, "duration_us": %d, "statuses": {%s}, "errors": {"connect": %d, "read": %d, ' ..
    '"write": %d, "timeout": %d}, "p50_ms": %.2f, "p90_ms": %.2f, "p99_ms": %.2f, "p999_ms": %.2f, ' ..
    '"max_ms": %.2f, "bodies_reused": %s}\n',
    summary.requests, summary.duration, table.concat(parts, ", "), e.connect, e.read, e.write, e.timeout,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency:percentile(99.9) / 1000, latency.max / 1000, tostring(wrapped_any)))
end
