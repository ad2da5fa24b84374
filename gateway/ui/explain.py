"""A decision's body, told in plain language for a person at a counter.

Only what the decision body and the serving policy say: the outcome, each
benefit with its parameters, and for each reason the rule's own title (or the
credit information it read), its legal bases, and the facts' names — never a
value, which the API never returns either.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from gateway.policy.loader import CompiledPolicy, PolicySet
from gateway.ui.i18n import Translator

__all__ = ["DecisionView", "ReasonView", "explain_decision"]


@dataclass(frozen=True, slots=True)
class ReasonView:
    text: str
    legal_basis: tuple[str, ...]
    facts: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DecisionView:
    decision_id: str
    scene: str
    outcome: str
    benefits: tuple[str, ...]
    constraints: tuple[tuple[str, tuple[str, ...]], ...]  # (title, legal bases)
    reasons: tuple[ReasonView, ...]
    policy: str
    issued_at: str
    benefit_until: str | None


def _compiled(policies: PolicySet, body: dict[str, Any]) -> CompiledPolicy | None:
    ref = body.get("policy") or {}
    for compiled in policies.by_scene.get(str(body.get("scene")), ()):
        if compiled.hash == ref.get("hash"):
            return compiled
    return None


def fact_label(policies: PolicySet, name: str, t: Translator) -> str:
    key = f"fact.{name}"
    if t.lang != "zh" and t.has(key):
        return t(key)
    fact = policies.catalogue.facts.get(name)
    if fact is None:
        return name
    return fact.title or fact.source


def _benefit_text(policies: PolicySet, code: str, params: dict[str, Any], t: Translator) -> str:
    key = f"benefit.{code}"
    if t.has(key):
        try:
            return t(key, **params)
        except (KeyError, IndexError):
            pass
    benefit = policies.benefits.benefits.get(code)
    return t("benefit.generic", title=benefit.title if benefit else code)


def explain_decision(
    body: dict[str, Any], policies: PolicySet, t: Translator, tz: ZoneInfo
) -> DecisionView:
    compiled = _compiled(policies, body)
    rules = {r.id: r for r in compiled.policy.rules} if compiled else {}
    reasons = []
    for reason in body.get("reasons", ()):
        facts = tuple(fact_label(policies, f, t) for f in reason.get("facts", ()))
        rule = rules.get(reason.get("rule", ""))
        why = (rule.title if rule and rule.title else None) or t(
            "reason.because", facts="、".join(facts) if t.lang == "zh" else ", ".join(facts)
        )
        if reason.get("effect") == "constrain" and rule and rule.constrain:
            measure = policies.measures.measures.get(rule.constrain.measure)
            text = t("reason.constrain", measure=measure.title if measure else "", why=why)
        else:
            code = rule.grant.benefit if rule and rule.grant else ""
            benefit = policies.benefits.benefits.get(code)
            text = t("reason.grant", benefit=benefit.title if benefit else code, why=why)
        reasons.append(ReasonView(text, tuple(reason.get("legal_basis", ())), facts))
    issued = dt.datetime.fromisoformat(body["issued_at"]).astimezone(tz)
    ref = body.get("policy", {})
    return DecisionView(
        decision_id=body["decision_id"],
        scene=body["scene"],
        outcome=body["outcome"],
        benefits=tuple(
            _benefit_text(policies, b["code"], b.get("params", {}), t)
            for b in body.get("benefits", ())
        ),
        constraints=tuple(
            (c["title"], tuple(c.get("legal_basis", ()))) for c in body.get("constraints", ())
        ),
        reasons=tuple(reasons),
        policy=f"{ref.get('id', '')} {ref.get('version', '')}",
        issued_at=issued.strftime("%Y-%m-%d %H:%M"),
        benefit_until=body.get("benefit_until"),
    )
