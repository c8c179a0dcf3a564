"""Billing runs in one process; the shop calls it through a tunnel as if it were local."""

from __future__ import annotations

import datetime as dt
from typing import Any

from runner.errors import RunnerError


class CardDeclined(RunnerError):
    """A typed error: it crosses the tunnel with its code and status (402)."""

    code = "billing.card_declined"
    http_status = 402


def charge(input: dict[str, Any]) -> dict[str, Any]:
    if input["card"].endswith("0002"):
        raise CardDeclined(f"card ending {input['card'][-4:]} was declined")
    return {
        "charged": input["amount"],
        "currency": input.get("currency", "EUR"),
        "at": dt.datetime.now(dt.UTC),  # a datetime: a Date on the wire
    }


async def checkout(input: dict[str, Any], charge: Any) -> dict[str, Any]:
    """The shop's task: it depends on `billing.charge`, which runs on the billing side."""
    receipt = await charge({"amount": input["total"], "card": input["card"]})
    paid_at: dt.datetime = receipt["at"]  # came back a datetime
    return {"order": input["order"], "paid": receipt["charged"], "paid_at": paid_at.isoformat()}
