import { MAX_DISTINCT, MAX_EMPTY_BUCKETS } from "./limits.js";

/**
 * The Lua script that runs every store op of one batch in one round trip (EVALSHA). Kept as a
 * string so the built package needs no extra files. Its semantics mirror memory-store.ts; the
 * contract suite (test/helpers/store-contract.ts) holds both to the same promises.
 *
 * Needs Redis 6.2+ (SET ... GET). The script reads TIME and then writes, which Redis allows
 * since 5.0 because scripts replicate their effects, not the script itself. Its bounds come
 * from limits.ts, as the memory store's do.
 */
export const STORE_SCRIPT = `
-- riskgate: every store op of one batch in one round trip.
-- KEYS[i] is op i's key (all in one hash slot on Redis Cluster).
-- ARGV[1] = every op's type and numeric params, comma-separated, in op order ("w,60000,1,c,...");
-- ARGV[2..] = the ops' string params (members, values), in op order: a few arguments instead of
-- one per param, and no string needs escaping.
-- The clock is the Redis server's own (TIME): replicas with drifting clocks share one notion
-- of "this window", and all keys of one tag live on one server, so they see one clock.
-- Returns a flat array: window and limited window -> count, reset_ms; count/distinct -> count;
-- swap/get -> has_previous (0/1), previous or ""; member/has -> is_new (0/1), size;
-- baseline -> current, mean (string), variance (string), samples.
-- Fractions go back as strings: Redis would truncate Lua numbers to integers.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
local P = {}
for tok in string.gmatch(ARGV[1], '[^,]+') do P[#P + 1] = tok end
local a = 1
local si = 1
-- the next string param
local function str()
  si = si + 1
  return ARGV[si]
end
local MAX_DISTINCT = ${MAX_DISTINCT}
local MAX_EMPTY = ${MAX_EMPTY_BUCKETS}

-- a value that may be absent: 1 and the value, or 0 and ''
local function optional(v)
  if v then
    out[#out + 1] = 1
    out[#out + 1] = v
  else
    out[#out + 1] = 0
    out[#out + 1] = ''
  end
end

-- the index of a limited window's first time still in the window (after edge), given that the
-- oldest one (index 0) has left it and the newest one (index n - 1) has not. A steady stream has
-- only a few times leave between two requests, so the next oldest few are read first (cheap:
-- LINDEX walks from the nearer end); past those, a binary search, as the times are in order
local function firstInWindow(key, n, edge)
  local near = math.min(n - 1, 8)
  for i = 1, near - 1 do
    if tonumber(redis.call('LINDEX', key, i)) > edge then return i end
  end
  if near == n - 1 then return near end
  local lo, hi = near - 1, n - 1 -- lo has left the window, hi has not
  while hi - lo > 1 do
    local mid = math.floor((lo + hi) / 2)
    if tonumber(redis.call('LINDEX', key, mid)) > edge then hi = mid else lo = mid end
  end
  return hi
end

-- keeps the max most recently seen members of a sorted set; returns its size after
local function trim(key, max)
  local n = redis.call('ZCARD', key)
  if n <= max then return n end
  redis.call('ZREMRANGEBYRANK', key, 0, n - max - 1)
  return max
end

for i = 1, #KEYS do
  local key = KEYS[i]
  local op = P[a]
  if op == 'w' then
    -- sliding window counter: hash { s = current window start, c = its count, p = previous count }
    local window = tonumber(P[a + 1])
    local cost = tonumber(P[a + 2])
    a = a + 3
    local start = now - (now % window)
    local h = redis.call('HMGET', key, 's', 'c', 'p')
    local s, c, p = tonumber(h[1]), tonumber(h[2]) or 0, tonumber(h[3]) or 0
    if s == nil then
      c, p = 0, 0
    elseif s < start then
      if s == start - window then p = c else p = 0 end
      c = 0
    else
      start = s -- a server clock that stepped back stays in the stored window
    end
    c = c + cost
    if cost > 0 then
      -- cost 0 only reads: no write, and no key for someone never counted
      redis.call('HSET', key, 's', start, 'c', c, 'p', p)
      redis.call('PEXPIREAT', key, start + 2 * window)
    end
    local elapsed = math.max(0, now - start)
    out[#out + 1] = c + math.floor(p * (window - elapsed) / window)
    out[#out + 1] = start + window - now
  elseif op == 'L' or op == 'l' then
    -- limited window, exact: a list of the times of the newest counted requests (at most limit),
    -- oldest first. 'L' counts this request, 'l' only reads. A time at or before now - window
    -- has left the window. Fewer than limit times in the window are all in the list, and limit
    -- of them there means the limit is reached, so the count is exact up to the limit.
    local window = tonumber(P[a + 1])
    local limit = tonumber(P[a + 2])
    a = a + 3
    local edge = now - window
    local n = redis.call('LLEN', key)
    -- the oldest time first: when it is still in the window (the usual case) nothing has left,
    -- and a read needs no other
    local newest = nil
    if n > 0 and tonumber(redis.call('LINDEX', key, 0)) <= edge then
      newest = tonumber(redis.call('LINDEX', key, -1))
      if newest <= edge then
        redis.call('DEL', key)
        n, newest = 0, nil
      else
        local gone = firstInWindow(key, n, edge)
        redis.call('LTRIM', key, gone, -1)
        n = n - gone
      end
    end
    local count = math.min(n, limit)
    if op == 'L' then
      count = count + 1
      -- a server clock that stepped back never reorders the list: the time stays at the newest
      if newest == nil and n > 0 then newest = tonumber(redis.call('LINDEX', key, -1)) end
      local at = now
      if newest ~= nil and newest > now then at = newest end
      n = redis.call('RPUSH', key, at)
      if n > limit then
        redis.call('LTRIM', key, n - limit, -1)
        n = limit
      end
      -- gone when its newest time leaves the window
      redis.call('PEXPIREAT', key, at + window)
    end
    out[#out + 1] = count
    -- room for one more once the limit-th newest time has left the window
    if n >= limit then
      out[#out + 1] = tonumber(redis.call('LINDEX', key, n - limit)) + window - now
    else
      out[#out + 1] = 0
    end
  elseif op == 'c' then
    local cost = tonumber(P[a + 1])
    local ttl = tonumber(P[a + 2])
    a = a + 3
    local n = redis.call('INCRBY', key, cost)
    -- the TTL is set once, when the key is created (a quota period does not slide)
    if redis.call('PTTL', key) < 0 then redis.call('PEXPIRE', key, ttl) end
    out[#out + 1] = n
  elseif op == 'd' then
    -- distinct members: sorted set scored by last sighting
    local member = str()
    local window = tonumber(P[a + 1])
    a = a + 2
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
    redis.call('ZADD', key, now, member)
    local n = trim(key, MAX_DISTINCT)
    redis.call('PEXPIRE', key, window)
    out[#out + 1] = n
  elseif op == 's' then
    local value = str()
    local ttl = tonumber(P[a + 1])
    a = a + 2
    optional(redis.call('SET', key, value, 'PX', ttl, 'GET'))
  elseif op == 'g' then
    -- read what 's' stored, without writing
    a = a + 1
    optional(redis.call('GET', key))
  elseif op == 'h' then
    -- membership of an 'm' set, without adding (no key created, TTL untouched)
    local member = str()
    a = a + 1
    local isNew = redis.call('ZSCORE', key, member) == false
    out[#out + 1] = isNew and 1 or 0
    out[#out + 1] = redis.call('ZCARD', key)
  elseif op == 'm' then
    -- bounded set: sorted set scored by last sighting, the stalest evicted past max
    local member = str()
    local ttl = tonumber(P[a + 1])
    local max = tonumber(P[a + 2])
    a = a + 3
    local isNew = redis.call('ZADD', key, now, member) == 1 -- 1: added, 0: score updated
    local n = trim(key, max)
    redis.call('PEXPIRE', key, ttl)
    out[#out + 1] = isNew and 1 or 0
    out[#out + 1] = n
  elseif op == 'b' then
    -- baseline: hash { b = open bucket, c = its count, m = mean, v = variance, n = samples }
    local bucketMs = tonumber(P[a + 1])
    local alpha = tonumber(P[a + 2])
    local ttl = tonumber(P[a + 3])
    local cost = tonumber(P[a + 4])
    a = a + 5
    local bucket = math.floor(now / bucketMs)
    local h = redis.call('HMGET', key, 'b', 'c', 'm', 'v', 'n')
    local b = tonumber(h[1])
    local c, m, v, n = tonumber(h[2]) or 0, tonumber(h[3]) or 0, tonumber(h[4]) or 0, tonumber(h[5]) or 0
    local function fold(count)
      if n == 0 then
        m, v = count, 0
      else
        local diff = count - m
        local incr = alpha * diff
        m = m + incr
        v = (1 - alpha) * (v + diff * incr)
      end
      n = n + 1
    end
    -- a read (cost 0) of an existing key in its open bucket changes nothing but the TTL
    local same = b ~= nil and bucket <= b and cost == 0
    if b == nil then
      b, c = bucket, 0
    elseif bucket > b then
      fold(c)
      local empty = math.min(MAX_EMPTY, bucket - b - 1)
      for _ = 1, empty do fold(0) end
      b, c = bucket, 0
    end
    c = c + cost
    -- %.17g keeps every bit of the doubles (tostring would round to 14 digits)
    local ms, vs = string.format('%.17g', m), string.format('%.17g', v)
    if not same then redis.call('HSET', key, 'b', b, 'c', c, 'm', ms, 'v', vs, 'n', n) end
    redis.call('PEXPIRE', key, ttl)
    out[#out + 1] = c
    out[#out + 1] = ms
    out[#out + 1] = vs
    out[#out + 1] = n
  else
    return redis.error_reply('riskgate: unknown op ' .. tostring(op))
  end
end
return out
`;
