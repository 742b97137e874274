-- POST /funnel/conversion for the heavy leads (50 touchpoints each), each request a new
-- conversion: threads take disjoint slices of the leads; a new conversion type per lap.
-- args: path prefix token leads threads converted_at
local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end

function init(args)
  path, prefix, token = args[1], args[2], args[3]
  local leads, nthreads = tonumber(args[4]), tonumber(args[5])
  converted_at = args[6]
  slice = math.floor(leads / nthreads)
  first = tid * slice
  n, lap = 0, 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. token
end

local template = '{"email":"heavy.%d@conv.bench.example","user_id":"user-%d",' ..
  '"conversion_type":"bench_%s_%d","value":"99.00","currency":"USD",' ..
  '"converted_at":"%s"}'

function request()
  if n >= slice then
    n, lap = 0, lap + 1
  end
  local i = first + n
  n = n + 1
  local body = string.format(template, i, i, prefix, lap, converted_at)
  return wrk.format(nil, path, nil, body)
end
