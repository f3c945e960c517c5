-- wrk script for Switchyard's load harness (bench/run.sh, docs/benchmarks.md).
--
--   wrk -t2 -c32 -d10s -s bench/scenario.lua http://127.0.0.1:PORT -- MODE TOKENS_FILE
--
-- TOKENS_FILE has one user per line: token<TAB>conversation_id (switchyard-bench seed/tokens).
-- MODE
--   chat      POST /v1/chat continuing the user's conversation
--   chat_new  POST /v1/chat starting a new conversation
--   list      GET  /v1/conversations?limit=20
--   get       GET  /v1/conversations/{id}?limit=20
--   path      GET  the path in the line's second column (e.g. a list page behind a cursor)
-- Users are taken round robin, each wrk thread from its own offset, so load spreads over all
-- users and tenants. done() prints: RESULT req/s p50_ms p99_ms errors requests

local words = {
  "invoice", "refund", "payment", "password", "login", "crash", "delivery", "tracking",
  "parcel", "email", "profile", "username", "quote", "pricing", "upgrade", "contract",
  "privacy", "gdpr", "vacation", "payroll", "payslip", "vpn", "laptop", "printer",
}
local templates = {
  "I have a problem with my %s, can you help?",
  "Why is the %s wrong this month",
  "question about the %s and the %s",
  "please ask the remote service about my %s",   -- the http agent on loopback
  "hello, thanks for the help earlier",            -- the fallback agent
  "what is the weather tomorrow",                  -- nothing matches: the fallback agent
}

local thread_count = 0
function setup(thread)
  thread:set("thread_no", thread_count)
  thread_count = thread_count + 1
end

local mode, users, next_user

function init(args)
  mode = args[1] or "chat"
  users = {}
  for line in assert(io.open(args[2] or "", "r"), "cannot open the tokens file"):lines() do
    local token, second = line:match("^([^\t]+)\t?(.*)$")
    if token then
      users[#users + 1] = {
        get = { ["Authorization"] = "Bearer " .. token },
        post = { ["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json" },
        second = second,
      }
    end
  end
  assert(#users > 0, "no users in the tokens file")
  next_user = ((thread_no or 0) * 104729) % #users
  math.randomseed(4242 + (thread_no or 0))
end

local function message()
  local t = templates[math.random(#templates)]
  return string.format(t, words[math.random(#words)], words[math.random(#words)])
end

function request()
  next_user = next_user % #users + 1
  local u = users[next_user]
  if mode == "list" then
    return wrk.format("GET", "/v1/conversations?limit=20", u.get)
  elseif mode == "get" then
    return wrk.format("GET", "/v1/conversations/" .. u.second .. "?limit=20", u.get)
  elseif mode == "path" then
    return wrk.format("GET", u.second, u.get)
  elseif mode == "chat_new" then
    return wrk.format("POST", "/v1/chat", u.post, '{"message":"' .. message() .. '"}')
  else
    return wrk.format("POST", "/v1/chat", u.post,
      '{"message":"' .. message() .. '","conversation_id":"' .. u.second .. '"}')
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %.1f %.2f %.2f %d %d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000.0, latency:percentile(99) / 1000.0,
    e.connect + e.read + e.write + e.timeout + e.status, summary.requests))
end
