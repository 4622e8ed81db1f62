"""De-identification: precision and recall per entity type on a labeled set, and throughput.

The test set is generated here (seeded) from realistic Chinese and English sentences with known
spans: 2,400 sentences holding over 2,000 entities (mainland mobiles and landlines, +country
numbers, full-width characters as Chinese input methods type them, 18-digit resident IDs with
valid check digits, Luhn-valid bank cards, emails, IPv4/IPv6, URLs, passport numbers), and
near-misses that must be left alone: order and tracking numbers shaped like phone numbers or
cards, IDs with a wrong check digit or an impossible date, card numbers failing Luhn, version
numbers, part numbers shaped like passports, prices and dates.

The templates were written next to the recognizers, so a perfect score says the recognizers
cover these formats, not that real data has no others (written-out digits, "at" for "@", ...).

Scoring: a found (type, value) matching a gold one exactly is a true positive; anything else
found is a false positive, anything not found a false negative. Goals: recall >= 0.98 and
precision >= 0.95 per structured type.

Throughput: texts/s of the platform's ``deidentify`` (analysis, anonymisation, mapping) against
Presidio's bare ``AnalyzerEngine.analyze`` with the same recognizers, in the same process, on
the same texts, alternating rounds. Goal: >= 0.8x.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from typing import Any

from bench._env import save

SEED = 20261122
SENTENCES = 2400
ROUNDS = 3

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_AREAS = ("110105", "310104", "440305", "320102", "510107", "330106", "420111", "610113")


def _id_number(rng: random.Random, valid: bool = True) -> str:
    body = rng.choice(_AREAS) + f"{rng.randint(1950, 2005)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
    body += f"{rng.randint(0, 999):03d}"
    check = "10X98765432"[sum(int(d) * w for d, w in zip(body, _WEIGHTS, strict=True)) % 11]
    if not valid:
        check = rng.choice([c for c in "0123456789X" if c != check])
    return body + check


def _luhn_complete(prefix: str) -> str:
    for d in "0123456789":
        digits = [int(x) for x in prefix + d]
        total = 0
        for i, x in enumerate(reversed(digits)):
            if i % 2:
                x *= 2
                x -= 9 if x > 9 else 0
            total += x
        if total % 10 == 0:
            return prefix + d
    raise AssertionError


def _card(rng: random.Random, valid: bool = True) -> str:
    length = rng.choice((16, 16, 19))
    prefix = rng.choice(("622202", "622848", "621700", "436742", "453214", "524094"))
    number = _luhn_complete(prefix + "".join(rng.choice("0123456789") for _ in range(length - len(prefix) - 1)))
    if not valid:
        last = int(number[-1])
        number = number[:-1] + str((last + rng.randint(1, 9)) % 10)
    if length == 16 and rng.random() < 0.5:
        return " ".join(number[i : i + 4] for i in range(0, 16, 4))
    return number


def _mobile(rng: random.Random) -> str:
    digits = f"1{rng.choice('3456789')}{rng.randint(0, 9)}{rng.randint(0, 99999999):08d}"
    style = rng.random()
    if style < 0.5:
        return digits
    if style < 0.7:
        return f"{digits[:3]} {digits[3:7]} {digits[7:]}"
    if style < 0.85:
        return f"{digits[:3]}-{digits[3:7]}-{digits[7:]}"
    return f"+86 {digits}"


def _full_width(make: Any) -> Any:
    """A value typed with a Chinese input method: full-width digits and symbols."""

    def make_wide(rng: random.Random) -> str:
        return "".join(chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch for ch in make(rng))

    return make_wide


def _landline(rng: random.Random) -> str:
    area = rng.choice(("010", "021", "0755", "020", "0571", "028"))
    number = f"{rng.randint(2, 8)}{rng.randint(0, 9999999):07d}"
    return rng.choice((f"{area}-{number}", f"({area}){number}", f"{area} {number}"))


def _intl(rng: random.Random) -> str:
    return rng.choice(
        (
            f"+44 20 {rng.randint(1000, 9999)} {rng.randint(1000, 9999)}",
            f"+1 415 {rng.randint(200, 999)} {rng.randint(1000, 9999)}",
            f"+49 30 {rng.randint(100000, 999999)}",
        )
    )


def _email(rng: random.Random) -> str:
    user = rng.choice(("zhang.wei", "li_na", "j.smith", "support", "wang.fang88", "m.garcia", "chen-hao"))
    domain = rng.choice(("example.com", "qq.com", "163.com", "corp.example.cn", "mail.co.uk"))
    return f"{user}{rng.randint(1, 99)}@{domain}"


def _ipv4(rng: random.Random) -> str:
    return ".".join(str(rng.randint(1, 254)) for _ in range(4))


def _ipv6(rng: random.Random) -> str:
    groups = [f"{rng.randint(0, 0xFFFF):x}" for _ in range(8)]
    if rng.random() < 0.5:
        return "2001:db8::" + ":".join(groups[:3])
    return ":".join(groups)


def _url(rng: random.Random) -> str:
    host = rng.choice(("shop.example.com", "www.example.cn", "help.example.org", "m.example.com"))
    path = rng.choice(("/order?id=" + str(rng.randint(1000, 99999)), "/faq", "/u/" + str(rng.randint(1, 999)), ""))
    return f"https://{host}{path}" if rng.random() < 0.8 else f"www.{host.split('.', 1)[1]}{path}"


def _passport(rng: random.Random) -> str:
    return rng.choice("EG") + f"{rng.randint(10000000, 99999999)}"


# (template, generator, entity): {} marks where the value goes.
POSITIVE: list[tuple[str, Any, str]] = [
    ("客户来电说手机{}打不通，请回电。", _mobile, "PHONE"),
    ("联系人电话：{}，下午方便。", _mobile, "PHONE"),
    ("请拨打座机{}转客服。", _landline, "PHONE"),
    ("手机号：{}（全角输入）", _full_width(_mobile), "PHONE"),
    ("订单已发货，收货人电话{}，请保持畅通。", _mobile, "PHONE"),
    ("Please call me back on {} after 5pm.", _mobile, "PHONE"),
    ("My UK number is {} if the other fails.", _intl, "PHONE"),
    ("Reach our US office at {}.", _intl, "PHONE"),
    ("用户身份证号{}，已完成实名认证。", _id_number, "ID_NUMBER"),
    ("ID card {} was verified at the counter.", _id_number, "ID_NUMBER"),
    ("退款请打到银行卡{}，谢谢。", _card, "BANK_CARD"),
    ("Refund to card {} please, it was charged twice.", _card, "BANK_CARD"),
    ("邮箱{}收不到验证码。", _email, "EMAIL"),
    ("邮箱：{}，请查收。", _full_width(_email), "EMAIL"),
    ("Send the invoice to {} by Friday.", _email, "EMAIL"),
    ("登录IP为{}，疑似异地登录。", _ipv4, "IP_ADDRESS"),
    ("The request came from {} at midnight.", _ipv6, "IP_ADDRESS"),
    ("详情见{}，链接打不开。", _url, "URL"),
    ("The tracking page {} shows nothing.", _url, "URL"),
    ("护照号码{}已过期，需要更新。", _passport, "PASSPORT"),
    ("Her passport number is {} and expires soon.", _passport, "PASSPORT"),
]


def _order_like_phone(rng: random.Random) -> str:
    return f"1{rng.choice('3456789')}{rng.randint(0, 999999999):09d}"


NEGATIVE: list[tuple[str, Any]] = [
    ("订单号{}已发货，请注意查收。", _order_like_phone),
    ("快递单号{}显示已签收。", _order_like_phone),
    ("Order no. {} was cancelled yesterday.", _order_like_phone),
    ("身份证号{}校验未通过。", lambda r: _id_number(r, valid=False)),
    ("The ID {} has a wrong check digit.", lambda r: _id_number(r, valid=False)),
    ("卡号{}无效，请重新输入。", lambda r: _card(r, valid=False).replace(" ", "")),
    ("Tracking number {} is not found.", lambda r: _card(r).replace(" ", "")),
    ("升级到版本{}后闪退。", lambda r: f"{r.randint(1, 9)}.{r.randint(0, 20)}.{r.randint(0, 99)}"),
    ("Part {} is out of stock.", _passport),
    ("价格是{}元，比上周贵。", lambda r: f"{r.randint(10, 99999)}.{r.randint(0, 99):02d}"),
    ("Delivered on {} around noon.", lambda r: f"2026-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}"),
    ("批次{}的产品有划痕。", lambda r: f"{r.randint(20200101, 20261231)}"),
]


def build(seed: int = SEED, n: int = SENTENCES) -> list[tuple[str, list[tuple[str, str]]]]:
    """(text, gold [(entity, value)]) pairs: most with one entity, some with two, some none."""
    rng = random.Random(seed)
    out: list[tuple[str, list[tuple[str, str]]]] = []
    for _ in range(n):
        roll = rng.random()
        if roll < 0.25:
            template, make = rng.choice(NEGATIVE)
            out.append((template.format(make(rng)), []))
            continue
        parts, gold = [], []
        for _ in range(2 if roll > 0.85 else 1):
            template, make, entity = rng.choice(POSITIVE)
            value = make(rng)
            parts.append(template.format(value))
            gold.append((entity, value))
        if rng.random() < 0.3:  # a near-miss in the same text
            template, make = rng.choice(NEGATIVE)
            parts.append(template.format(make(rng)))
        text = parts[0]
        for part in parts[1:]:  # Chinese runs on; a Latin sentence after anything gets a space
            text += part if "\u4e00" <= part[0] <= "\u9fff" else " " + part
        out.append((text, gold))
    return out


def score(cases: list[tuple[str, list[tuple[str, str]]]], found: list[list[tuple[str, str]]]) -> dict[str, Any]:
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    misses: list[dict[str, Any]] = []
    for (text, gold), got in zip(cases, found, strict=True):
        want, have = Counter(gold), Counter(got)
        for key in set(want) | set(have):
            hit = min(want[key], have[key])
            tp[key[0]] += hit
            fp[key[0]] += have[key] - hit
            fn[key[0]] += want[key] - hit
            if (have[key] != want[key]) and len(misses) < 25:
                misses.append({"text": text, "gold": gold, "found": got})
    per_type = {}
    for entity in sorted(set(tp) | set(fp) | set(fn)):
        p = tp[entity] / (tp[entity] + fp[entity]) if tp[entity] + fp[entity] else 1.0
        r = tp[entity] / (tp[entity] + fn[entity]) if tp[entity] + fn[entity] else 1.0
        per_type[entity] = {
            "precision": round(p, 4),
            "recall": round(r, 4),
            "entities": tp[entity] + fn[entity],
            "false_positives": fp[entity],
            "false_negatives": fn[entity],
        }
    return {"per_type": per_type, "examples_of_errors": misses}


def main() -> None:
    from include.pii.engine import analyzer, deidentify, language_of
    from include.pii.recognizers import STRUCTURED

    cases = build()
    texts = [t for t, _ in cases]
    policy = dict.fromkeys(STRUCTURED, "placeholder")
    engine = analyzer()
    deidentify(texts[:20], policy, key=None)  # warm up both paths
    found = [[(r.entity, r.original) for r in d.replacements] for d in deidentify(texts, policy, key=None)]
    quality = score(cases, found)

    def ours() -> None:
        deidentify(texts, policy, key=None)

    def bare() -> None:
        for text in texts:
            engine.analyze(text=text, language=language_of(text, "auto"), entities=list(STRUCTURED))

    timings: dict[str, list[float]] = {"platform": [], "bare_analyzer": []}
    for _ in range(ROUNDS):
        for name, fn in (("bare_analyzer", bare), ("platform", ours)):
            started = time.perf_counter()
            fn()
            timings[name].append(time.perf_counter() - started)
    best = {name: min(values) for name, values in timings.items()}
    rates = {name: round(len(texts) / seconds, 1) for name, seconds in best.items()}
    entities = sum(len(g) for _, g in cases)
    save(
        "pii",
        {
            "sentences": len(texts),
            "entities": entities,
            "near_miss_sentences": sum(1 for _, g in cases if not g),
            "quality": quality,
            "texts_per_s": rates,
            "ratio_vs_bare_analyzer": round(rates["platform"] / rates["bare_analyzer"], 3),
            "goal": "recall >= 0.98 and precision >= 0.95 per structured type; >= 0.8x the bare AnalyzerEngine",
        },
    )


if __name__ == "__main__":
    main()
