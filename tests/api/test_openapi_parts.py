"""Operations described beside their handlers reach the served document."""

from __future__ import annotations

from typing import ClassVar

import pytest
from pydantic import BaseModel

from gateway.api import registry, spec
from gateway.api.openapi import build_document
from tests.conftest import Demo


class _Probe(BaseModel):
    answer: int


def test_an_operation_cannot_be_described_twice_in_one_part() -> None:
    part = spec.ApiPart()
    part.add("/v1/x", "get", {"responses": {}})
    with pytest.raises(ValueError, match="described twice"):
        part.add("/v1/x", "get", {"responses": {}})


async def test_a_module_part_and_its_models_are_served(
    demo: Demo, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Module:
        routes: ClassVar[list[object]] = []
        openapi: ClassVar[spec.ApiPart] = spec.ApiPart()

    Module.openapi.add(
        "/v1/probe",
        "post",
        {
            "summary": "probe",
            "security": spec.BEARER,
            "requestBody": {"content": {"application/json": {"schema": spec.model_ref("_Probe")}}},
            "responses": {"200": spec.json_content({"type": "object"}), **spec.AUTH_ERRORS},
        },
    )
    Module.openapi.model(_Probe)
    monkeypatch.setattr(registry, "MODULES", (*registry.MODULES, Module))
    document = await (await demo.client.get("/openapi.json")).json()
    assert document["paths"]["/v1/probe"]["post"]["summary"] == "probe"
    assert document["components"]["schemas"]["_Probe"]["properties"]["answer"]["type"] == "integer"


async def test_a_part_may_not_redescribe_a_core_operation(
    demo: Demo, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Module:
        routes: ClassVar[list[object]] = []
        openapi: ClassVar[spec.ApiPart] = spec.ApiPart()

    Module.openapi.add("/healthz", "get", {"responses": {}})
    monkeypatch.setattr(registry, "MODULES", (*registry.MODULES, Module))
    with pytest.raises(ValueError, match="described twice"):
        build_document(demo.gateway)


async def test_every_path_comes_from_a_module_part(
    demo: Demo, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The assembler describes nothing itself: with no modules the document has no paths.
    monkeypatch.setattr(registry, "MODULES", ())
    document = build_document(demo.gateway)
    assert document["paths"] == {}
    assert set(document["components"]["schemas"]) == {"Problem"}


async def test_a_part_may_add_schemas_that_depend_on_the_gateway(
    demo: Demo, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Module:
        routes: ClassVar[list[object]] = []
        openapi: ClassVar[spec.ApiPart] = spec.ApiPart()

    Module.openapi.dynamic_schemas.append(
        lambda gw: {"Issuer": {"type": "string", "const": gw.settings.issuer}}
    )
    monkeypatch.setattr(registry, "MODULES", (*registry.MODULES, Module))
    document = build_document(demo.gateway)
    assert document["components"]["schemas"]["Issuer"]["const"] == demo.gateway.settings.issuer


async def test_scenes_and_their_contexts_follow_the_active_policies(demo: Demo) -> None:
    document = await (await demo.client.get("/openapi.json")).json()
    active = [c.policy.scene for c in demo.gateway.policies.active_all(demo.gateway.today())]
    assert active
    (scene,) = document["paths"]["/v1/scenes/{scene}/decisions"]["post"]["parameters"][:1]
    assert scene["schema"]["enum"] == active
    schemas = document["components"]["schemas"]
    for name in active:
        assert schemas[f"Context_{name}"]["type"] == "object"


@pytest.mark.parametrize(
    "path",
    [
        "/v1/scenes/{scene}/decisions",
        "/v1/decisions/{decision_id}/feedback",
        "/v1/consents",
        "/v1/consents/counter",
        "/v1/events/credit",
        "/v1/commitments",
        "/v1/loan-products",
        "/v1/loan-demands",
        "/v1/loan-demands/{demand_id}/responses",
    ],
)
async def test_idempotent_posts_take_the_key_and_say_when_it_is_busy(demo: Demo, path: str) -> None:
    document = await (await demo.client.get("/openapi.json")).json()
    operation = document["paths"][path]["post"]
    assert [p["name"] for p in operation["parameters"] if p["in"] == "header"] == [
        "Idempotency-Key"
    ]
    assert "idempotency_in_progress" in operation["responses"]["409"]["description"]


async def test_feedback_conflict_names_both_of_its_causes(demo: Demo) -> None:
    document = await (await demo.client.get("/openapi.json")).json()
    operation = document["paths"]["/v1/decisions/{decision_id}/feedback"]["post"]
    conflict = operation["responses"]["409"]["description"]
    assert "feedback_limit" in conflict
    assert "idempotency_in_progress" in conflict
