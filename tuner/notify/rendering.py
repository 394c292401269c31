"""Rendering of sections into messages with Jinja2 templates (bundled, or overridden)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import structlog
from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PackageLoader,
    StrictUndefined,
    TemplateError,
)

from tuner.domain.errors import ConfigError, Problem
from tuner.notify.grouping import Section
from tuner.notify.messages import Message
from tuner.notify.views import NoticeView, build_notice

log = structlog.get_logger(__name__)

TEMPLATES = ("title.txt.j2", "text.txt.j2", "slack.md.j2", "email.html.j2")
"""The template names; a file of the same name in the override directory replaces one."""

SLACK_SECTION_LIMIT = 3000
SLACK_MAX_BLOCKS = 48
SLACK_HEADER_LIMIT = 150


def slack_escape(text: Any) -> str:
    """Text made safe for Slack mrkdwn (``&``, ``<`` and ``>`` escaped)."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _environment(loader: BaseLoader) -> Environment:
    env = Environment(
        loader=loader,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=lambda name: bool(name and name.endswith(".html.j2")),
    )
    env.filters["slack"] = slack_escape
    return env


class Renderer:
    """Turns the sections due on a channel into a :class:`Message`.

    An override template that fails at render time falls back to the bundled one, so a
    typo in a template never stops a message.
    """

    def __init__(self, override_dir: Path | None = None):
        self._bundled = _environment(PackageLoader("tuner.notify", "templates"))
        self._override: Environment | None = None
        if override_dir is not None:
            if not override_dir.is_dir():
                raise ConfigError(
                    [Problem(str(override_dir), None, "templates directory does not exist")]
                )
            self._override = _environment(
                ChoiceLoader([FileSystemLoader(str(override_dir)), self._bundled.loader])  # type: ignore[list-item]
            )
            problems = []
            for name in TEMPLATES:
                try:
                    self._override.get_template(name)
                except TemplateError as error:
                    line = getattr(error, "lineno", None)
                    problems.append(Problem(str(override_dir / name), line, str(error)))
            if problems:
                raise ConfigError(problems)

    def render(
        self, channel: str, channel_type: str, sections: Sequence[Section], now: float
    ) -> Message:
        """One message telling ``sections`` on ``channel``."""
        if not any(s.firing for s in sections):
            kind = "resolved"
        else:
            kind = "digest" if len(sections) > 1 else "firing"
        notice = build_notice(kind, channel, sections, now)
        title = self._render("title.txt.j2", notice=notice).strip()
        text = self._render("text.txt.j2", notice=notice).strip() + "\n"
        html = blocks = data = None
        if channel_type == "email":
            html = self._render("email.html.j2", notice=notice, title=title)
        if channel_type == "slack":
            blocks = slack_blocks(title, self._render("slack.md.j2", notice=notice))
        if channel_type == "webhook":
            data = webhook_data(notice, title, text, sections)
        return Message(
            id=uuid.uuid4().hex,
            channel=channel,
            group=sections[0].key if len(sections) == 1 else "digest",
            kind=kind,
            title=title,
            text=text,
            html=html or "",
            blocks=blocks or [],
            data=data or {},
            functions=sorted({a.ref for s in sections for a in (*s.firing, *s.resolved)}),
        )

    def _render(self, name: str, **context: Any) -> str:
        if self._override is not None:
            try:
                return self._override.get_template(name).render(**context)
            except Exception as error:  # a broken override must not stop the message
                log.error("template failed, using the bundled one", template=name, error=str(error))
        return self._bundled.get_template(name).render(**context)


def slack_blocks(title: str, markdown: str) -> list[dict[str, Any]]:
    """Block Kit blocks: a header, then the mrkdwn split into sections at blank lines."""
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _cut(title, SLACK_HEADER_LIMIT)}}
    ]
    chunk = ""
    for paragraph in (p.strip() for p in markdown.split("\n\n")):
        if not paragraph:
            continue
        if chunk and len(chunk) + len(paragraph) + 2 > SLACK_SECTION_LIMIT:
            blocks.append(_section(chunk))
            chunk = ""
        chunk = f"{chunk}\n\n{paragraph}" if chunk else paragraph
    if chunk:
        blocks.append(_section(chunk))
    return blocks[:SLACK_MAX_BLOCKS]


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _cut(text, SLACK_SECTION_LIMIT)}}


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def webhook_data(
    notice: NoticeView, title: str, text: str, sections: Sequence[Section]
) -> dict[str, Any]:
    """The JSON body of a generic webhook: every alert in full, plus the rendered text."""
    return {
        "version": 1,
        "kind": notice.kind,
        "title": title,
        "text": text,
        "proposals": notice.proposals,
        "groups": [
            {
                "key": s.key,
                "firing": [dict(a.to_dict(), new=a.key in s.new) for a in s.firing],
                "resolved": [a.to_dict() for a in s.resolved],
                "silenced": s.silenced,
            }
            for s in sections
        ],
    }
