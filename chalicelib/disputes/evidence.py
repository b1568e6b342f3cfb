"""The evidence Mizani submits for a disputed order: what was shipped, how, when, and what customs
decided (Stripe's evidence fields; plain text, well under Stripe's 150,000 characters)."""
from __future__ import annotations


def evidence_for(order: dict) -> dict[str, str]:
    """Stripe ``evidence[...]`` fields from the order: product, carrier, tracking number, shipping date,
    and the customs decision with the escrow's story (``uncategorized_text``)."""
    lines = "; ".join(f"{line['quantity']} {line['unit']} {line['description']} (HS {line['hs_code']})"
                      for line in order["lines"])
    evidence = {"product_description": f"{lines}. Order {order['order_id']} on Mizani."[:2000]}
    shipment = order.get("shipment") or {}
    if shipment:
        evidence["shipping_carrier"] = shipment["carrier"]
        evidence["shipping_tracking_number"] = shipment["tracking_number"]
        shipped = next((e["at"] for e in order["timeline"] if e["status"] == "shipped"), None)
        if shipped:
            evidence["shipping_date"] = shipped[:10]
    customs = order.get("customs") or {}
    story = [f"The buyer's payment was held in escrow by Mizani until customs decided (order {order['order_id']})."]
    if shipment:
        story.append(f"Customs declaration {shipment.get('customs_declaration_ref')}.")
    if customs.get("outcome"):
        story.append(f"Customs decision: {customs['outcome']} at {customs.get('office')} (event {customs.get('event_id')}).")
    else:
        story.append("Customs had not decided when the dispute was opened; the money is still held.")
    evidence["uncategorized_text"] = " ".join(story)[:5000]
    return evidence
