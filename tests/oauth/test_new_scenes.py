"""The scenes added as data (信易租, 信易医, 信易税, 信易停) end to end over HTTP with tokens.

Each partner signs in with client credentials (an access token, not an API
key), asks for a demo subject, and gets a benefit token a verifier checks
through the served JWKS alone; the subject's listed outcome holds in each.
"""

from __future__ import annotations

import pytest

from tests.oauth.conftest import OAuthDemo
from tests.oauth.jose_kit import pyjwt_decode

# scene → (asking partner, a demo subject granted there, its benefit codes)
NEW_SCENES = {
    "rental": ("demo-rental", "tax grade A, clean for 3+ years", ["deposit_waiver"]),
    "medical": ("demo-hospital", "person, credit score 650", ["pay_after_service"]),
    "tax": ("demo-tax-hall", "个体工商户, tax grade A", ["invoice_on_demand", "green_channel"]),
    "parking": ("demo-parking", "person, score 630, no registration", ["pay_after_service"]),
}


@pytest.mark.parametrize("scene", sorted(NEW_SCENES))
async def test_a_new_scene_grants_with_a_verifiable_token(
    oauth_demo: OAuthDemo, scene: str
) -> None:
    partner, label, benefits = NEW_SCENES[scene]
    bearer = await oauth_demo.bearer(partner)
    subject = oauth_demo.subject(label)
    response = await oauth_demo.decide(subject, scene, partner, headers=bearer)
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body["outcome"] == "granted", body
    assert [b["code"] for b in body["benefits"]] == benefits
    claims = pyjwt_decode(
        body["token"], await oauth_demo.jwks(), audience=partner, issuer=oauth_demo.issuer
    )
    assert claims["scene"] == scene
    assert claims["benefits"] == body["benefits"]
    assert (await oauth_demo.introspect(body["token"], partner))["active"] is True


async def test_every_new_scene_subject_gets_its_listed_outcome(oauth_demo: OAuthDemo) -> None:
    seen = set()
    for scene, (partner, _, _) in NEW_SCENES.items():
        bearer = await oauth_demo.bearer(partner)
        for subject in oauth_demo.data["subjects"]:
            if scene not in subject["expected"]:
                continue
            response = await oauth_demo.decide(subject, scene, partner, headers=bearer)
            assert response.status == 200, (subject["label"], await response.text())
            body = await response.json()
            assert body["outcome"] == subject["expected"][scene], (scene, subject["label"])
            seen.add((scene, body["outcome"]))
    # 信易税 constrains on the tax authority's list; 信易医 never constrains.
    assert ("tax", "constrained") in seen
    assert {o for s, o in seen if s == "medical"} == {"granted", "standard"}


async def test_a_new_scene_partner_may_not_ask_in_another(oauth_demo: OAuthDemo) -> None:
    bearer = await oauth_demo.bearer("demo-hospital")
    subject = oauth_demo.subject("person, credit score 650")
    response = await oauth_demo.decide(subject, "parking", "demo-hospital", headers=bearer)
    assert response.status == 403
    assert (await response.json())["code"] == "forbidden_scene"
