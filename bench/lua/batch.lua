-- POST /funnel/events/batch with SIZE unique events per request (new people).
-- args: path prefix token size
local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end

function init(args)
  path, prefix, token, size = args[1], args[2], args[3], tonumber(args[4])
  n = 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. token
end

local template = '{"source_type":"zoom","event_type":"webinar_registered",' ..
  '"email":"b%s@bench.example","first_name":"Ana","last_name":"Garc\\u00eda",' ..
  '"external_id":"%s","utm_source":"google","utm_medium":"cpc",' ..
  '"utm_campaign":"brand_search","occurred_at":"2026-11-01T12:00:00Z"}'

function request()
  n = n + 1
  local parts = {}
  for i = 1, size do
    local id = prefix .. "-" .. tid .. "-" .. n .. "-" .. i
    parts[i] = string.format(template, id, id)
  end
  local body = '{"events":[' .. table.concat(parts, ",") .. ']}'
  return wrk.format(nil, path, nil, body)
end
