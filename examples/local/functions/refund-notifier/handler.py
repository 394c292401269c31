"""Looks a refund up at the payment provider and says whom to notify."""


def handler(event, context):
    refund = context.dependency("payments-api").get(f"/refunds/{event['refund']}")
    return {"refund": event["refund"], "status": refund, "notify": True}
