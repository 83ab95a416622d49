-- wrk script for the upload acknowledgement measurement (bench/run.py):
-- every request POSTs the same multipart body (a 1 MB entreprises CSV) to
-- /api/v1/imports. run.py writes the body and passes the token and the
-- boundary through the environment.
local f = assert(io.open(os.getenv("FOX_BENCH_BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Authorization"] = "Bearer " .. os.getenv("FOX_BENCH_TOKEN")
wrk.headers["Content-Type"] = "multipart/form-data; boundary=" .. os.getenv("FOX_BENCH_BOUNDARY")

function done(summary, latency, requests)
  -- One JSON line run.py parses; latencies in microseconds.
  io.write(string.format(
    '{"requests": %d, "errors": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "seconds": %f}\n',
    summary.requests, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status
      + summary.errors.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, summary.duration / 1e6))
end
