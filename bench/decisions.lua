-- wrk script: cycle through prebuilt decision requests.
--
--   wrk -t1 -c64 -d15s --latency -s bench/decisions.lua http://127.0.0.1:PORT -- REQUESTS.lua
--
-- REQUESTS.lua is written by bench/run.py from the gateway's demo.json: a Lua
-- chunk returning a list of {path = ..., key = ..., body = ...}, one per
-- demo subject x scene pair (granted, standard and constrained outcomes mixed).
-- Every request is formatted once in init(); request() only hands the next one out.
-- done() prints one machine-readable line that bench/run.py parses.

local requests = {}
local count = 0
local next_index = 1

function init(args)
   local file = args[1]
   if file == nil then
      error("usage: wrk ... -s decisions.lua URL -- REQUESTS.lua")
   end
   local list = dofile(file)
   for _, r in ipairs(list) do
      local headers = {
         ["Authorization"] = "Bearer " .. r.key,
         ["Content-Type"] = "application/json",
      }
      count = count + 1
      requests[count] = wrk.format("POST", r.path, headers, r.body)
   end
   if count == 0 then
      error("no requests in " .. file)
   end
   -- Threads start at different points of the list.
   next_index = (id or 0) % count + 1
end

function setup(thread)
   thread:set("id", (thread_counter or 0))
   thread_counter = (thread_counter or 0) + 1
end

function request()
   local r = requests[next_index]
   next_index = next_index % count + 1
   return r
end

function done(summary, latency, _)
   local seconds = summary.duration / 1e6
   local e = summary.errors
   io.write(string.format(
      "BENCH_RESULT {\"requests\":%d,\"seconds\":%.6f,\"rps\":%.2f," ..
      "\"p50_us\":%d,\"p90_us\":%d,\"p99_us\":%d,\"max_us\":%d,\"mean_us\":%.1f," ..
      "\"non_2xx\":%d,\"connect_errors\":%d,\"read_errors\":%d," ..
      "\"write_errors\":%d,\"timeouts\":%d,\"bytes\":%d}\n",
      summary.requests, seconds, summary.requests / seconds,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.max, latency.mean,
      e.status, e.connect, e.read, e.write, e.timeout, summary.bytes))
end
