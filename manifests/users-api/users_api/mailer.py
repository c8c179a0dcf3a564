"""The mailer resource: "sends" by queueing into the outbox table (a worker would
deliver; GET /admin/outbox shows the queue)."""

from __future__ import annotations

from typing import Any

from .store import Store


class Mailer:
    def __init__(self, store: Store, sender: str) -> None:
        self.store, self.sender = store, sender

    async def send(self, to: str, subject: str, body: str) -> None:
        await self.store.queue_mail(to, subject, f"{body}\n\n-- {self.sender}")


def make_mailer(config: dict[str, Any], store: Store) -> Mailer:
    return Mailer(store, str(config.get("sender", "users-api")))
