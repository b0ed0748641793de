"""PII kinds beyond email/card/phone/address: exact placeholders, and the store ids that must survive."""

from __future__ import annotations

import pytest

from server.guardrails.pii import PiiRedactor

pytestmark = pytest.mark.L0

REDACTED = [  # (message, expected text after redaction)
    # national ids
    ("my ssn is 123-45-6789", "my ssn is [NATIONAL_ID]"),
    ("SSN 123 45 6789 please", "SSN [NATIONAL_ID] please"),
    ("social security number is 123456789", "social security number is [NATIONAL_ID]"),
    ("NI number AB 12 34 56 C", "NI number [NATIONAL_ID]"),
    ("my NINO is ab123456c", "my NINO is [NATIONAL_ID]"),
    ("my SIN is 046 454 286", "my SIN is [NATIONAL_ID]"),
    ("national id: X1234567Z", "national id: [NATIONAL_ID]"),
    ("tax id 12-3456789", "tax id [NATIONAL_ID]"),
    ("aadhaar 1234 5678 9012", "aadhaar [NATIONAL_ID]"),
    ("マイナンバーは1234 5678 9012です", "マイナンバーは[NATIONAL_ID]です"),
    # passports
    ("passport X1234567", "passport [PASSPORT]"),
    ("my passport number is 123456789.", "my passport number is [PASSPORT]."),
    ("パスポート番号はTZ1234567です", "パスポート番号は[PASSPORT]です"),
    # dates of birth
    ("passport X1234567, dob 04/12/1987", "passport [PASSPORT], dob [DOB]"),
    ("date of birth: 1987-04-12", "date of birth: [DOB]"),
    ("born on April 12, 1987", "born on [DOB]"),
    ("my birthday is 12 April 1987", "my birthday is [DOB]"),
    ("D.O.B. 12.04.1987", "D.O.B. [DOB]"),
    ("生年月日は1987年4月12日です", "生年月日は[DOB]です"),
    ("ssn 123-45-6789, 12 April 1987", "ssn [NATIONAL_ID], [DOB]"),  # a bare date next to an id
    ("passport X1234567, ordered on 2024-03-05", "passport [PASSPORT], ordered on 2024-03-05"),  # not a birth year
    # obfuscated emails
    ("email me at john dot smith at gmail dot com", "email me at [EMAIL]"),
    ("it's john.smith at gmail.com", "it's [EMAIL]"),
    ("j o h n @ g m a i l . c o m", "[EMAIL]"),
    ("name (at) domain (dot) com", "[EMAIL]"),
    ("name [at] domain [dot] co [dot] uk", "[EMAIL]"),
    ("name＠example.com", "[EMAIL]"),
    # obfuscated phones
    ("call 5 5 5 1 2 3 4 5 6 7", "call [PHONE]"),
    ("cell 555 123 45 67 thanks", "cell [PHONE] thanks"),
    ("five five five one two three four five six seven", "[PHONE]"),
    # only the PII goes, the store ids stay
    ("Order MA-12345678: my ssn is 123-45-6789", "Order MA-12345678: my ssn is [NATIONAL_ID]"),
    ("order ma-12345678, passport X1234567", "order ma-12345678, passport [PASSPORT]"),
]

KEPT = [
    "Where is #MA-12345678?",
    "is MA12345678 shipped?",
    "Is ASIN B0CX4ZQ7LM the hardcover?",
    "ISBN 978-1-9747-0993-9",
    "ISBN-10: 1-4215-0665-8",
    "Vol 12 is $12.99 and vols 1-10 are $89.99",
    "is vol 3 out on March 5, 2025?",
    "The release date is 2024-03-05",
    "tracking 1Z999AA10123456784",
    "FedEx tracking 1234 5678 9012",
    "USPS tracking 9400 1000 0000 0000 0000 00",
    "My ZIP is 97403",
    "see you in 2024",
    "is it cheaper at amazon.com?",
    "prices were 9.99 10.99 11.99",
    "my order id number is MA-12345678",
]


@pytest.mark.parametrize(("text", "expected"), REDACTED, ids=[t for t, _ in REDACTED])
def test_redacted_to_placeholder(text, expected):
    assert PiiRedactor().redact(text).text == expected


@pytest.mark.parametrize("text", KEPT)
def test_store_ids_and_ordinary_numbers_kept(text):
    red = PiiRedactor().redact(text)
    assert red.text == text and red.kinds == ()


def test_kinds_counted_per_span():
    red = PiiRedactor().redact("passport X1234567, dob 04/12/1987, ssn 123-45-6789")
    assert sorted(red.kinds) == ["DOB", "NATIONAL_ID", "PASSPORT"]
    assert red.actions[0].detail == "DOBx1,NATIONAL_IDx1,PASSPORTx1"
