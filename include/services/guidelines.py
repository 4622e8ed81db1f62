"""Labeling guidelines: what to label how, versioned, and shown wherever people label.

The guidelines are Markdown. They are rendered by markdown-it-py with raw HTML off and the
result sanitised by nh3 (an allow-list of tags and attributes), so text an admin pastes can
never run script in an annotator's browser or in Label Studio's instruction panel. Each change
is a new version; a label records the version its annotator had in front of them, Label Studio's
project shows the current one as its instruction, and the LLM prompts read the same text.

Guidelines are meant to be read by every annotator and sent to an LLM: a phone number, an ID or
a bank card in an example is refused, whatever the dataset's policy (URLs are allowed).
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from include.db.models import Dataset, ExtraAssignee, GuidelineVersion, Task, User
from include.errors import NotFound
from include.params import ParamSpec, Values, param
from include.services.datasets import LABEL_DESCRIPTIONS, validate_label_descriptions
from include.services.free_text import PersonalDataInText, check_free_text

GUIDELINES = ParamSpec(
    "guidelines", "Guidelines", "text", "", max_length=20_000,
    help="Markdown: what each label covers, the hard cases, examples (no personal data)",
)  # fmt: skip
PROMPT_LIMIT = 4000  # characters of the guidelines an LLM prompt carries
# What an admin's Markdown may become: text structure, links and tables; no images (they would
# load from anywhere), no script, no style, no forms.
_TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "code", "pre", "blockquote",
    "ul", "ol", "li", "a", "table", "thead", "tbody", "tr", "th", "td", "dl", "dt", "dd",
}  # fmt: skip
READERS = "every annotator and the LLM"
# Guidelines that cannot be saved (personal data in them): include.services.free_text.
GuidelinesError = PersonalDataInText


@dataclass(frozen=True, kw_only=True)
class Guidelines(Values):
    """A dataset's guidelines and what each label means (the request body and the form)."""

    guidelines: str = param(GUIDELINES)
    label_descriptions: dict[str, str] | None = param(LABEL_DESCRIPTIONS)


@dataclass(frozen=True)
class Saved:
    version: int
    changed: bool  # False: the same text again, no new version


@cache
def _markdown() -> Any:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")


def render(text: str) -> str:
    """Safe HTML of the Markdown ``text`` (links open in a new tab, without a referrer)."""
    import nh3

    if not text.strip():
        return ""
    return str(
        nh3.clean(
            _markdown().render(text),
            tags=_TAGS,
            attributes={"a": {"href", "title"}, "th": {"align"}, "td": {"align"}},
            url_schemes={"http", "https", "mailto"},
            link_rel="noopener noreferrer",
            set_tag_attribute_values={"a": {"target": "_blank"}},
        )
    )


def instruction_html(dataset: Dataset) -> str:
    """What Label Studio's project shows as its instruction: the guidelines, then each label."""
    labels = "".join(
        f"<dt>{html.escape(label)}</dt><dd>{html.escape(dataset.label_descriptions.get(label, ''))}</dd>"
        for label in dataset.labels
        if dataset.label_descriptions.get(label)
    )
    return render(dataset.guidelines) + (f"<dl>{labels}</dl>" if labels else "")


def prompt_text(dataset: Dataset) -> str | None:
    """The guidelines as an LLM prompt carries them (Markdown, at most PROMPT_LIMIT characters)."""
    text = dataset.guidelines.strip()
    if not text:
        return None
    return text if len(text) <= PROMPT_LIMIT else text[:PROMPT_LIMIT].rsplit("\n", 1)[0] + "\n…"


def save(session: Session, dataset: Dataset, body: Guidelines, by: int | None) -> Saved:
    """Save the guidelines and label descriptions as a new version (nothing new when unchanged).

    ``label_descriptions`` None keeps the current ones.

    Raises:
        GuidelinesError: personal data in them. DatasetError: unstorable text, unknown labels.
    """
    # Two admins saving at once: the second waits and numbers its version after the first's.
    session.refresh(dataset, with_for_update=True)
    text = body.guidelines.strip()
    descriptions = (
        dict(dataset.label_descriptions or {})
        if body.label_descriptions is None
        else validate_label_descriptions(body.label_descriptions, dataset.labels)
    )
    if text == dataset.guidelines and descriptions == dict(dataset.label_descriptions or {}):
        return Saved(dataset.guidelines_version, changed=False)
    check_free_text(text + "\n" + "\n".join(descriptions.values()), "the guidelines", readers=READERS)
    version = dataset.guidelines_version + 1
    session.add(
        GuidelineVersion(
            dataset_id=dataset.id, version=version, text=text, label_descriptions=descriptions, created_by=by
        )
    )
    dataset.guidelines, dataset.label_descriptions, dataset.guidelines_version = text, descriptions, version
    session.flush()
    return Saved(version, changed=True)


class GuidelinesNotFound(NotFound):
    """No such dataset, or none the annotator has a task in (which looks the same to them)."""


def for_annotator(session: Session, dataset_id: int, user: User) -> Dataset:
    """The dataset whose guidelines ``user`` may read: one they have a task in.

    Raises:
        GuidelinesNotFound: no such dataset, or no task of theirs in it.
    """
    mine = select(Task.id).where(Task.dataset_id == dataset_id, Task.assigned_to == user.id)
    shared = (
        select(Task.id)
        .join(ExtraAssignee, ExtraAssignee.task_id == Task.id)
        .where(Task.dataset_id == dataset_id, ExtraAssignee.user_id == user.id)
    )
    dataset = session.get(Dataset, dataset_id)
    if dataset is None or session.scalar(select(exists(mine.union_all(shared).subquery()))) is not True:
        raise GuidelinesNotFound(f"dataset {dataset_id} not found")
    return dataset


def versions(session: Session, dataset_id: int) -> list[GuidelineVersion]:
    """Every saved version, newest first."""
    return list(
        session.scalars(
            select(GuidelineVersion)
            .where(GuidelineVersion.dataset_id == dataset_id)
            .order_by(GuidelineVersion.version.desc())
        )
    )
