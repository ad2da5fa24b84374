"""Where schemathesis (tests/fuzz) found the document and the server disagreeing.

Each test pins one finding: the server's answer and what the served document
says about that request must agree.
"""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from tests.conftest import Demo

OPERATOR = "demo-operator"
KEY_POSTS = ("/v1/admin/keys", "/v1/admin/keys/{kid}/activate", "/v1/admin/keys/{kid}/retire")


async def _document(demo: Demo) -> dict[str, Any]:
    response = await demo.client.get("/openapi.json")
    assert response.status == 200
    document: dict[str, Any] = await response.json()
    return document


def _body_schema(document: dict[str, Any], path: str, method: str, media: str) -> dict[str, Any]:
    schema: dict[str, Any] = document["paths"][path][method]["requestBody"]["content"][media][
        "schema"
    ]
    return schema


def _accepts(schema: dict[str, Any], body: Any) -> bool:
    return jsonschema.Draft202012Validator(schema).is_valid(body)


async def _new_kid(demo: Demo) -> str:
    response = await demo.client.post("/v1/admin/keys", json={}, headers=demo.auth(OPERATOR))
    assert response.status == 201
    kid: str = (await response.json())["kid"]
    return kid


@pytest.mark.parametrize("template", KEY_POSTS)
async def test_key_operations_document_their_400_for_a_body_that_is_not_json(
    demo: Demo, template: str
) -> None:
    path = template.format(kid=await _new_kid(demo))
    headers = demo.auth(OPERATOR) | {"Content-Type": "application/json"}
    response = await demo.client.post(path, data=b"\x00", headers=headers)
    assert response.status == 400
    assert (await response.json())["code"] == "invalid_request"
    assert "400" in (await _document(demo))["paths"][template]["post"]["responses"]


@pytest.mark.parametrize(
    ("template", "field"),
    [
        ("/v1/admin/keys/{kid}/activate", "alg"),
        ("/v1/admin/keys/{kid}/retire", "alg"),
        ("/v1/admin/keys", "force"),
    ],
)
async def test_key_operations_refuse_a_field_they_would_ignore(
    demo: Demo, template: str, field: str
) -> None:
    # activate and retire used to take any "alg" and ignore it; publish ignored "force".
    value: Any = "EdDSA" if field == "alg" else True
    path = template.format(kid=await _new_kid(demo))
    response = await demo.client.post(path, json={field: value}, headers=demo.auth(OPERATOR))
    assert response.status == 422
    problem = await response.json()
    assert [e["pointer"] for e in problem["errors"]] == [f"/{field}"]
    schema = _body_schema(await _document(demo), template, "post", "application/json")
    assert not _accepts(schema, {field: value})


async def test_key_operations_with_a_documented_body_still_work(demo: Demo) -> None:
    document = await _document(demo)
    publish = {"alg": "ES256"}
    assert _accepts(_body_schema(document, "/v1/admin/keys", "post", "application/json"), publish)
    published = await demo.client.post("/v1/admin/keys", json=publish, headers=demo.auth(OPERATOR))
    assert published.status == 201
    kid = (await published.json())["kid"]
    activate = "/v1/admin/keys/{kid}/activate"
    assert _accepts(_body_schema(document, activate, "post", "application/json"), {"force": True})
    activated = await demo.client.post(
        activate.format(kid=kid), json={"force": True}, headers=demo.auth(OPERATOR)
    )
    assert activated.status == 200, await activated.text()
    assert (await activated.json())["status"] == "active"


@pytest.mark.parametrize("media", ["application/json", "application/x-www-form-urlencoded"])
async def test_introspection_documents_that_the_token_is_not_empty(demo: Demo, media: str) -> None:
    headers = demo.auth("demo-library")
    if media == "application/json":
        response = await demo.client.post("/v1/tokens/introspect", json={}, headers=headers)
    else:
        response = await demo.client.post(
            "/v1/tokens/introspect", data={"token": ""}, headers=headers
        )
    assert response.status == 422
    schema = _body_schema(await _document(demo), "/v1/tokens/introspect", "post", media)
    assert not _accepts(schema, {"token": ""})
    assert not _accepts(schema, {})
    assert _accepts(schema, {"token": "a.b.c"})


async def test_token_endpoint_documents_that_the_assertion_is_not_empty(demo: Demo) -> None:
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": "",
    }
    response = await demo.client.post("/oauth/token", data=form)
    assert response.status == 400
    assert (await response.json())["error"] == "invalid_request"
    schema = _body_schema(
        await _document(demo), "/oauth/token", "post", "application/x-www-form-urlencoded"
    )
    assert not _accepts(schema, form)
    assert _accepts(schema, form | {"client_assertion": "a.b.c"})


async def test_every_link_names_an_operation_and_its_path_parameters(demo: Demo) -> None:
    # The fuzzer's stateful phase follows these links; a dangling one would silently stop it.
    document = await _document(demo)
    links = [
        (path, status, name, link)
        for path, operations in document["paths"].items()
        for operation in operations.values()
        for status, response in operation["responses"].items()
        for name, link in response.get("links", {}).items()
    ]
    assert {name for *_, name, _ in links} >= {
        "GetDecision",
        "SendFeedback",
        "RevokeConsent",
        "ActivateKey",
        "RetireKey",
    }
    for path, status, name, link in links:
        pointer, method = link["operationRef"].removeprefix("#/paths/").rsplit("/", 1)
        target_path = pointer.replace("~1", "/").replace("~0", "~")
        target = document["paths"][target_path][method]
        path_params = {p["name"] for p in target.get("parameters", []) if p["in"] == "path"}
        assert set(link["parameters"]) == path_params, (path, status, name)


async def test_a_checkpoint_size_that_is_not_a_number_is_a_documented_422(demo: Demo) -> None:
    """Found by the fuzzer: /v1/audit/checkpoints/{tree_size} answered an undocumented 422."""
    answer = await demo.client.get(
        "/v1/audit/checkpoints/null,null", headers=demo.auth("demo-auditor")
    )
    assert answer.status == 422
    document = await (await demo.client.get("/openapi.json")).json()
    assert "422" in document["paths"]["/v1/audit/checkpoints/{tree_size}"]["get"]["responses"]


@pytest.mark.parametrize(
    ("path", "operation"),
    [
        ("/v1/loan-products?status=AAA", "/v1/loan-products"),
        ("/v1/loan-products/any?version=0", "/v1/loan-products/{product_id}"),
    ],
)
async def test_a_bad_loan_query_parameter_is_a_documented_422(
    demo: Demo, path: str, operation: str
) -> None:
    """Found by the fuzzer: the loan GETs answered 422s their description did not name."""
    answer = await demo.client.get(path, headers=demo.auth("demo-bank"))
    assert answer.status == 422
    document = await (await demo.client.get("/openapi.json")).json()
    assert "422" in document["paths"][operation]["get"]["responses"]
