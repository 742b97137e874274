-- POST /funnel/event with a unique event (and a new person) per request.
-- args: path prefix token
local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end

function init(args)
  path, prefix, token = args[1], args[2], args[3]
  n = 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. token
end

local template = '{"source_type":"direct_signup","event_type":"lead_captured",' ..
  '"email":"u%s@bench.example","first_name":"Ana","last_name":"Garc\\u00eda",' ..
  '"external_id":"%s","utm_source":"google","utm_medium":"cpc",' ..
  '"utm_campaign":"brand_search","occurred_at":"2026-11-01T12:00:00Z"}'

function request()
  n = n + 1
  local id = prefix .. "-" .. tid .. "-" .. n
  return wrk.format(nil, path, nil, string.format(template, id, id))
end
