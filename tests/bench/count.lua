-- Counts responses other than 200 (wrk itself does not report 3xx): a page that redirects to the
-- sign-in form must not pass for a fast page. Prints one line the runner parses.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  other = 0
end

function response(status, headers, body)
  if status ~= 200 then
    other = other + 1
  end
end

function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do
    total = total + thread:get("other")
  end
  io.write(string.format("BENCH not_200=%d\n", total))
end
