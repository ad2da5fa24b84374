#!lua name=xinyi_loans
-- Atomic steps of the loan workflow (gateway/store/redis/loans.py). Each
-- function touches the keys of one product or one demand, which share a hash
-- tag, so they run in one slot of a cluster.

-- KEYS[1] product hash (v, head, <version>...); ARGV: version, body.
local function product_create(keys, args)
  if redis.call('EXISTS', keys[1]) == 1 then
    return 0
  end
  redis.call('HSET', keys[1], 'v', args[1], 'head', args[2], args[1], args[2])
  return 1
end

-- KEYS[1] product hash; ARGV: expected head version, new version, body.
local function product_save(keys, args)
  if redis.call('HGET', keys[1], 'v') ~= args[1] then
    return 0
  end
  redis.call('HSET', keys[1], 'v', args[2], 'head', args[3], args[2], args[3])
  return 1
end

-- KEYS[1] demand hash (body, status, closed_at); ARGV: closed_at. Returns the
-- status the demand has afterwards, or false when there is no such demand.
local function demand_close(keys, args)
  local status = redis.call('HGET', keys[1], 'status')
  if not status then
    return false
  end
  if status == 'open' then
    redis.call('HSET', keys[1], 'status', 'closed', 'closed_at', args[1])
    return 'closed'
  end
  return status
end

-- KEYS[1] demand hash, KEYS[2] its responses list; ARGV: response JSON.
local function respond(keys, args)
  if redis.call('HGET', keys[1], 'status') ~= 'open' then
    return 0
  end
  redis.call('RPUSH', keys[2], args[1])
  return 1
end

redis.register_function('xinyi_loans_product_create', product_create)
redis.register_function('xinyi_loans_product_save', product_save)
redis.register_function('xinyi_loans_demand_close', demand_close)
redis.register_function('xinyi_loans_respond', respond)
