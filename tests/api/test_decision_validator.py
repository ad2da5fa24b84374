"""The decision path's one-pass validator accepts exactly what the two models accept.

``gateway.api.decisions`` validates a decision request once, with
``decision_validator``, and asks ``DecisionBody`` and the scene's context
model only about a body it refuses (their errors are the ones reported). So
the validator must accept no body the models refuse, and give for an accepted
one the very fields and context the models give: checked here over a few
thousand bodies, valid and not, for every kind of context fact.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from gateway.api.schemas import DecisionBody, decision_validator
from gateway.policy.loader import _context_field, load_policy_dir
from gateway.policy.model import Fact

POLICIES = Path(__file__).resolve().parents[2] / "policies"


def _every_type_model() -> type[BaseModel]:
    """A context model with a required and an optional field of every fact type."""
    fields: dict[str, Any] = {}
    for kind in ("integer", "number", "boolean", "string", "date", "enum"):
        fact = Fact.model_validate(
            {
                "type": kind,
                "subject": "any",
                "class": "context",
                "domain": "request",
                "source": "test",
                **({"values": ["low", "high"]} if kind == "enum" else {}),
            }
        )
        fields[f"{kind}_needed"] = _context_field(fact, True)
        fields[f"{kind}_maybe"] = _context_field(fact, False)
    return create_model(  # type: ignore[call-overload, no-any-return]
        "Context_every", __config__=ConfigDict(extra="forbid", strict=False), **fields
    )


def _models() -> list[type[BaseModel]]:
    policies = load_policy_dir(POLICIES)
    scenes = [c.context_model for cs in policies.by_scene.values() for c in cs]
    return [*scenes, _every_type_model()]


VALUES: list[Any] = [
    None,
    0,
    1,
    -1,
    2**70,
    1.5,
    -0.5,
    0.0,
    True,
    False,
    "",
    "x",
    "1",
    "a" * 257,
    "2026-01-31",
    "2026-02-30",
    "low",
    "high",
    [],
    [1],
    {},
    {"a": 1},
]


def _by_models(data: Any, model: type[BaseModel]) -> Any:
    """What the two models make of a body: its fields, or None when either refuses it."""
    try:
        body = DecisionBody.model_validate(data)
        context = model.model_validate(body.context).model_dump(exclude_none=True)
    except ValidationError:
        return None
    subject = body.subject
    fields = (subject.kind, subject.id, body.purpose, body.consent_id, body.staff_id)
    return fields, [(k, type(v), v) for k, v in context.items()]


def _by_validator(data: Any, model: type[BaseModel]) -> Any:
    try:
        valid = decision_validator(model).validate_python(data)
    except ValidationError:
        return None
    subject = valid["subject"]
    fields = (subject["kind"], subject["id"], valid["purpose"], valid["consent_id"])
    context = [(k, type(v), v) for k, v in valid["context"].items() if v is not None]
    return (*fields, valid["staff_id"]), context


def _fitting(model: type[BaseModel], name: str) -> list[Any]:
    """The values of VALUES the model takes for one field."""
    fit = []
    for value in VALUES:
        try:
            model.model_validate({name: value})
        except ValidationError as exc:
            if any(e["loc"][:1] == (name,) for e in exc.errors()):
                continue
        fit.append(value)
    return fit


def _bodies(model: type[BaseModel], rng: random.Random) -> list[Any]:
    names = list(model.model_fields)
    fitting = {name: _fitting(model, name) for name in names}
    good = {"subject": {"kind": "person", "id": "110101199003077777"}, "purpose": "p1"}
    bodies: list[Any] = [None, [], "x", {}, good, {**good, "context": {}}]
    for name in names:  # each field alone, with every value
        bodies += [{**good, "context": {name: value}} for value in VALUES]
    for _ in range(1500):
        body: dict[str, Any] = dict(good)
        if rng.random() < 0.15:
            body["subject"] = rng.choice(
                [
                    {"kind": "enterprise", "id": "91350100M000100Y43"},
                    {"kind": "robot", "id": "1"},
                    {"kind": "person"},
                    {"kind": "person", "id": ""},
                    {"kind": "person", "id": "1" * 33},
                    {"kind": "person", "id": 7},
                    {"kind": "person", "id": "1", "x": 1},
                    "person",
                ]
            )
        if rng.random() < 0.1:
            body["purpose"] = rng.choice(["", "-x", "a" * 65, 3, None, "ok.name:1"])
        if rng.random() < 0.05:
            del body["purpose"]
        for optional, limit in (("consent_id", 128), ("staff_id", 64)):
            if rng.random() < 0.2:
                body[optional] = rng.choice([None, "c", "c" * limit, "c" * (limit + 1), 5])
        if rng.random() < 0.05:
            body["extra"] = 1
        if rng.random() < 0.9:
            context: Any = {
                n: rng.choice(fitting[n] if rng.random() < 0.8 else VALUES)
                for n in names
                if model.model_fields[n].is_required() or rng.random() < 0.6
            }
            if rng.random() < 0.05:
                context["unknown"] = 1
            members = list(context.items())
            rng.shuffle(members)  # the answer is in field order whatever the body's order
            context = dict(members)
            if rng.random() < 0.03:
                context = rng.choice([None, [], "x", 1])
            body["context"] = context
        bodies.append(body)
    return bodies


@pytest.mark.parametrize("model", _models(), ids=lambda m: m.__name__)
def test_the_validator_accepts_what_the_models_accept(model: type[BaseModel]) -> None:
    rng = random.Random(17)
    accepted = refused = 0
    for body in _bodies(model, rng):
        expected = _by_models(body, model)
        # Types and key order too: the context reaches facts, tokens and stored rows.
        assert _by_validator(body, model) == expected, body
        if expected is None:
            refused += 1
        else:
            accepted += 1
    # The corpus exercises both sides.
    assert accepted > 50, accepted
    assert refused > 50, refused


def test_the_validator_is_built_once_per_context_model() -> None:
    model = _every_type_model()
    assert decision_validator(model) is decision_validator(model)
