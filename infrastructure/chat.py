"""Chat notifications: a Slack incoming webhook, or the log when none is configured."""

from __future__ import annotations

import logging

import httpx

log = logging.getLogger("apranova.chat")


class SlackWebhook:
    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url
        self.timeout = timeout

    def post(self, text: str) -> None:
        response = httpx.post(self.url, json={"text": text}, timeout=self.timeout)
        # A failure raises, so the worker retries and finally records it.
        response.raise_for_status()


class LogNotifier:
    def post(self, text: str) -> None:
        log.info("chat: %s", text)
