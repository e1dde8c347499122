-- wrk script: POST /api/v1/partners with a unique e-mail per request (see BENCHMARKS.md).
-- One unique e-mail per request: thread id + counter.
local counter = 0
local thread_id = 0
local threads = 0
function setup(thread)
  thread:set("id", threads)
  threads = threads + 1
end
function init(args)
  thread_id = id
  -- LuaJIT's generator starts from the same seed every run: a second run against the same
  -- database would repeat the first one's e-mails and get 409s instead of inserts.
  math.randomseed(os.time() * 100 + thread_id)
end
function request()
  counter = counter + 1
  local body = string.format('{"nombre":"Wrk %d-%d","email":"w%d-%d-%d@wrk.test"}', thread_id, counter, thread_id, counter, math.random(1, 1000000000))
  return wrk.format("POST", "/api/v1/partners", {["Content-Type"] = "application/json"}, body)
end
