-- wrk script for the keyed scenario: every request carries the next of the bench's tokens in its
-- Authorization header, round robin over the whole list (one list per wrk thread; the bench runs
-- -t1). The requests are built once in init(), so the per-request cost in wrk is one table index.
-- Usage: wrk ... -s bench/wrk-keyed.lua https://127.0.0.1:PORT/keyed/ -- TOKENS_FILE
local requests = {}
local n, i = 0, 0

function init(args)
  local path = args[1] or error("wrk-keyed.lua: pass the tokens file after --")
  local f = assert(io.open(path, "r"))
  for line in f:lines() do
    if #line > 0 then
      n = n + 1
      requests[n] = wrk.format(nil, nil, { ["Host"] = wrk.host, ["Authorization"] = line })
    end
  end
  f:close()
  if n == 0 then error("wrk-keyed.lua: no tokens in " .. path) end
end

function request()
  i = i % n + 1
  return requests[i]
end
