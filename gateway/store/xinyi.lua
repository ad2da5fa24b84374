#!lua name=xinyi
-- Server-side pieces of the Redis store (gateway/store/redis.py). Functions,
-- not EVALSHA scripts, because redis-py's cluster pipelines accept FCALL.

-- Large integers through tostring() turn into "1.7e+15": format them whole.
local function int(n)
  return string.format('%.0f', n)
end

local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

-- GCRA on one bucket: 0 when the request may pass (and is counted), else the µs
-- to wait. Redis's clock, so every gateway replica agrees.
local function gcra(key, interval, burst)
  local now = now_us()
  local tat = tonumber(redis.call('GET', key) or now)
  if tat < now then tat = now end
  local new_tat = tat + interval
  local excess = new_tat - now - interval * burst
  if excess > 0 then
    return int(excess)
  end
  -- A bucket is no decision: it stays out of the AOF and off the replicas, so
  -- it costs no fsync of its own (docs/redis.md). A restarted or failed-over
  -- Redis starts every partner with a full burst.
  redis.set_repl(redis.REPL_NONE)
  redis.call('SET', key, int(new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1000)
  redis.set_repl(redis.REPL_ALL)
  return 0
end

-- KEYS[1] the bucket; ARGV: interval (µs), burst. What gcra returns.
local function rate(keys, args)
  return gcra(keys[1], tonumber(args[1]), tonumber(args[2]))
end

-- A decision's admission (gateway/store/redis/admission.py) in one call: the
-- partner's rate limit, then, only if it passes, the consent and the
-- Idempotency-Key's state, claiming the key when no record of it exists.
-- KEYS: bucket, [consent], [idempotency record, idempotency lock].
-- ARGV: interval (µs), burst, 1 when a consent is asked for, 1 when a key is,
--       the lock's time to live (ms).
-- Returns {wait µs, consent json or nil, idempotency record json or nil, 1 if claimed}.
local function admit(keys, args)
  local wait = gcra(keys[1], tonumber(args[1]), tonumber(args[2]))
  if wait ~= 0 then
    return {wait, false, false, 0}
  end
  local k = 2
  local consent = false
  if args[3] == '1' then
    consent = redis.call('GET', keys[k])
    k = k + 1
  end
  local record = false
  local claimed = 0
  if args[4] == '1' then
    record = redis.call('GET', keys[k])
    if not record and redis.call('SET', keys[k + 1], '1', 'NX', 'PX', args[5]) then
      claimed = 1
    end
  end
  return {0, consent, record, claimed}
end

-- Append a batch of audit records with their decisions and tokens, all or nothing.
-- The client computed the hash chain from the head it knows (SHA-256 is not
-- available here); the batch is taken only if that head is still the head.
-- KEYS: head, log, lists registry, then per record: decision, token, subject index,
--       kid index, idempotency key.
-- ARGV: expected seq, expected hash, genesis, n, new seq, new hash, idempotency TTL (s),
--       then per record: record json, decision json ('' for a non-decision record), token json ('' when none), jti,
--       expires (s), list id, idempotency record json ('' when none).
-- Returns {1, seq, hash} when appended, {2, …} when this batch was already written
-- (a retry after a lost reply), {0, seq, hash} with the real head when it moved.
local function append(keys, args)
  local seq = redis.call('HGET', keys[1], 'seq') or '0'
  local head = redis.call('HGET', keys[1], 'hash') or args[3]
  if redis.call('EXISTS', keys[4]) == 1 then
    return {2, seq, head}
  end
  if seq ~= args[1] or head ~= args[2] then
    return {0, seq, head}
  end
  local now = tonumber(redis.call('TIME')[1])
  local n = tonumber(args[4])
  for i = 0, n - 1 do
    local a = 8 + i * 7
    local k = 4 + i * 5
    redis.call('RPUSH', keys[2], args[a])
    if args[a + 1] ~= '' then
      redis.call('SET', keys[k], args[a + 1])
    else
      -- A record that is not a decision: a marker by its record id, so a retried
      -- batch is still recognised (the EXISTS check above), kept a day.
      redis.call('SET', keys[k], '1', 'EX', 86400)
    end
    if args[a + 6] ~= '' then
      redis.call('SET', keys[k + 4], args[a + 6], 'EX', args[7])
    end
    if args[a + 2] ~= '' then
      local expires = tonumber(args[a + 4])
      redis.call('SET', keys[k + 1], args[a + 2], 'EX', math.max(expires - now, 1) + 60)
      redis.call('ZADD', keys[k + 2], args[a + 4], args[a + 3])
      redis.call('ZREMRANGEBYSCORE', keys[k + 2], '-inf', now)
      redis.call('ZADD', keys[k + 3], args[a + 4], args[a + 3])
      redis.call('ZREMRANGEBYSCORE', keys[k + 3], '-inf', now)
      redis.call('SADD', keys[3], args[a + 5])
    end
  end
  redis.call('HSET', keys[1], 'seq', args[5], 'hash', args[6])
  return {1, args[5], args[6]}
end

-- KEYS[1] a consent; ARGV[1] the revocation time. 1 when it exists, else 0.
local function revoke_consent(keys, args)
  local raw = redis.call('GET', keys[1])
  if not raw then
    return 0
  end
  local consent = cjson.decode(raw)
  if consent['revoked_at'] == nil or consent['revoked_at'] == cjson.null then
    consent['revoked_at'] = args[1]
    redis.call('SET', keys[1], cjson.encode(consent), 'KEEPTTL')
  end
  return 1
end

-- KEYS[1] a decision's feedback list; ARGV[1] the most it may hold, ARGV[2] the
-- item, ARGV[3] how long (s) the list is kept. 1 when appended, 0 when the list is full (checked and appended at once).
local function feedback(keys, args)
  if redis.call('LLEN', keys[1]) >= tonumber(args[1]) then
    return 0
  end
  redis.call('RPUSH', keys[1], args[2])
  -- Kept for the retention period from the latest feedback (retention.feedback_days).
  redis.call('EXPIRE', keys[1], args[3])
  return 1
end

-- Extend the audit tree (gateway/store/redis/audit_tree.py) if no replica did first.
-- KEYS: tree, nodes, decision index, then one key per subject index entry.
-- ARGV: old size, new size, frontier, node count, (field, hash)*, decision count,
--       (decision id, seq)*, then the seq for each subject key.
-- Returns 1 when applied, 0 when the stored size was not the old size.
local function tree_extend(keys, args)
  local size = redis.call('HGET', keys[1], 'size') or '0'
  if size ~= args[1] then
    return 0
  end
  local i = 4
  local n = tonumber(args[i])
  for j = 1, n do
    redis.call('HSET', keys[2], args[i + 2 * j - 1], args[i + 2 * j])
  end
  i = i + 2 * n + 1
  n = tonumber(args[i])
  for j = 1, n do
    redis.call('HSET', keys[3], args[i + 2 * j - 1], args[i + 2 * j])
  end
  i = i + 2 * n
  for k = 4, #keys do
    redis.call('RPUSH', keys[k], args[i + k - 3])
  end
  redis.call('HSET', keys[1], 'size', args[2], 'frontier', args[3])
  return 1
end

-- A lease one replica holds at a time (the audit tree builder's,
-- gateway/store/redis/audit_tree.py). KEYS[1] the lease; ARGV: holder, time to
-- live in ms, or 0 to give it up. Taking, renewing and giving up compare the
-- holder in the same call, so no replica renews or drops another's lease.
-- Returns 1 when the holder has the lease now, else 0.
local function lease(keys, args)
  local held = redis.call('GET', keys[1])
  if held and held ~= args[1] then
    return 0
  end
  -- A lease only saves work (the tree's own compare-and-set keeps it correct):
  -- like a rate-limit bucket it stays out of the AOF and off replicas, so a
  -- renewal costs no fsync. After a restart or a failover it is simply free.
  redis.set_repl(redis.REPL_NONE)
  if args[2] == '0' then
    if held then
      redis.call('DEL', keys[1])
    end
    redis.set_repl(redis.REPL_ALL)
    return 0
  end
  redis.call('SET', keys[1], args[1], 'PX', args[2])
  redis.set_repl(redis.REPL_ALL)
  return 1
end

-- Audit records after a seq, where the log list starts at seq base + 1 (records up to
-- base are archived). KEYS: log, base. ARGV: after seq, limit. Read atomically with
-- the base, so archiving between two commands cannot shift the page.
local function audit_range(keys, args)
  local base = tonumber(redis.call('GET', keys[2]) or '0')
  local start = math.max(tonumber(args[1]) - base, 0)
  return redis.call('LRANGE', keys[1], start, start + tonumber(args[2]) - 1)
end

-- Let archived records go. KEYS: log, base, decision index, nodes, checkpoints,
-- checkpoint sizes, then n decision keys, then subject index keys.
-- ARGV: upto, n, decision ids (n), node field count m, node fields (m).
local function audit_drop(keys, args)
  local upto = tonumber(args[1])
  local base = tonumber(redis.call('GET', keys[2]) or '0')
  if upto <= base then
    return 0
  end
  redis.call('LTRIM', keys[1], upto - base, -1)
  redis.call('SET', keys[2], args[1])
  local n = tonumber(args[2])
  for i = 1, n do
    redis.call('HDEL', keys[3], args[2 + i])
    redis.call('DEL', keys[6 + i])
  end
  local m = tonumber(args[3 + n])
  for i = 1, m do
    redis.call('HDEL', keys[4], args[3 + n + i])
  end
  for _, size in ipairs(redis.call('ZRANGEBYSCORE', keys[6], '-inf', '(' .. args[1])) do
    redis.call('HDEL', keys[5], size)
  end
  redis.call('ZREMRANGEBYSCORE', keys[6], '-inf', '(' .. args[1])
  for k = 7 + n, #keys do
    while true do
      local first = redis.call('LINDEX', keys[k], 0)
      if not first or tonumber(first) > upto then
        break
      end
      redis.call('LPOP', keys[k])
    end
  end
  return 1
end

redis.register_function('xinyi_rate', rate)
redis.register_function('xinyi_admit', admit)
redis.register_function('xinyi_feedback', feedback)
redis.register_function('xinyi_audit_range', audit_range)
redis.register_function('xinyi_audit_drop', audit_drop)
redis.register_function('xinyi_tree_extend', tree_extend)
redis.register_function('xinyi_lease', lease)
redis.register_function('xinyi_append', append)
redis.register_function('xinyi_revoke_consent', revoke_consent)
