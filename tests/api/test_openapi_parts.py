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
