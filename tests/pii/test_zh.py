"""Chinese names and addresses offline: found with the evidence around them, near-misses left
alone (the measured figures are bench/pii_zh.py's; these pin the rules' behaviour)."""

from __future__ import annotations

import pytest

from include.pii.engine import deidentify

POLICY = {"PERSON": "placeholder", "ADDRESS": "placeholder", "PHONE": "placeholder"}


def found(text: str) -> list[tuple[str, str]]:
    (result,) = deidentify([text], POLICY, key=None)
    return [(r.entity, r.original) for r in result.replacements]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("客户王小明来电，电话13812345678", [("PERSON", "王小明"), ("PHONE", "13812345678")]),
        ("王先生说屏幕裂了", [("PERSON", "王")]),  # the surname before a title: 王先生 -> <PERSON_1>先生
        ("联系人：欧阳娜娜", [("PERSON", "欧阳娜娜")]),  # a compound surname
        ("张伟反映订单没到", [("PERSON", "张伟")]),
        ("李经理下午回电", [("PERSON", "李")]),
        ("我家住在北京市海淀区中关村大街1号", [("ADDRESS", "北京市海淀区中关村大街1号")]),
        (
            "地址：上海市浦东新区张江路88弄5号楼1201室",
            [("ADDRESS", "上海市浦东新区张江路88弄5号楼1201室")],
        ),
        ("收货人是赵敏，阳光花园3栋2单元501", [("PERSON", "赵敏"), ("ADDRESS", "阳光花园3栋2单元501")]),
    ],
)
def test_names_and_addresses_with_their_evidence(text: str, expected: list[tuple[str, str]]) -> None:
    assert found(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "我买了李宁运动鞋和周大福项链",  # brands named after people
        "王老吉凉茶太甜了",
        "马上给我处理一下",  # an ordinary word that begins with a surname
        "高速公路上车坏了",
        "这位女士的包裹在前台",  # a classifier, not the surname 位
        "项目经理说下周再安排",  # a job title after a role, not a surname
        "人民路上堵车了",  # a road without a number is no address
        "订单号20261207123还没发货",
    ],
)
def test_near_misses_are_left_alone(text: str) -> None:
    assert found(text) == []


def test_replacements_read_naturally() -> None:
    (result,) = deidentify(["客户王先生住在杭州市西湖区文三路90号，电话13812345678"], POLICY, key=None)
    assert result.text == "客户<PERSON_1>先生住在<ADDRESS_1>，电话<PHONE_1>"
