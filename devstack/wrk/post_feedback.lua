-- wrk script of `feedback bench ingest`: POST app feedback, each request with its own
-- Idempotency-Key (so ingest publishes every one), and a JSON summary at the end.
-- Environment: BENCH_API_KEY, BENCH_RUN (makes keys unique across runs).
local counter = 0
local thread_id = 0
local threads = {}
local api_key = os.getenv("BENCH_API_KEY") or ""
local run = os.getenv("BENCH_RUN") or "run"
local body = '{"unit": "social-adult", "text": "Jonotin puhelimessa puoli tuntia ennen kuin kukaan vastasi. Palvelu oli lopulta ystävällistä.", "follow_up_consent": false}'

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  thread_id = id
end

function request()
  counter = counter + 1
  local headers = {}
  headers["Content-Type"] = "application/json"
  headers["X-API-Key"] = api_key
  headers["Idempotency-Key"] = run .. "-" .. thread_id .. "-" .. counter
  return wrk.format("POST", "/v1/feedback/app", headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "non_2xx": %d, "errors": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), e.status,
    e.connect + e.read + e.write + e.timeout))
end
