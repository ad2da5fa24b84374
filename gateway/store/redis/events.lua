#!lua name=xinyi_events
-- Server-side pieces of the outbox and commitments (gateway/store/redis/outbox.py,
-- commitments.py). Every key carries the {P:ev} hash tag: in a cluster they share
-- one slot, so a commitment's change and the events it emits are one atomic call.

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Queue items, due now. KEYS: due, items. ARGV: n, then id, json per item.
-- An id already queued is left as it is (a retried call adds nothing twice).
local function queue(due, items, args, first, n)
  local now = now_ms()
  for i = 0, n - 1 do
    local id = args[first + i * 2]
    if redis.call('HSETNX', items, id, args[first + i * 2 + 1]) == 1 then
      redis.call('ZADD', due, now, id)
    end
  end
end

local function ob_add(keys, args)
  queue(keys[1], keys[2], args, 2, tonumber(args[1]))
  return 1
end

-- Claim due items under a lease. KEYS: due, items. ARGV: lease (ms), limit.
-- Returns id, json, due score per item. The score moves to now + lease, so no
-- other replica sees the item due until the lease passes unacknowledged.
local function ob_claim(keys, args)
  local now = now_ms()
  local ids = redis.call('ZRANGEBYSCORE', keys[1], '-inf', now, 'WITHSCORES', 'LIMIT', 0,
    tonumber(args[2]))
  local out = {}
  for i = 1, #ids, 2 do
    local id = ids[i]
    local body = redis.call('HGET', keys[2], id)
    if body then
      redis.call('ZADD', keys[1], now + tonumber(args[1]), id)
      table.insert(out, id)
      table.insert(out, body)
      table.insert(out, ids[i + 1])
    else
      redis.call('ZREM', keys[1], id)
    end
  end
  return out
end

-- KEYS: due, items, dead. ARGV: the ids acknowledged.
local function ob_ack(keys, args)
  for _, id in ipairs(args) do
    redis.call('ZREM', keys[1], id)
    redis.call('ZREM', keys[3], id)
    redis.call('HDEL', keys[2], id)
  end
  return #args
end

-- A failed attempt. KEYS: due, items, dead. ARGV: id, json, delay (ms), dead (1|0).
-- 0 when the item is gone (acknowledged by another replica meanwhile).
local function ob_fail(keys, args)
  if redis.call('HEXISTS', keys[2], args[1]) == 0 then
    return 0
  end
  redis.call('HSET', keys[2], args[1], args[2])
  local now = now_ms()
  if args[4] == '1' then
    redis.call('ZREM', keys[1], args[1])
    redis.call('ZADD', keys[3], now, args[1])
  else
    redis.call('ZADD', keys[1], now + tonumber(args[3]), args[1])
  end
  return 1
end

-- A dead item back to pending, due now. KEYS: due, items, dead. ARGV: id, json.
local function ob_requeue(keys, args)
  if redis.call('ZREM', keys[3], args[1]) == 0 then
    return 0
  end
  redis.call('HSET', keys[2], args[1], args[2])
  redis.call('ZADD', keys[1], now_ms(), args[1])
  return 1
end

-- Register a commitment. KEYS: record, open index, partner's index (all),
-- partner's index for its status, partner's counts. ARGV: json, index member, kind.
-- 0 if the id exists.
local function cm_put(keys, args)
  if redis.call('SET', keys[1], args[1], 'NX') == false then
    return 0
  end
  redis.call('ZADD', keys[2], 0, args[2])
  redis.call('ZADD', keys[3], 0, args[2])
  redis.call('ZADD', keys[4], 0, args[2])
  redis.call('HINCRBY', keys[5], args[3] .. ':open', 1)
  return 1
end

-- Close an open commitment (fulfilled or breached) with the events it emits.
-- KEYS: record, open index, partner's open index, partner's index for the new
--       status, subject's breach index, outbox due, outbox items, partner's counts.
-- ARGV: new json, index member, commitment id, breach score ('' when not a breach),
--       n, then id, json per outbox item; then kind, new status.
-- 0 (and nothing written) unless the commitment is still open: of two replicas
-- sweeping at once, one closes it and emits, the other does nothing.
local function cm_close(keys, args)
  local raw = redis.call('GET', keys[1])
  if not raw then
    return 0
  end
  if cjson.decode(raw)['status'] ~= 'open' then
    return 0
  end
  local n = tonumber(args[5])
  local kind, status = args[6 + n * 2], args[7 + n * 2]
  redis.call('HINCRBY', keys[8], kind .. ':open', -1)
  redis.call('HINCRBY', keys[8], kind .. ':' .. status, 1)
  redis.call('SET', keys[1], args[1])
  redis.call('ZREM', keys[2], args[2])
  redis.call('ZREM', keys[3], args[2])
  redis.call('ZADD', keys[4], 0, args[2])
  if args[4] ~= '' then
    redis.call('ZADD', keys[5], tonumber(args[4]), args[3])
  end
  queue(keys[6], keys[7], args, 6, n)
  return 1
end

redis.register_function('xinyi_ob_add', ob_add)
redis.register_function('xinyi_ob_claim', ob_claim)
redis.register_function('xinyi_ob_ack', ob_ack)
redis.register_function('xinyi_ob_fail', ob_fail)
redis.register_function('xinyi_ob_requeue', ob_requeue)
redis.register_function('xinyi_cm_put', cm_put)
redis.register_function('xinyi_cm_close', cm_close)
