"""The text-classification labeling config and the annotation result format it produces."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from xml.sax.saxutils import quoteattr

from include.labelstudio.client import LabelStudioConfigError

FROM_NAME = "label"
TO_NAME = "text"
DATA_KEY = "text"


def build_label_config(labels: Sequence[str]) -> str:
    """A single-choice classification of ``$text`` (keyboard hotkeys 1..n in Label Studio)."""
    choices = "".join(f"<Choice value={quoteattr(label)}/>" for label in labels)
    return (
        f'<View><Text name="{TO_NAME}" value="${DATA_KEY}"/>'
        f'<Choices name="{FROM_NAME}" toName="{TO_NAME}" choice="single" showInline="true">{choices}</Choices>'
        "</View>"
    )


def validate_project_config(project: dict[str, Any], labels: Sequence[str], base_url: str = "") -> None:
    """Raise LabelStudioConfigError unless the project classifies ``$text`` into ``labels``."""
    where = f"Label Studio project {project.get('id')}" + (f" at {base_url}" if base_url else "")
    parsed = project.get("parsed_label_config") or {}
    control = parsed.get(FROM_NAME)
    expected = build_label_config(labels)
    if not control or control.get("type") != "Choices":
        raise LabelStudioConfigError(
            f'{where} has no <Choices name="{FROM_NAME}"> control; set its labeling config to {expected} '
            "or unset LS_PROJECT_ID to let the platform create a project"
        )
    inputs = [i.get("value") for i in control.get("inputs", [])]
    if TO_NAME not in control.get("to_name", []) or DATA_KEY not in inputs:
        raise LabelStudioConfigError(
            f'{where}: the "{FROM_NAME}" control must label <Text value="${DATA_KEY}">; expected {expected}'
        )
    missing = [label for label in labels if label not in control.get("labels", [])]
    if missing:
        raise LabelStudioConfigError(
            f"{where} lacks the labels {missing} (it has {control.get('labels')}); add them to its config"
        )


def choice_result(label: str) -> list[dict[str, Any]]:
    """The annotation/prediction ``result`` for one chosen label."""
    return [{"from_name": FROM_NAME, "to_name": TO_NAME, "type": "choices", "value": {"choices": [label]}}]


def label_of(result: Sequence[dict[str, Any]] | None) -> str | None:
    """The chosen label in an annotation result, or None for an empty or unrelated result."""
    for region in result or ():
        if region.get("from_name") == FROM_NAME and region.get("type") == "choices":
            choices = (region.get("value") or {}).get("choices") or []
            if choices:
                return str(choices[0])
    return None
