"""scrapy-redis's priority queue, leasing what it hands out (``crawler.shared.frontier``)."""

from __future__ import annotations

from typing import Any

from scrapy import Request
from scrapy_redis.queue import PriorityQueue

from crawler.protocol import LEASE_META
from crawler.shared import scripts


class LeaseQueue(PriorityQueue):
    """scrapy-redis's priority queue whose ``pop`` leases what it takes (``Frontier``)."""

    lease_key = ""  # set by SharedScheduler.open

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pop = self.server.register_script(scripts.POP)

    def pop(self, timeout: int = 0) -> Request | None:
        found = self._pop(keys=[self.key, self.lease_key])
        if not found:
            return None
        lease, data = found
        request = self._decode_request(data)
        request.meta[LEASE_META] = lease.decode()
        return request
