"""Behaviour that may not enter credit supervision at all.

Source: 未经立法程序，不得将信访、拆迁、闯红灯、不文明养犬、欠缴物业费、
未执行垃圾分类等行为纳入信用监管 (Chaoyang 2020 work plan, ../shared/seeds/003,
echoing 国办发〔2020〕49号). The list lives in code, not in configuration, so a
deployment cannot switch it off.
"""

from __future__ import annotations

import unicodedata

__all__ = ["PROHIBITED_DOMAINS", "PROHIBITED_TERMS", "is_prohibited"]

PROHIBITED_DOMAINS = frozenset(
    {
        "petitioning",  # 信访
        "demolition",  # 拆迁
        "minor_traffic_offence",  # 闯红灯 and other minor traffic offences
        "dog_keeping",  # 不文明养犬
        "property_fees",  # 欠缴物业费
        "garbage_sorting",  # 未执行垃圾分类
    }
)

# A fact relabelled with an innocent domain is still caught by what it says it is.
PROHIBITED_TERMS = ("信访", "拆迁", "闯红灯", "养犬", "物业费", "垃圾分类")

# The same words in traditional characters (信訪, 拆遷, 闖紅燈, 養犬, 物業費, 垃圾分類).
_SIMPLIFIED = str.maketrans("訪遷闖紅燈養業費類", "访迁闯红灯养业费类")


def _plain(text: str) -> str:
    """Width-folded (NFKC), whitespace removed, traditional forms of the terms simplified."""
    return "".join(unicodedata.normalize("NFKC", text).split()).translate(_SIMPLIFIED)


def is_prohibited(domain: str, *texts: str | None) -> bool:
    # "Petitioning" or "minor-traffic-offence" is the same domain as the listed one.
    key = "_".join(domain.casefold().replace("-", " ").split())
    if key in PROHIBITED_DOMAINS:
        return True
    # Each text folded once, not once per term: this runs on every record fetched.
    for text in texts:
        if text:
            plain = _plain(text)
            if any(term in plain for term in PROHIBITED_TERMS):
                return True
    return False
