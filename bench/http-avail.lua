-- http-avail.lua - wrk script: POST /v1/avail.get for one random SKU of allot-bench's catalogue
-- (S00000000 .. S<SKUS-1>), the request allot-bench's browse scenario sends over MessagePack-RPC.
local skus = tonumber(os.getenv("SKUS") or "100000")
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
math.randomseed(1)
request = function()
  local body = string.format('{"skus":["S%08d"]}', math.random(0, skus - 1))
  return wrk.format(nil, nil, nil, body)
end
