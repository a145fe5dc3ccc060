"""The shared crawl's Redis key schema and the Lua scripts that change it atomically.

Redis keys of the frontier (the crawl state's are in ``archive.state_redis``), with
``B`` = ``<prefix>:<spider>`` (``postarc:feeds``):

==========================  ======  =========================================================
``B:requests``              zset    the queue (scrapy-redis ``PriorityQueue``)
``B:run``                   string  the current run (absent between runs)
``B:dupefilter:<run>``      set     request fingerprints seen in the run (scrapy-redis)
``B:feeds:<run>``           set     sources whose feed a worker took in the run
``B:lost:<run>``            set     sources with a post lost to an error or archived incomplete
``B:workers``               set     the run's workers
``B:leases:<worker>``       hash    requests a worker took from the queue and has not finished
``B:starting:<worker>``     string  the worker is still reading its start requests
==========================  ======  =========================================================

Every script that takes requests back from dead workers shares ``REQUEUE``; the frontier
(``crawler.shared.frontier``) and the queue (``crawler.shared.queue``) register them.
"""

from __future__ import annotations

# Put back in the queue the leased requests of dead workers (and of ARGV[3], a worker
# leaving or a new process that has an old one's id), and strike them from the run.
REQUEUE = """
local function requeue(workers, queue, base, alive, me)
  local n = 0
  for _, w in ipairs(redis.call('SMEMBERS', workers)) do
    if w == me or redis.call('EXISTS', alive .. w) == 0 then
      local leases = base .. ':leases:' .. w
      for _, v in ipairs(redis.call('HVALS', leases)) do
        local at = string.find(v, ' ', 1, true)
        redis.call('ZADD', queue, string.sub(v, 1, at - 1), string.sub(v, at + 1))
        n = n + 1
      end
      redis.call('DEL', leases, base .. ':starting:' .. w)
      redis.call('SREM', workers, w)
    end
  end
  return n
end
"""
# KEYS: workers, queue; ARGV: base, alive prefix, worker to requeue as if dead ('' for none).
REAP = REQUEUE + "return requeue(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3])"
# KEYS: workers, queue, run, alive key, starting key; ARGV: base, alive prefix, me, new run, ttl.
JOIN = REQUEUE + """
local n = requeue(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3])
redis.call('SET', KEYS[4], '1', 'PX', ARGV[5])
redis.call('SET', KEYS[5], '1')
local run = redis.call('GET', KEYS[3])
if not run then
  run = ARGV[4]
  redis.call('SET', KEYS[3], run)
end
redis.call('SADD', KEYS[1], ARGV[3])
return {run, n}
"""
# KEYS: workers, queue, run, alive key; ARGV: base, alive prefix, me. Returns the run if it ended.
LEAVE = REQUEUE + """
requeue(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3])
redis.call('DEL', KEYS[4])
if redis.call('SCARD', KEYS[1]) > 0 or redis.call('ZCARD', KEYS[2]) > 0 then
  return false
end
local run = redis.call('GET', KEYS[3])
if run then
  redis.call('DEL', KEYS[3], ARGV[1] .. ':dupefilter:' .. run, ARGV[1] .. ':feeds:' .. run,
             ARGV[1] .. ':lost:' .. run)
end
return run
"""
# KEYS: workers, queue; ARGV: base, alive prefix, me. 1 if there is or may come work.
BUSY = """
if redis.call('ZCARD', KEYS[2]) > 0 then
  return 1
end
for _, w in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if w ~= ARGV[3] and redis.call('EXISTS', ARGV[2] .. w) == 1 and
     (redis.call('HLEN', ARGV[1] .. ':leases:' .. w) > 0 or
      redis.call('EXISTS', ARGV[1] .. ':starting:' .. w) == 1) then
    return 1
  end
end
return 0
"""
# KEYS: queue, lease hash. Take the first request and lease it, in one step: no moment when
# a request is neither queued nor leased (another worker would think the crawl over).
POP = """
local top = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #top == 0 then
  return false
end
redis.call('ZREM', KEYS[1], top[1])
local lease = redis.sha1hex(top[1])
redis.call('HSET', KEYS[2], lease, top[2] .. ' ' .. top[1])
return {lease, top[1]}
"""


class FrontierKeys:
    """The frontier's key names for one spider under one prefix (the table above)."""

    def __init__(self, prefix: str, spider: str, queue: str) -> None:
        self.base = f"{prefix}:{spider}"
        self.queue = queue
        self.run = f"{self.base}:run"
        self.workers = f"{self.base}:workers"

    def leases(self, worker: str) -> str:
        return f"{self.base}:leases:{worker}"

    def starting(self, worker: str) -> str:
        return f"{self.base}:starting:{worker}"

    def dupefilter(self, run: str) -> str:
        return f"{self.base}:dupefilter:{run}"

    def feeds(self, run: str) -> str:
        return f"{self.base}:feeds:{run}"

    def lost(self, run: str) -> str:
        return f"{self.base}:lost:{run}"
