"""Where the serving policy set comes from: a directory, or a signed bundle."""

from __future__ import annotations

from gateway.policy.bundle import BundleError, load_bundle, load_trusted_keys
from gateway.policy.loader import PolicySet, load_policy_dir
from gateway.settings import Settings

__all__ = ["load_configured_policies"]


def load_configured_policies(settings: Settings) -> PolicySet:
    """Load what the settings name; PolicyLoadError or BundleError when refused."""
    if settings.policy_bundle is not None:
        trusted = load_trusted_keys(settings.policy_keys) if settings.policy_keys else None
        if trusted is None and settings.mode == "production":
            raise BundleError("production mode needs policy_keys to verify the bundle")
        return load_bundle(settings.policy_bundle, trusted)
    if settings.mode == "production":
        raise BundleError("production mode loads only signed policy bundles")
    return load_policy_dir(settings.policy_dir)
