"""Store policies: five topics, several sections each; one ``policies.jsonl`` record per section.

The text is fixed (not sampled) so policy answers are stable across seeds; concrete numbers (free shipping
over $35, 30-day returns, ...) are what the guardrails and the hallucination scorer check answers against.
"""

from __future__ import annotations

from typing import Any

TOPICS = ("shipping", "returns", "payment", "membership", "preorders", "pricing")

# topic -> [(section_id, title, text)]
_POLICIES: dict[str, list[tuple[str, str, str]]] = {
    "shipping": [
        ("standard", "Standard shipping and free shipping threshold",
         "Standard shipping is free on every order of $35 or more after discounts and before tax. Orders under "
         "$35 pay a flat $4.99 standard shipping fee. Standard shipping arrives in 5-7 business days within the "
         "contiguous United States and 7-10 business days to Alaska, Hawaii, Puerto Rico, and APO/FPO addresses. "
         "We ship to PO boxes with standard shipping only. Box sets and omnibus editions ship in a rigid mailer "
         "with corner protectors at no extra cost."),
        ("expedited", "Expedited and overnight shipping",
         "Expedited shipping costs $9.99 and arrives in 2-3 business days. Overnight shipping costs $19.99 and "
         "arrives the next business day when the order is placed before 1 p.m. Eastern time, Monday through "
         "Friday. Expedited and overnight options are not available for PO boxes, APO/FPO addresses, or "
         "pre-orders that have not been released yet. Manga Club Premium members get expedited shipping for "
         "$4.99 on any order."),
        ("international", "International shipping",
         "We ship to 42 countries, including Canada, Mexico, the United Kingdom, the European Union, Japan, "
         "Australia, and New Zealand. International shipping is a flat $14.99 per order, or free on orders of "
         "$99 or more. Delivery takes 7-21 business days depending on the destination. Customs duties and "
         "import taxes are not included in the order total and are collected by the carrier on delivery; "
         "refused packages are refunded minus the original shipping charge."),
        ("processing", "Order processing and tracking",
         "In-stock orders leave our warehouse within 1-2 business days. Orders do not ship on weekends or US "
         "federal holidays. When your order ships you receive an email with the carrier name and a tracking "
         "number; tracking can take up to 24 hours to show the first scan. Orders with several items may "
         "arrive in separate packages, and each package has its own tracking number. We ship with USPS, UPS, "
         "and FedEx and choose the carrier automatically."),
        ("holidays", "Holiday shipping deadlines and address changes",
         "For delivery by December 24, place standard shipping orders by December 15 and expedited orders by "
         "December 20. Overnight orders placed by 1 p.m. Eastern on December 22 arrive by December 23. You can "
         "change the shipping address of an order until it leaves the warehouse; after that, ask the carrier "
         "to redirect the package. Packages returned to us as undeliverable are refunded minus the shipping "
         "charge once they reach our warehouse."),
    ],
    "returns": [
        ("window", "Return window and condition",
         "You can return most physical items within 30 days of delivery for a full refund. Books must be "
         "unread and in the condition you received them; box sets must be unopened with the original shrink "
         "wrap. Start a return from Your Orders, choose the items, and print the return label. Returns of "
         "items you no longer want cost a $5.99 label fee that is deducted from the refund; you can also ship "
         "the items back yourself at your own cost."),
        ("damaged", "Damaged, defective, or wrong items",
         "If an item arrives damaged, misprinted, missing pages, or is not the item you ordered, report it within "
         "14 days of delivery with a photo of the damage. We send a free replacement and a prepaid return label, "
         "or a full refund including shipping if the item is out of stock. You do not need to return damaged "
         "items worth less than $15; we will tell you when to keep them."),
        ("refund_timing", "Refund timing and store credit",
         "Refunds are issued to the original payment method within 5 business days after the return arrives at "
         "our warehouse. Your bank may take another 3-10 business days to post the credit. If you choose store "
         "credit instead, it is added to your account immediately after the return is scanned and includes a "
         "bonus of 10% of the item price. Original shipping charges are refunded only for damaged or wrong items."),
        ("exchanges", "Exchanges",
         "We exchange an item for a different edition, volume, or language of equal or lower price within 30 "
         "days of delivery. Exchanges for damaged or wrong items ship free; other exchanges use the $5.99 return "
         "label fee. If the new item costs less, the difference is refunded to the original payment method."),
        ("non_returnable", "Items that cannot be returned",
         "Digital editions cannot be returned once downloaded or opened in the reader. Gift cards, pre-order "
         "bonus items such as posters and postcards, and items marked final sale cannot be returned. Opened box "
         "sets can only be returned if they arrived damaged or incomplete."),
    ],
    "payment": [
        ("methods", "Accepted payment methods",
         "We accept Visa, Mastercard, American Express, Discover, PayPal, Apple Pay, Google Pay, and MangaAssist "
         "gift cards. We do not accept cryptocurrency, checks, or cash on delivery. Orders of $50 or more can be "
         "split into four interest-free payments with Afterpay. You can combine one gift card with one other "
         "payment method on the same order."),
        ("charging", "When you are charged",
         "Your card is authorized when you place the order and charged when the order ships. If an order ships "
         "in several packages, each package is charged separately. Pre-orders are charged only when the item "
         "ships, never at the time you place the pre-order. Prices are in US dollars and sales tax is added "
         "where required by law."),
        ("gift_cards", "Gift cards and store credit",
         "Gift cards are sold in amounts from $10 to $200, never expire, and have no fees. Gift card and store "
         "credit balances can be used on any physical or digital item but cannot be redeemed for cash except "
         "where the law requires it."),
        ("declines", "Declined payments and security",
         "If a payment is declined, we retry it once after 24 hours and email you to update your payment method; "
         "unpaid orders are cancelled after 3 days. Card numbers are stored by our PCI-DSS certified payment "
         "processor, never on our servers. We will never ask for your full card number over chat or email."),
        ("tax_currency", "Currency, sales tax, and receipts",
         "All prices on the store are shown in US dollars. International cards are charged in US dollars and "
         "your bank converts the amount, which may add a foreign transaction fee set by your bank. Sales tax "
         "is calculated at checkout from the shipping address and shown before you pay. Digital editions are "
         "taxed where digital goods are taxable. A receipt with the tax breakdown is emailed when each package "
         "ships and is always available under Your Orders. Business customers can add a tax ID to the account "
         "to have it printed on every invoice, and tax-exempt schools and libraries can upload an exemption "
         "certificate before checkout."),
    ],
    "membership": [
        ("plans", "Manga Club Premium plans and price",
         "Manga Club Premium costs $7.99 per month or $59.99 per year. New members get a 14-day free trial, and "
         "students with a valid .edu email pay $3.99 per month. Membership renews automatically at the end of "
         "each period until you cancel. You can switch from monthly to annual billing at any time; the switch "
         "takes effect at your next renewal date. The trial is limited to one per household and converts "
         "to the monthly plan unless you cancel before day 14."),
        ("benefits", "Member benefits",
         "Premium members get free standard shipping on every order with no minimum, expedited shipping for "
         "$4.99, 10% off all physical manga, and early access to limited box sets and pre-order bonuses 48 "
         "hours before everyone else. The 10% member discount stacks with sitewide sales but not with coupon "
         "codes."),
        ("points", "Manga Points",
         "All customers earn 1 Manga Point per dollar spent; Premium members earn 2 points per dollar. Every 100 "
         "points can be redeemed for $5 off a future order at checkout. Points expire 12 months after they are "
         "earned and are removed if the order that earned them is refunded."),
        ("cancel", "Cancelling or pausing a membership",
         "You can cancel Manga Club Premium at any time from Account Settings; benefits continue until the end "
         "of the paid period. Annual members who cancel within 14 days of being charged get a full refund if "
         "they have not used any member benefit. Monthly plans can be paused for up to 3 months once per year."),
        ("gifting", "Gift memberships and household sharing",
         "You can give Manga Club Premium as a gift for 3 months ($22.99) or 12 months ($59.99). Gift "
         "memberships do not renew automatically and can be redeemed with the code from the gift email at any "
         "time within one year. A Premium member can share free shipping, but not the 10% discount, with one "
         "other adult at the same address. Points cannot be transferred between accounts. If a gift recipient "
         "is already a member, the gifted time is added after the current paid period ends instead of "
         "overlapping it."),
    ],
    "preorders": [
        ("how_it_works", "How pre-orders work",
         "You can pre-order any upcoming volume, edition, or box set up to 6 months before its release date. "
         "Pre-orders ship so that they arrive on or close to the release date and are charged only when they "
         "ship. There is a limit of 5 copies of the same item per customer on pre-orders. Digital pre-orders "
         "are delivered to your library at midnight Eastern time on the release date and charged at that "
         "moment. Limited editions may sell out before release, in which case pre-orders are filled in the "
         "order they were placed."),
        ("price_guarantee", "Pre-order price guarantee",
         "If the price of a pre-ordered item drops between the time you order and the release date, you are "
         "charged the lowest price automatically. Coupon codes can be applied to pre-orders at checkout, but "
         "not after the pre-order has been placed."),
        ("cancel_delays", "Cancelling pre-orders and release delays",
         "You can cancel a pre-order at any time before it ships from Your Orders, with no fee. If the publisher "
         "delays the release date, we email you with the new date and keep your pre-order unless you cancel it. "
         "If a release is cancelled by the publisher, the pre-order is cancelled and you are never charged."),
        ("bonuses", "Pre-order bonuses",
         "Some pre-orders come with a bonus item such as a postcard, poster, or acrylic stand while supplies "
         "last. Bonuses are not guaranteed for pre-orders placed after the bonus stock runs out, ship in the "
         "same package as the book, and cannot be returned or exchanged separately."),
        ("shipping", "How pre-orders ship",
         "Pre-ordered items ship separately from in-stock items in the same order unless you choose to ship "
         "everything together at checkout, in which case the whole order waits for the latest release date. "
         "Pre-orders use the shipping speed you chose when ordering, and the $35 free shipping threshold is "
         "checked against the whole order, even when the items ship on different days. You can change the "
         "shipping address of a pre-order from Your Orders until the day before it ships."),
    ],
    "pricing": [
        ("price_match", "Price match",
         "We match the current price of an identical new item (same title, volume, edition, and language) that "
         "another major US retailer sells and ships itself. Ask within 14 days of your purchase, or before you "
         "order, through chat or the Help page with a link to the other offer. We do not match marketplace or "
         "third-party sellers, used or digital copies, coupon or membership prices, bundle deals, or flash sales "
         "that last under 24 hours. A price match is limited to one per item and 5 copies per customer, and the "
         "difference is refunded to the original payment method."),
        ("coupons", "Coupon and promo codes",
         "You can use one coupon code per order. Coupon codes cannot be combined with each other or with the "
         "10% Manga Club member discount, and they do not apply to gift cards. A code that fails usually has "
         "expired, has not reached its minimum order amount, or excludes the items in your cart; the terms are "
         "shown next to the code when you apply it. Codes cannot be added to an order after it has been placed."),
        ("sales", "Sales and price adjustments",
         "Sale prices are shown on the product page and apply while the sale runs. If an item you bought goes "
         "on sale within 7 days of delivery, we refund the difference once per item when you ask through chat. "
         "Bundle discounts apply automatically at checkout: buy 3 or more volumes of the same series in one "
         "order and save 5%. Sale and bundle prices can be combined with the Manga Club discount."),
        ("price_changes", "Price changes and listed prices",
         "Prices on the store can change at any time before you order. The price shown in your cart when you "
         "place the order is the price you pay, even if it changes before the order ships; pre-orders follow "
         "the pre-order price guarantee instead. Digital editions are priced separately from print and are "
         "often cheaper. We never charge a different price at checkout than the one on your order "
         "confirmation, and our chat assistant quotes prices only from the current catalog."),
    ],
}


def generate_policies() -> list[dict[str, Any]]:
    """One record per section, sorted by ``policy_id`` ("<topic>-<section>")."""
    out = [
        {"policy_id": f"{topic}-{section}", "topic": topic, "title": title, "text": text}
        for topic in TOPICS
        for section, title, text in _POLICIES[topic]
    ]
    out.sort(key=lambda p: p["policy_id"])
    return out


def topic_word_counts() -> dict[str, int]:
    return {t: sum(len(text.split()) for _, _, text in _POLICIES[t]) for t in TOPICS}
