"""Label selectors: the Kubernetes ``LabelSelector`` shape, matching and query text."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

OPT_IN_LABEL = "tuner.dev/enabled"
"""The label that opts a workload into tuning when no other selector is given."""


class SelectorRequirement(BaseModel):
    """One set-based requirement, e.g. ``{key: tier, operator: In, values: [web]}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """True when the labels satisfy this requirement."""
        if self.operator == "Exists":
            return self.key in labels
        if self.operator == "DoesNotExist":
            return self.key not in labels
        inside = self.key in labels and labels[self.key] in self.values
        return inside if self.operator == "In" else not inside

    def to_query(self) -> str:
        """The requirement in the API's ``labelSelector`` syntax."""
        if self.operator == "Exists":
            return self.key
        if self.operator == "DoesNotExist":
            return f"!{self.key}"
        op = "in" if self.operator == "In" else "notin"
        return f"{self.key} {op} ({','.join(self.values)})"


class LabelSelector(BaseModel):
    """Selects workloads by labels, as a Kubernetes ``LabelSelector`` does."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    match_labels: dict[str, str] = Field(default_factory=dict, alias="matchLabels")
    match_expressions: tuple[SelectorRequirement, ...] = Field(default=(), alias="matchExpressions")

    @classmethod
    def opt_in(cls) -> LabelSelector:
        """The default selector: workloads labelled ``tuner.dev/enabled=true``."""
        return cls(match_labels={OPT_IN_LABEL: "true"})

    def matches(self, labels: Mapping[str, str]) -> bool:
        """True when the labels satisfy every part of the selector."""
        return all(labels.get(k) == v for k, v in self.match_labels.items()) and all(
            requirement.matches(labels) for requirement in self.match_expressions
        )

    def to_query(self) -> str:
        """The selector in the API's ``labelSelector`` query syntax."""
        parts = [f"{k}={v}" for k, v in sorted(self.match_labels.items())]
        parts += [requirement.to_query() for requirement in self.match_expressions]
        return ",".join(parts)
