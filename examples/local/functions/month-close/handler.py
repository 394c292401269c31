"""Closes a month account by account; the progress is the state a next invocation carries on from."""

import hashlib
import time

from tuner_handler import handover

LEDGER_READ_S = 0.1  # one account's entries, read from the ledger


def balance_cents(month, account):
    """The account's closing balance (a stand-in for reading and summing its entries)."""
    time.sleep(LEDGER_READ_S)
    digest = hashlib.sha256(f"{month}/{account}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % 1_000_000 - 500_000


@handover
def handler(event, context):
    context.state.setdefault("total_cents", 0)
    accounts = [f"acct-{n:03d}" for n in range(int(event["accounts"]))]
    for account in context.each(accounts):  # a checkpoint before each account
        context.state["total_cents"] += balance_cents(event["month"], account)
    return {
        "month": event["month"],
        "accounts": len(accounts),
        "total_cents": context.state["total_cents"],
    }
