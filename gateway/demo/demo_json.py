"""demo.json: what a demo start hands its user (keys, staff, subjects), and reads back."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from gateway.demo.partners import ENTERPRISE_CONTEXT, PARTNERS, PERSON_CONTEXT

if TYPE_CHECKING:
    from gateway.demo import DemoSetup

__all__ = ["read_previous", "write_demo_json"]


def read_previous(state_dir: Path) -> dict[str, Any]:
    """Partners' keys and consent ids from the last start's demo.json, if it is usable."""
    try:
        data = orjson.loads((state_dir / "demo.json").read_bytes())
        partners = {
            p["id"]: {"api_key": str(p["api_key"]), "client_key": str(p["client_key"])}
            for p in data["partners"]
        }
        consents = {
            str(s["id"]): {pid: str(c["consent_id"]) for pid, c in s["consents"].items()}
            for s in data["subjects"]
        }
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
        return {}
    return {"partners": partners, "consents": consents}


def write_demo_json(setup: DemoSetup, base_url: str) -> Path:
    data = {
        "base_url": base_url,
        "partners": [
            {
                "id": p.id,
                "kind": p.kind,
                "api_key": setup.api_keys[p.id],
                # development only: the private JWK the partner signs client assertions with
                "client_key": str(setup.client_keys[p.id]),
                "scenes": list(p.scenes),
                "purposes": list(p.purposes),
            }
            for p in PARTNERS
        ],
        # development only: staff sign-in for the pages at /ui
        "ui_users": [
            {"username": name, "password": password, "partner": partner}
            for name, (partner, password) in setup.ui_users.items()
        ],
        "subjects": [
            {
                "kind": s.kind,
                "id": s.id,
                "label": s.label,
                "consents": s.consents,
                "context": ENTERPRISE_CONTEXT if s.kind == "enterprise" else PERSON_CONTEXT,
                "expected": s.expected,
            }
            for s in setup.subjects
        ],
    }
    # Written whole, then renamed: a reader never sees half a file.
    path = setup.state_dir / "demo.json"
    part = path.with_suffix(".json.part")
    part.unlink(missing_ok=True)
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(orjson.dumps(data, option=orjson.OPT_INDENT_2))
    part.replace(path)
    return path
