"""Text people write for others to read (guidelines, notes on a flag): storable, and free of the
personal data a recognizer can find without a model.

Why a check and not de-identification: this text is written by the platform's own users, on
purpose; silently masking a value in it would change what they meant. They are told instead.
"""

from __future__ import annotations

from include.errors import Invalid
from include.services.datasets import check_storable

CHECKED = ("PHONE", "ID_NUMBER", "BANK_CARD", "EMAIL", "IP_ADDRESS", "PASSPORT")  # URLs are fine


class PersonalDataInText(Invalid):
    """Free text that holds personal data; the message names the kinds, never the values."""


def check_free_text(text: str, where: str, *, readers: str) -> None:
    """Refuse ``text`` that cannot be stored or holds personal data; ``readers``: who reads it.

    Raises:
        DatasetError: a NUL character or an unpaired surrogate. PersonalDataInText: a phone
            number, ID, bank card, e-mail, IP address or passport number.
    """
    check_storable(text, where)
    if not text.strip():
        return
    from include.pii.engine import deidentify

    (found,) = deidentify([text], dict.fromkeys(CHECKED, "placeholder"), key=None)
    kinds = sorted({r.entity for r in found.replacements})
    if kinds:
        raise PersonalDataInText(
            f"personal data in {where} ({', '.join(kinds)}): {readers} read it; "
            "replace the values (for example with <PHONE>)"
        )
