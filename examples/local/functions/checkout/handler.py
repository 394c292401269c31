"""Charges a cart: one call to the payment provider."""


def handler(event, context):
    charge = context.dependency("payments-api").get(f"/charges?cart={event['cart']}")
    return {"cart": event["cart"], "charge": charge}
