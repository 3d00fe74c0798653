"""The Celery broker transport for Redis (``CELERY_BROKER_TRANSPORT`` in distributed mode): kombu's
own, with one fix that keeps workers alive through a Redis restart.

When a worker loses Redis while tasks run, Celery drops the broken connection, but the channel
still has work that needs Redis: pushing the unacked messages of running tasks back at close
(``acks_late``), and acking each task that finishes later. kombu then builds a Redis client from
a connection that is gone and fails with ``AttributeError``, which Celery treats as an
"Unrecoverable error": the worker shuts down for good (Celery and kombu 5.7). Here that case
raises Redis's own ``ConnectionError`` instead, which Celery expects from a broker that is down:
it logs it, and the worker reconnects once Redis is back. Nothing is lost: those messages went
down with Redis, the database is the truth, and the reaper resends runs that lost their message.
"""

from __future__ import annotations

from kombu.transport import redis
from redis.exceptions import ConnectionError as RedisConnectionError


class Channel(redis.Channel):
    def _connparams(self, asynchronous: bool = False) -> dict:
        if self.connection is None or self.connection.client is None:
            raise RedisConnectionError("the connection to the broker was closed")
        return super()._connparams(asynchronous=asynchronous)


class RedisTransport(redis.Transport):
    Channel = Channel
