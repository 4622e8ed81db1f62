"""Recognizers for Chinese and English personal data that need no downloaded model.

Each is a Presidio ``PatternRecognizer`` with three additions Presidio's own ones lack here:

* boundaries written for mixed Chinese/Latin text (``\\b`` does not separate 是 from 1: both are
  word characters), so numbers are bounded by "no digit next to it" instead;
* a validator: the ID check digit (GB 11643), the Luhn sum of a bank card, a real calendar date,
  ``ipaddress`` for IPs;
* context windows read from the characters before a match (the blank spaCy pipelines have no
  lemmas for Presidio's context enhancer): a number right after 订单号 / "order no." is less
  likely a phone number (its score drops to :data:`ORDER_SCORE`, below the default
  threshold) unless a phone word (电话, "call") comes after the order word; an order word
  governs only the first number after it ("订单号123，我的号码138…" keeps the phone); a
  passport number needs 护照 / "passport" nearby.

Presidio's predefined recognizers are not used: they are locale-blind (a US phone number also
matched UK_NHS) and the email and URL ones reach for the internet through tldextract.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

from presidio_analyzer import Pattern, PatternRecognizer, RecognizerResult

from include.pii.entities import ENTITIES, NEEDS_MODEL, STRUCTURED

__all__ = ["ENTITIES", "NEEDS_MODEL", "STRUCTURED", "build", "id_check_ok", "luhn_ok"]

LANGUAGES = ("en", "zh")
_CLAUSE_END = re.compile(r"[。！？；\n]|[.!?;]\s")  # required context must be in the match's own sentence
CONTEXT_WINDOW = 32  # characters before a match that its context words are looked for in
# An order word right before a number: less likely personal, not ruled out. Below the default
# threshold (0.5), so only a stricter policy replaces it (a validated match scores 1.0 before).
ORDER_SCORE = 0.4
_DIGIT = re.compile(r"\d")

ORDER_WORDS = (
    "订单", "单号", "编号", "工单", "快递", "运单", "流水", "序列号", "批次", "合同号", "账单号", "发票",
    "order", "invoice", "tracking", "serial", "ref", "sku", "batch", "ticket", "waybill", "shipment",
)  # fmt: skip
PASSPORT_WORDS = ("护照", "passport", "通行证")
PHONE_WORDS = ("电话", "手机", "座机", "致电", "拨打", "回电", "联系", "call", "phone", "tel", "mobile", "whatsapp")
CARD_WORDS = ("银行卡", "卡号", "信用卡", "储蓄卡", "账户", "账号", "card", "account", "iban")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def id_check_ok(value: str) -> bool:
    """GB 11643-1999: an 18-character resident ID with a real birth date and a valid check digit."""
    digits = value.upper()
    if len(digits) != 18 or not digits[:17].isdigit():
        return False
    try:
        date(int(digits[6:10]), int(digits[10:12]), int(digits[12:14]))
    except ValueError:
        return False
    check = "10X98765432"[sum(int(d) * w for d, w in zip(digits[:17], _ID_WEIGHTS, strict=True)) % 11]
    return digits[17] == check


def luhn_ok(number: str) -> bool:
    digits = [int(d) for d in number]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def _words(words: Sequence[str]) -> re.Pattern[str] | None:
    """One regex for context words: Latin words match whole ("ref" is not in "refund"), Chinese
    ones anywhere (Chinese has no spaces between words)."""
    if not words:
        return None
    parts = []
    for word in words:
        part = re.escape(word.lower())
        if word[0].isascii() and word[0].isalpha():
            part = r"(?<![a-z])" + part
        if word[-1].isascii() and word[-1].isalpha():
            part += r"(?![a-z])"
        parts.append(part)
    return re.compile("|".join(parts))


class ContextPatternRecognizer(PatternRecognizer):
    """A pattern recognizer with a validator and rules on the words just before a match."""

    def __init__(
        self,
        entity: str,
        patterns: Sequence[Pattern],
        language: str,
        *,
        validator: Callable[[str], bool] | None = None,
        negative_context: Sequence[str] = (),
        positive_context: Sequence[str] = (),
        required_context: Sequence[str] = (),
        name: str | None = None,
    ) -> None:
        super().__init__(
            supported_entity=entity,
            patterns=list(patterns),
            supported_language=language,
            name=name or f"{entity.lower()}_{language}",
        )
        self.validator = validator
        self.negative_context = _words(negative_context)
        self.positive_context = _words(positive_context)
        self.required_context = _words(required_context)

    def validate_result(self, pattern_text: str) -> bool | None:
        if self.validator is None:
            return None
        return bool(self.validator(pattern_text))

    def _negated(self, before: str) -> bool:
        """An order word comes last before the match (no phone or card word after it) and no
        other number stands between them (that one was the order's number)."""
        last_negative = max((m.end() for m in self.negative_context.finditer(before)), default=-1)  # type: ignore[union-attr]
        if last_negative < 0 or _DIGIT.search(before[last_negative:]):
            return False
        if self.positive_context is None:
            return True
        last_positive = max((m.end() for m in self.positive_context.finditer(before)), default=-1)
        return last_positive < last_negative

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: Any = None, regex_flags: int | None = None
    ) -> list[RecognizerResult]:
        results = super().analyze(text, entities, nlp_artifacts, regex_flags)
        kept = []
        for result in results:
            before = text[max(0, result.start - CONTEXT_WINDOW) : result.start].lower()
            if self.negative_context and self._negated(before):
                result.score = min(result.score, ORDER_SCORE)
            if self.required_context and not self.required_context.search(_CLAUSE_END.split(before)[-1]):
                continue
            kept.append(result)
        return kept


# Phone numbers: mainland mobiles (optionally +86, spaced 3-4-4), landlines with an area code,
# and international numbers written with a + country code.
_PHONE = [
    Pattern("cn mobile", r"(?<![\d+])(?:(?:\+|00)86[\s-]?)?1[3-9]\d[\s-]?\d{4}[\s-]?\d{4}(?!\d)", 0.75),
    Pattern("cn landline", r"(?<![\d+])(?:\(0\d{2,3}\)|0\d{2,3})[\s-]?[2-9]\d{6,7}(?!\d)", 0.7),
    Pattern("international", r"(?<![\d\w])\+(?:[1-9]\d{0,2})[\s-]?\(?\d{1,4}\)?(?:[\s-]?\d{2,4}){2,3}(?!\d)", 0.7),
    Pattern("north american", r"(?<![\d\w])\(?[2-9]\d{2}\)?[\s.-][2-9]\d{2}[\s.-]\d{4}(?!\d)", 0.65),
]
_ID = [Pattern("resident id", r"(?<![\dXx])[1-9]\d{5}(?:18|19|20)\d{2}[01]\d[0-3]\d\d{3}[\dXx](?![0-9A-Za-z])", 0.9)]
_CARD = [Pattern("bank card", r"(?<![\d])(?:\d{4}[ -]?){3}\d{4}(?:[ -]?\d{1,3})?(?![\dXx])", 0.8)]
_EMAIL = [
    Pattern(
        "email",
        r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,24}(?![A-Za-z0-9-])",
        0.9,
    )
]
_IP = [
    Pattern("ipv4", r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.]|\.\d)", 0.7),
    Pattern("ipv6", r"(?<![0-9A-Fa-f:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![0-9A-Fa-f:])", 0.7),
]
_URL = [Pattern("url", r"(?:https?://|www\.)[A-Za-z0-9\-._~:/?#\[\]@!$&'*+,;=%]+[A-Za-z0-9/#=&_~-]", 0.8)]
_PASSPORT = [
    Pattern("passport", r"(?<![A-Za-z0-9])(?:[EeGgDdSsPp]\d{8}|E[A-HJ-NP-Z]\d{7}|[A-Z]?\d{8,9})(?![A-Za-z0-9])", 0.8)
]


_ID_SHAPE = re.compile(r"[1-9]\d{5}(?:18|19|20)\d{2}[01]\d[0-3]\d\d{3}[\dXx]")


def _card(value: str) -> bool:
    """16-19 digits with a valid Luhn sum, and not an 18-digit number shaped like a resident ID
    (valid or not: one in ten IDs with a wrong check digit also passes Luhn)."""
    digits = _digits(value)
    return 16 <= len(digits) <= 19 and luhn_ok(digits) and not (len(digits) == 18 and _ID_SHAPE.fullmatch(digits))


def _ip(value: str) -> bool:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return False
    return address.version == 6 or value.count(".") == 3


def _mobile_or_landline(value: str) -> bool:
    digits = _digits(value)
    return 7 <= len(digits) <= 15


def build(language: str) -> list[Any]:
    """The offline recognizers for one language: the structured-data ones (the same rules serve
    both), and for Chinese the name and address ones (include.pii.zh)."""
    from include.pii.zh import build_zh

    return (build_zh() if language == "zh" else []) + [
        ContextPatternRecognizer(
            "PHONE",
            _PHONE,
            language,
            validator=_mobile_or_landline,
            negative_context=ORDER_WORDS,
            positive_context=PHONE_WORDS,
        ),
        ContextPatternRecognizer("ID_NUMBER", _ID, language, validator=id_check_ok),
        ContextPatternRecognizer(
            "BANK_CARD", _CARD, language, validator=_card, negative_context=ORDER_WORDS, positive_context=CARD_WORDS
        ),
        ContextPatternRecognizer("EMAIL", _EMAIL, language),
        ContextPatternRecognizer("IP_ADDRESS", _IP, language, validator=_ip),
        ContextPatternRecognizer("URL", _URL, language),
        ContextPatternRecognizer("PASSPORT", _PASSPORT, language, required_context=PASSPORT_WORDS),
    ]
