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

-- Every redis.call costs a fixed overhead, and every write a function makes is
-- propagated (AOF, replicas) as a command of its own: a batch writes what it
-- can with one command per key, not one per record. Long lists of values (a
-- batch's, a subject's breaches) go in chunks so that unpack() stays far below
-- Lua's stack limit however long they are.
local CHUNK = 1000

-- A decision's admission (gateway/store/redis/admission.py) in one call: the
-- partner's rate limit, then, only if it passes, the consent, the
-- Idempotency-Key's state, claiming the key when no record of it exists, and
-- the subject's breached commitments still withholding (gateway/store/redis/
-- breaches.py: index ids scored from that day on, in score order, then their
-- bodies; the bodies share the index's slot, named by their key prefix).
-- KEYS: bucket, [consent], [idempotency record, idempotency lock], [breach index].
-- ARGV: interval (µs), burst, 1 when a consent is asked for, 1 when a key is,
--       the lock's time to live (ms), then when breaches are asked for: the
--       lowest score still withholding, the commitment key prefix.
-- Returns {wait µs, consent json or nil, idempotency record json or nil, 1 if claimed},
-- then, when breaches were asked for and the request passed, the breached
-- commitments' json (nil for one gone). The reply keeps its old shape when they
-- were not: a replica of the previous release reads it, and a previous
-- release's library answers a new replica without them (which then reads them
-- on its own).
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
  -- Read before the key is claimed: an error here leaves no claim behind (a
  -- function's writes are not undone when it fails). The index is the last key.
  local breached = nil
  if args[6] then
    breached = {}
    local ids = redis.call('ZRANGEBYSCORE', keys[#keys], args[6], '+inf')
    -- In chunks: unpack() of more than a few thousand names would overflow Lua's stack.
    for i = 1, #ids, CHUNK do
      local names = {}
      for j = i, math.min(i + CHUNK - 1, #ids) do
        names[#names + 1] = args[7] .. ids[j]
      end
      for _, raw in ipairs(redis.call('MGET', unpack(names))) do
        breached[#breached + 1] = raw
      end
    end
  end
  local record = false
  local claimed = 0
  if args[4] == '1' then
    record = redis.call('GET', keys[k])
    if not record and redis.call('SET', keys[k + 1], '1', 'NX', 'PX', args[5]) then
      claimed = 1
    end
  end
  if breached then
    return {0, consent, record, claimed, breached}
  end
  return {0, consent, record, claimed}
end

-- cmd [key] values…, in as few calls as CHUNK allows (values: a Lua list).
local function call_many(values, cmd, key)
  for i = 1, #values, CHUNK do
    local j = math.min(i + CHUNK - 1, #values)
    if key then
      redis.call(cmd, key, unpack(values, i, j))
    else
      redis.call(cmd, unpack(values, i, j))
    end
  end
end

-- Values gathered per key, keys in the order first seen (commands then run in
-- the order the records asked for them, per key).
local function grouped()
  return {order = {}, by = {}}
end

local function group_add(g, key, a, b)
  local t = g.by[key]
  if not t then
    t = {}
    g.by[key] = t
    g.order[#g.order + 1] = key
  end
  t[#t + 1] = a
  if b ~= nil then
    t[#t + 1] = b
  end
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
  local state = redis.call('HMGET', keys[1], 'seq', 'hash')
  local seq = state[1] or '0'
  local head = state[2] or args[3]
  if redis.call('EXISTS', keys[4]) == 1 then
    return {2, seq, head}
  end
  if seq ~= args[1] or head ~= args[2] then
    return {0, seq, head}
  end
  local now = tonumber(redis.call('TIME')[1])
  local n = tonumber(args[4])
  local log = {}
  local decisions = {}
  local indexes = grouped()
  local lists = {}
  local listed = {}
  for i = 0, n - 1 do
    local a = 8 + i * 7
    local k = 4 + i * 5
    log[#log + 1] = args[a]
    if args[a + 1] ~= '' then
      decisions[#decisions + 1] = keys[k]
      decisions[#decisions + 1] = args[a + 1]
    else
      -- A record that is not a decision: a marker by its record id, so a retried
      -- batch is still recognised (the EXISTS check above), kept a day.
      redis.call('SET', keys[k], '1', 'EX', 86400)
    end
    if args[a + 6] ~= '' then
      redis.call('SET', keys[k + 4], args[a + 6], 'EX', args[7])
    end
    if args[a + 2] ~= '' then
      -- Each token has its own time to live, so its SET stays one per token.
      local expires = tonumber(args[a + 4])
      redis.call('SET', keys[k + 1], args[a + 2], 'EX', math.max(expires - now, 1) + 60)
      group_add(indexes, keys[k + 2], args[a + 4], args[a + 3])
      group_add(indexes, keys[k + 3], args[a + 4], args[a + 3])
      if not listed[args[a + 5]] then
        listed[args[a + 5]] = true
        lists[#lists + 1] = args[a + 5]
      end
    end
  end
  call_many(log, 'RPUSH', keys[2])
  -- Decisions never expire: one MSET (keys of one slot, all declared in KEYS).
  if #decisions > 0 then
    call_many(decisions, 'MSET')
  end
  -- The same `now` for the whole batch, so pruning an index once after all its
  -- additions leaves what pruning it after each addition left.
  for _, key in ipairs(indexes.order) do
    call_many(indexes.by[key], 'ZADD', key)
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  end
  if #lists > 0 then
    call_many(lists, 'SADD', keys[3])
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
  for h = 2, 3 do
    local n = tonumber(args[i])
    local fields = {}
    for j = i + 1, i + 2 * n do
      fields[#fields + 1] = args[j]
    end
    call_many(fields, 'HSET', keys[h])
    i = i + 2 * n + 1
  end
  -- A subject may have several records in one step: its seqs go in one RPUSH, in order.
  local subjects = grouped()
  for k = 4, #keys do
    group_add(subjects, keys[k], args[i + k - 4])
  end
  for _, key in ipairs(subjects.order) do
    call_many(subjects.by[key], 'RPUSH', key)
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
