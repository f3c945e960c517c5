-- A flood of failed logins for bench/run.sh (FLOOD_CONNECTIONS > 0): every request a wrong
-- password for a made-up e-mail of one tenant, from one client address, as a password
-- guesser would send them. The harness measures the other tenants' chat meanwhile.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

local n = 0
request = function()
  n = n + 1
  local body = string.format(
    '{"tenant": "flood-target", "email": "user%d@flood.test", "password": "not the password %d"}',
    n % 5000, n)
  return wrk.format(nil, "/v1/auth/login", nil, body)
end
