"""What a policy reload changes for subjects: ``policy diff`` between serving and new sets.

Each policy in the new set that is not in the serving set (by file hash) is
compared with the serving set's latest version for the same scene. The result
names kinds of change and the rules behind them, never example facts: those
go to the command line (``policy diff``), not to the log. Imports z3 (through
diff.py): callers import this module lazily.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.policy.diff import PolicyDiff, diff_policies
from gateway.policy.loader import CompiledPolicy, PolicySet

__all__ = ["PolicyImpact", "reload_impact"]


@dataclass(frozen=True, slots=True)
class PolicyImpact:
    old: CompiledPolicy
    new: CompiledPolicy
    diff: PolicyDiff

    @property
    def removes_benefits(self) -> bool:
        return bool(self.diff.losses)

    @property
    def gains(self) -> list[str]:
        return sorted({f"{c.kind}:{c.what}" for c in self.diff.gains})

    @property
    def losses(self) -> list[str]:
        return sorted({f"{c.kind}:{c.what}" for c in self.diff.losses})

    def summary(self) -> dict[str, object]:
        """Loggable: versions and kinds of change, no subject's facts."""
        return {
            "scene": self.new.policy.scene,
            "policy": self.new.policy.id,
            "old_version": self.old.policy.version,
            "new_version": self.new.policy.version,
            "equivalent": self.diff.equivalent,
            "gains": self.gains,
            "losses": self.losses,
            "change_reason": self.new.policy.change_reason,
        }


def reload_impact(serving: PolicySet, fresh: PolicySet) -> list[PolicyImpact]:
    known = {c.hash for versions in serving.by_scene.values() for c in versions}
    impacts = []
    for scene, versions in sorted(fresh.by_scene.items()):
        before = serving.by_scene.get(scene)
        if not before:
            continue  # a new scene takes nothing from anyone
        for compiled in versions:
            if compiled.hash in known:
                continue
            diff = diff_policies(before[0].policy, compiled.policy, fresh.catalogue, fresh.benefits)
            impacts.append(PolicyImpact(before[0], compiled, diff))
    return impacts
