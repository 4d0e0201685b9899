-- Floodgate: decide every item of one rate-limit request, all or nothing.
--
-- A port of floodgate-limiter's pure algorithms (crates/limiter/src/algo.rs)
-- and of the store semantics of `decide_all` (ADR 0003): the request is
-- admitted only if every non-shadow item admits it; a rejected request
-- consumes from none of its keys, while refunds and releases still apply;
-- items sharing a key share one state and are decided in order. Only a
-- consumption that was admitted creates a key. Time is the caller's `now`,
-- never Redis TIME. See docs/adr/0006-redis-data-layout.md.
--
-- Lua 5.1 numbers are doubles, exact only below 2^53, while the core works
-- in u64 nanoseconds. So a u64 travels and rests as exactly 16 lower-case
-- hex digits, and is parsed once into a pair {high 32 bits, low 32 bits}
-- (each exact in a double) for arithmetic. The sliding window's u128
-- products use arrays of base-2^24 limbs ("wide" numbers, least
-- significant first, no leading zero limbs).
--
-- KEYS: the request's distinct counter keys.
-- ARGV[1]: now (u64). ARGV[2]: TTL grace (decimal ms).
-- Then per item: key index (decimal, into KEYS), algorithm (w fixed window,
-- g token bucket, s sliding window, c concurrency), cost (c consume,
-- r refund, l release), amount (u64: hits, or the lease id), shadow (1/0),
-- then the algorithm's parameters, computed by the caller from the rate:
--   w: limit, period, window start of now
--   g: capacity (burst x emission interval, at most u64::MAX),
--      amount x emission interval (or "inf" beyond u64::MAX)
--   s: limit, period, window start of now, limit x period (hex, any width),
--      period (decimal seconds)
--   c: limit, lease time-to-live
-- (u64: 16 hex digits.) Returns {admitted (1/0), the value each key held
-- before (or "")}: the caller replays the pure core on those states to
-- build the verdicts.

local TWO32 = 4294967296
local ZERO = { 0, 0 }
local ONE = { 0, 1 }
local MAX = { TWO32 - 1, TWO32 - 1 } -- Nanos::MAX, u64::MAX

-- ---- u64: pairs {high, low} -------------------------------------------------

local function u64(s)
  local h, l
  if #s == 16 then
    h, l = tonumber(string.sub(s, 1, 8), 16), tonumber(string.sub(s, 9, 16), 16)
  end
  if not h or not l then
    error('floodgate: malformed number ' .. s)
  end
  return { h, l }
end

local function hex(a)
  return string.format('%08x%08x', a[1], a[2])
end

local function eq(a, b)
  return a[1] == b[1] and a[2] == b[2]
end

local function lt(a, b)
  if a[1] ~= b[1] then
    return a[1] < b[1]
  end
  return a[2] < b[2]
end

local function max(a, b)
  if lt(a, b) then
    return b
  end
  return a
end

local function min(a, b)
  if lt(a, b) then
    return a
  end
  return b
end

-- a + b, and whether it overflowed u64 (the sum is then MAX: saturating).
local function add(a, b)
  local h, l = a[1] + b[1], a[2] + b[2]
  if l >= TWO32 then
    l = l - TWO32
    h = h + 1
  end
  if h >= TWO32 then
    return MAX, true
  end
  return { h, l }, false
end

-- a - b, or zero when b >= a (the core's saturating_sub).
local function sub(a, b)
  if not lt(b, a) then
    return ZERO
  end
  local h, l = a[1] - b[1], a[2] - b[2]
  if l < 0 then
    l = l + TWO32
    h = h - 1
  end
  return { h, l }
end

-- ceil(a / 1e6), as a plain number (below 2^45).
local function ceil_ms(a)
  local h, l = a[1], a[2]
  local qh = math.floor(h / 1000000)
  local v = (h - qh * 1000000) * TWO32 + l -- below 1e6 * 2^32 + 2^32 < 2^53
  local ql = math.floor(v / 1000000)
  local ms = qh * TWO32 + ql
  if v - ql * 1000000 > 0 then
    ms = ms + 1
  end
  return ms
end

-- ---- wide numbers (sliding window products) ---------------------------------

local B = 16777216 -- 2^24

local function trim(n)
  local k = #n
  while k > 0 and n[k] == 0 do
    n[k] = nil
    k = k - 1
  end
  return n
end

-- Any-width hex (the caller's limit x period) as limbs.
local function wide_hex(h)
  local n, i = {}, #h
  while i > 0 do
    local j = math.max(i - 5, 1)
    local limb = tonumber(string.sub(h, j, i), 16)
    if not limb then
      error('floodgate: malformed number ' .. h)
    end
    n[#n + 1] = limb
    i = j - 1
  end
  return trim(n)
end

-- A u64 as limbs: bits 0-23, 24-47 (8 from the low half, 16 from the high
-- half), 48-63.
local function wide(a)
  local h, l = a[1], a[2]
  local l0 = l % B
  local h0 = h % 65536
  return trim({ l0, (l - l0) / B + h0 * 256, (h - h0) / 65536 })
end

-- Back to a u64 (the value fits).
local function narrow(n)
  local v0, v1, v2 = n[1] or 0, n[2] or 0, n[3] or 0
  return { (v1 - v1 % 256) / 256 + v2 * 65536, v0 + (v1 % 256) * B }
end

local function wcmp(a, b)
  if #a ~= #b then
    return #a < #b and -1 or 1
  end
  for i = #a, 1, -1 do
    if a[i] ~= b[i] then
      return a[i] < b[i] and -1 or 1
    end
  end
  return 0
end

local function wadd(a, b)
  local r, carry = {}, 0
  local k = math.max(#a, #b)
  for i = 1, k do
    local v = (a[i] or 0) + (b[i] or 0) + carry
    if v >= B then
      r[i] = v - B
      carry = 1
    else
      r[i] = v
      carry = 0
    end
  end
  if carry > 0 then
    r[k + 1] = carry
  end
  return r
end

-- Every partial sum stays below 2^50: exact in doubles.
local function wmul(a, b)
  local na, nb = #a, #b
  if na == 0 or nb == 0 then
    return {}
  end
  local r = {}
  for i = 1, na + nb do
    r[i] = 0
  end
  for i = 1, na do
    local ai, carry = a[i], 0
    for j = 1, nb do
      local v = r[i + j - 1] + ai * b[j] + carry
      carry = math.floor(v / B)
      r[i + j - 1] = v - carry * B
    end
    local k = i + nb
    while carry > 0 do
      local v = r[k] + carry
      carry = math.floor(v / B)
      r[k] = v - carry * B
      k = k + 1
    end
  end
  return trim(r)
end

-- Floor division by a plain number d <= 2^29 (rem * 2^24 + limb stays
-- below 2^53).
local function wdiv(a, d)
  local q, rem = {}, 0
  for i = #a, 1, -1 do
    local v = rem * B + a[i]
    local digit = math.floor(v / d)
    q[i] = digit
    rem = v - digit * d
  end
  return trim(q)
end

-- The start of the window of `period` (`secs` whole seconds) holding `x`:
-- x - x % period, by x / 2^9 / 5^9 / secs (each divisor fits wdiv).
local function window_start(x, secs, period)
  local q = wdiv(wdiv(wdiv(wide(x), 512), 1953125), secs)
  return narrow(wmul(q, wide(period)))
end

-- ---- states ---------------------------------------------------------------
-- A state is an immutable table (algorithms build new ones), so a request's
-- working copies and the stored originals can share parts.

local function parse(value)
  local f = {}
  for part in string.gmatch(value, '[^:]+') do
    f[#f + 1] = part
  end
  local a, n = f[1], #f
  for i = 2, n do
    f[i] = u64(f[i])
  end
  if a == 'w' and n == 3 then
    return { alg = 'w', start = f[2], count = f[3] }
  elseif a == 'g' and n == 3 then
    return { alg = 'g', tat = f[2], seen = f[3] }
  elseif a == 's' and n == 5 then
    return { alg = 's', start = f[2], previous = f[3], current = f[4], seen = f[5] }
  elseif a == 'c' and n >= 3 and (n - 3) % 3 == 0 then
    local held = {}
    for i = 4, n, 3 do
      held[#held + 1] = { id = f[i], units = f[i + 1], exp = f[i + 2] }
    end
    return { alg = 'c', next_id = f[2], seen = f[3], held = held }
  end
  error('floodgate: malformed state ' .. value)
end

local function encode(st)
  if st.alg == 'w' then
    return 'w:' .. hex(st.start) .. ':' .. hex(st.count)
  elseif st.alg == 'g' then
    return 'g:' .. hex(st.tat) .. ':' .. hex(st.seen)
  elseif st.alg == 's' then
    return 's:' .. hex(st.start) .. ':' .. hex(st.previous) .. ':' .. hex(st.current) .. ':'
      .. hex(st.seen)
  end
  local parts = { 'c', hex(st.next_id), hex(st.seen) }
  for _, lease in ipairs(st.held) do
    parts[#parts + 1] = hex(lease.id)
    parts[#parts + 1] = hex(lease.units)
    parts[#parts + 1] = hex(lease.exp)
  end
  return table.concat(parts, ':')
end

-- KeyState::expires_at: after it the state is equivalent to empty.
local function expires_at(st, it)
  if st.alg == 'w' then
    return (add(st.start, it.period))
  elseif st.alg == 'g' then
    return st.tat
  elseif st.alg == 's' then
    return (add((add(st.start, it.period)), it.period))
  end
  local latest = ZERO
  for _, lease in ipairs(st.held) do
    latest = max(latest, lease.exp)
  end
  return latest
end

-- ---- algorithms -------------------------------------------------------------
-- Each takes (item, state or nil, now) and returns (admitted, new state),
-- exactly as floodgate_limiter::decide does.

local function fixed_window(it, st, now)
  local current = it.window
  local start, count = current, ZERO
  if st then
    start, count = st.start, st.count
  end
  -- A clock behind the stored window keeps using the stored window.
  if lt(start, current) then
    start, count = current, ZERO
  end
  local admitted = true
  if it.kind == 'c' then
    local total, over = add(count, it.amount)
    admitted = not over and not lt(it.limit, total)
    if admitted then
      count = total
    end
  elseif it.kind == 'r' then
    count = sub(count, it.amount)
  end
  return admitted, { alg = 'w', start = start, count = count }
end

local function token_bucket(it, st, now)
  local tat, seen = now, now
  if st then
    tat, seen = st.tat, st.seen
  end
  local n = max(now, seen)
  local base = max(tat, n)
  local admitted, new_tat = true, base
  if it.kind == 'c' then
    local candidate, over = MAX, true
    if it.scaled then
      candidate, over = add(base, it.scaled)
    end
    if not over and not lt(it.capacity, sub(candidate, n)) then
      new_tat = candidate
    else
      admitted = false
    end
  elseif it.kind == 'r' then
    -- Never before now: the bucket cannot hold more than its capacity.
    local back = ZERO
    if it.scaled then
      back = sub(base, it.scaled)
    end
    new_tat = max(back, n)
  end
  return admitted, { alg = 'g', tat = new_tat, seen = n }
end

local function sliding_window(it, st, now)
  local period = it.period
  local start, previous, current, seen = it.window, ZERO, ZERO, now
  if st then
    start, previous, current, seen = st.start, st.previous, st.current, st.seen
  end
  local n = max(max(now, seen), start)
  local aligned = it.window
  if not eq(n, now) then
    aligned = window_start(n, it.secs, period)
  end
  if lt(start, aligned) then
    if eq(sub(aligned, start), period) then
      previous = current
    else
      previous = ZERO
    end
    current = ZERO
    start = aligned
  end
  local admitted = true
  if it.kind == 'c' then
    local total, over = add(current, it.amount)
    admitted = not over
    if admitted then
      -- The estimate scaled by period:
      -- previous * (period - elapsed) + total * period <= limit * period.
      local wperiod = wide(period)
      local carried = wmul(wide(previous), wide(sub(period, sub(n, start))))
      admitted = wcmp(wadd(carried, wmul(wide(total), wperiod)), it.scaled) <= 0
    end
    if admitted then
      current = total
    end
  elseif it.kind == 'r' then
    current = sub(current, it.amount)
  end
  return admitted, { alg = 's', start = start, previous = previous, current = current, seen = n }
end

local function concurrency(it, st, now)
  local held, next_id, seen = {}, ONE, now
  if st then
    held, next_id, seen = st.held, st.next_id, st.seen
  end
  local n = max(now, seen)
  -- Drop expired leases; one expiring at Nanos::MAX never expires.
  local kept, in_use = {}, ZERO
  for _, lease in ipairs(held) do
    if lt(n, lease.exp) or eq(lease.exp, MAX) then
      kept[#kept + 1] = lease
      in_use = add(in_use, lease.units)
    end
  end
  held = kept
  local admitted = true
  if it.kind == 'c' then
    if eq(it.amount, ZERO) then
      admitted = not lt(it.limit, in_use)
    else
      local total, over = add(in_use, it.amount)
      admitted = not over and not lt(it.limit, total)
      if admitted then
        held[#held + 1] = { id = next_id, units = it.amount, exp = (add(n, it.period)) }
        next_id = add(next_id, ONE)
      end
    end
  elseif it.kind == 'r' then
    -- Release the oldest leases first; a partial release shrinks one.
    local units, rest, i = it.amount, {}, 1
    while not eq(units, ZERO) and i <= #held do
      local oldest = held[i]
      if not lt(units, oldest.units) then
        units = sub(units, oldest.units)
      else
        rest[1] = { id = oldest.id, units = sub(oldest.units, units), exp = oldest.exp }
        units = ZERO
      end
      i = i + 1
    end
    for j = i, #held do
      rest[#rest + 1] = held[j]
    end
    held = rest
  elseif it.kind == 'l' then
    local rest = {}
    for _, lease in ipairs(held) do
      if not eq(lease.id, it.amount) then
        rest[#rest + 1] = lease
      end
    end
    held = rest
  end
  return admitted, { alg = 'c', held = held, next_id = next_id, seen = n }
end

local ALGORITHMS = { w = fixed_window, g = token_bucket, s = sliding_window, c = concurrency }

-- floodgate_limiter::decide: a state of another algorithm counts as empty.
local function decide(it, st, now)
  if st and st.alg ~= it.alg then
    st = nil
  end
  return ALGORITHMS[it.alg](it, st, now)
end

-- ---- the request ------------------------------------------------------------

local now = u64(ARGV[1])
local grace = tonumber(ARGV[2])

local items = {}
local o = 3
while o <= #ARGV do
  local it = {
    k = tonumber(ARGV[o]),
    alg = ARGV[o + 1],
    kind = ARGV[o + 2],
    amount = u64(ARGV[o + 3]),
    shadow = ARGV[o + 4] == '1',
  }
  if not it.k or not KEYS[it.k] then
    error('floodgate: bad key index ' .. tostring(ARGV[o]))
  end
  local p = o + 5
  if it.alg == 'w' then
    it.limit, it.period, it.window = u64(ARGV[p]), u64(ARGV[p + 1]), u64(ARGV[p + 2])
    o = p + 3
  elseif it.alg == 'g' then
    -- A cost beyond u64::MAX ("inf") has no pair: never admitted.
    it.capacity = u64(ARGV[p])
    if ARGV[p + 1] ~= 'inf' then
      it.scaled = u64(ARGV[p + 1])
    end
    o = p + 2
  elseif it.alg == 's' then
    it.limit, it.period, it.window = u64(ARGV[p]), u64(ARGV[p + 1]), u64(ARGV[p + 2])
    it.scaled, it.secs = wide_hex(ARGV[p + 3]), tonumber(ARGV[p + 4])
    o = p + 5
  elseif it.alg == 'c' then
    it.limit, it.period = u64(ARGV[p]), u64(ARGV[p + 1])
    o = p + 2
  else
    error('floodgate: unknown algorithm ' .. tostring(it.alg))
  end
  items[#items + 1] = it
end

local raw, stored, work, last = {}, {}, {}, {}
for k = 1, #KEYS do
  local value = redis.call('GET', KEYS[k])
  if value then
    raw[k] = value
    stored[k] = parse(value)
  else
    raw[k] = ''
  end
  work[k] = stored[k]
end

-- Writes a key's state with its TTL: the state's expiry (relative to the
-- caller's now), rounded up to whole milliseconds, plus the grace.
local function save(k, st)
  local value = encode(st)
  if value == raw[k] then
    return
  end
  local ttl = ceil_ms(sub(expires_at(st, last[k]), now)) + grace
  redis.call('SET', KEYS[k], value, 'PX', string.format('%.0f', ttl))
end

local admitted, creates = true, {}
for _, it in ipairs(items) do
  local ok, st = decide(it, work[it.k], now)
  work[it.k] = st
  last[it.k] = it
  if ok and it.kind == 'c' and not eq(it.amount, ZERO) then
    creates[it.k] = true
  end
  admitted = admitted and (ok or it.shadow)
end

if admitted then
  for k = 1, #KEYS do
    if stored[k] or creates[k] then
      save(k, work[k])
    end
  end
else
  -- Rejected: back to the stored states; refunds and releases still apply,
  -- then each item's quota is read as the request left it (which, like the
  -- memory store, brings a stored state up to now).
  local state = {}
  for k = 1, #KEYS do
    state[k] = stored[k]
  end
  for _, it in ipairs(items) do
    if it.kind ~= 'c' and state[it.k] then
      local _, st = decide(it, state[it.k], now)
      state[it.k] = st
    end
  end
  for _, it in ipairs(items) do
    if state[it.k] then
      local check = {}
      for field, value in pairs(it) do
        check[field] = value
      end
      check.kind, check.amount = 'c', ZERO
      if it.alg == 'g' then
        check.scaled = ZERO
      end
      local _, st = decide(check, state[it.k], now)
      state[it.k] = st
    end
  end
  for k = 1, #KEYS do
    if stored[k] then
      save(k, state[k])
    end
  end
end

local reply = { admitted and 1 or 0 }
for k = 1, #KEYS do
  reply[k + 1] = raw[k]
end
return reply
