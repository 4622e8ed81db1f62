"""The offline recognizers and operators (no database): what is found, what is left alone."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from include.pii.engine import PiiError, deidentify, restore
from include.pii.recognizers import id_check_ok, luhn_ok

KEY = Fernet.generate_key()
EVERYTHING = {
    "PHONE": "placeholder",
    "ID_NUMBER": "placeholder",
    "BANK_CARD": "placeholder",
    "EMAIL": "placeholder",
    "IP_ADDRESS": "placeholder",
    "URL": "placeholder",
    "PASSPORT": "placeholder",
}


def found(text: str, policy: dict[str, str] = EVERYTHING) -> list[tuple[str, str]]:
    (result,) = deidentify([text], policy, key=KEY)
    return [(r.entity, r.original) for r in result.replacements]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("客户电话13812345678，请回电", [("PHONE", "13812345678")]),
        ("手机 +86 138-1234-5678 或座机 010-62345678", [("PHONE", "+86 138-1234-5678"), ("PHONE", "010-62345678")]),
        ("身份证号11010519491231002X已核验", [("ID_NUMBER", "11010519491231002X")]),
        ("refund to card 6222 0212 3456 7894 please", [("BANK_CARD", "6222 0212 3456 7894")]),
        ("mail ops@example.co.uk now", [("EMAIL", "ops@example.co.uk")]),
        (
            "server 10.0.12.7 and 2001:db8::8a2e:370:7334 down",
            [("IP_ADDRESS", "10.0.12.7"), ("IP_ADDRESS", "2001:db8::8a2e:370:7334")],
        ),
        ("见 https://shop.example.com/o?id=9 详情", [("URL", "https://shop.example.com/o?id=9")]),
        ("护照号码E12345678，过期", [("PASSPORT", "E12345678")]),
        (
            "手机号：１３８１２３４５６７８（全角）",
            [("PHONE", "１３８１２３４５６７８")],
        ),  # as Chinese input methods type it
        ("邮箱zhang.wei@163.com收不到验证码", [("EMAIL", "zhang.wei@163.com")]),  # no space after 邮箱
        ("订单已发货，收货人电话13812345678", [("PHONE", "13812345678")]),  # a phone word after the order word
        # An order word governs the number right after it, not a phone further on.
        ("Order 8812 – reach me on 13800138000", [("PHONE", "13800138000")]),
        ("订单号123，我的号码13800138000", [("PHONE", "13800138000")]),
        ("Her passport number is G90886922 and expires soon", [("PASSPORT", "G90886922")]),
    ],
)
def test_structured_entities_are_found(text: str, expected: list[tuple[str, str]]) -> None:
    assert found(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "订单号13812345678已发货",  # an order number shaped like a mobile
        "身份证号110105194912310021",  # a wrong check digit
        "身份证号110105194913310027",  # month 13
        "card 6222 0212 3456 7890",  # fails Luhn
        "version 1.2.3.4 released",  # not with 4 dots... but a version number is a valid IPv4 shape
        "E12345678 is a part number",  # passport shape without the word passport
        "tracking no. 4111111111111111",
        "The ID 31010419941115847X has a wrong check digit",  # not a card either
        "护照号码已过期。批次20227972的产品有划痕",  # the passport word is in another sentence
    ],
)
def test_near_misses_are_left_alone(text: str) -> None:
    hits = found(text)
    if text.startswith("version"):
        assert hits == [("IP_ADDRESS", "1.2.3.4")]  # documented: a dotted quad is an IPv4 address
    else:
        assert hits == []


def test_placeholders_are_numbered_per_text_and_stable() -> None:
    (result,) = deidentify(["A 13812345678, B 13912345678, A again 13812345678"], {"PHONE": "placeholder"}, key=None)
    assert result.text == "A <PHONE_1>, B <PHONE_2>, A again <PHONE_1>"
    assert restore(result.text, [r.__dict__ for r in result.replacements]) == (
        "A 13812345678, B 13912345678, A again 13812345678"
    )


def test_an_order_word_lowers_the_score_rather_than_ruling_a_phone_out() -> None:
    """Left alone at the default threshold; a stricter policy (a lower threshold) still finds it."""
    text = "订单号13812345678已发货"
    assert found(text) == []
    (strict,) = deidentify([text], {"PHONE": "placeholder"}, key=KEY, score_threshold=0.3)
    assert [(r.entity, r.original) for r in strict.replacements] == [("PHONE", "13812345678")]


def test_masked_values_keep_their_own_originals() -> None:
    """Two numbers with the same mask restore as themselves (the mapping is keyed by span)."""
    text = "call 13800001234 or 13900001234, then 13800001234 again"
    (r,) = deidentify([text], {"PHONE": "mask"}, key=KEY)
    assert r.text == "call *******1234 or *******1234, then *******1234 again"
    assert [x.original for x in r.replacements] == ["13800001234", "13900001234", "13800001234"]
    assert restore(r.text, [x.__dict__ for x in r.replacements]) == text


def test_operators() -> None:
    text = "电话13812345678，邮箱 li@example.com，卡 6222021234567894"
    (r,) = deidentify([text], {"PHONE": "mask", "EMAIL": "hash", "BANK_CARD": "encrypt"}, key=KEY)
    assert "*******5678" in r.text
    assert "<EMAIL:" in r.text and "li@example.com" not in r.text
    encrypted = next(x.replacement for x in r.replacements if x.entity == "BANK_CARD")
    assert Fernet(KEY).decrypt(encrypted[len("<BANK_CARD:") : -1].encode()).decode() == "6222021234567894"
    # a hash is keyed and stable: the same value in another text gets the same replacement
    (again,) = deidentify(["li@example.com"], {"EMAIL": "hash"}, key=KEY)
    assert again.text == next(x.replacement for x in r.replacements if x.entity == "EMAIL")
    assert restore(r.text, [x.__dict__ for x in r.replacements]) == text


def test_entities_not_in_the_policy_stay() -> None:
    assert found("13812345678 li@example.com", {"EMAIL": "placeholder"}) == [("EMAIL", "li@example.com")]


def test_bad_policies_are_refused() -> None:
    with pytest.raises(PiiError, match="need PII_KEY"):
        deidentify(["x"], {"PHONE": "hash"}, key=None)
    with pytest.raises(PiiError, match="English names and addresses are found only by the LLM recognizer"):
        deidentify(["x"], {"PERSON": "placeholder"}, key=KEY, locale="en")
    # Chinese ones offline; an English text under the automatic locale has none of them found
    assert deidentify(["call Jane"], {"PERSON": "placeholder"}, key=KEY)[0].text == "call Jane"
    with pytest.raises(PiiError, match="operator"):
        deidentify(["x"], {"PHONE": "shred"}, key=KEY)


def test_validators() -> None:
    assert id_check_ok("11010519491231002X") and not id_check_ok("110105194912310021")
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")


def test_llm_recognizer_finds_names_and_addresses(llm_server) -> None:
    from include.config import load_settings
    from include.pii.llm import llm_recognizer

    llm_server.known_entities = [
        {"type": "PERSON", "text": "王小明"},
        {"type": "ADDRESS", "text": "北京市海淀区中关村大街1号"},
    ]
    settings = load_settings({"PII_LLM_URL": llm_server.url})
    recognizer = llm_recognizer(settings)
    (r,) = deidentify(
        ["王小明住在北京市海淀区中关村大街1号，电话13812345678"],
        {"PERSON": "placeholder", "ADDRESS": "placeholder", "PHONE": "placeholder"},
        key=KEY,
        llm_recognizer=recognizer,
    )
    assert r.text == "<PERSON_1>住在<ADDRESS_1>，电话<PHONE_1>"
    assert any(path == "/api/generate" and "Find personal data" in body["prompt"] for path, body in llm_server.requests)
