"""The interface in Chinese (zh-CN) and English, with Flask-Babel.

The language is the user's own choice (their profile, set with the switch in the top bar), else
the one chosen before logging in (a cookie), else the browser's Accept-Language, else English.
Page strings are marked with ``_()`` in templates and Python; ``make translations`` extracts
them (``pybabel extract``) and compiles ``webapp/translations/zh_Hans_CN`` (Babel names zh_CN so) (``pybabel compile``).

Texts people label are never translated; their blocks carry ``lang="zh"`` when they hold
Chinese (``webapp.args.has_cjk``) so the browser picks CJK glyphs.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, request
from flask_babel import Babel, get_locale, lazy_gettext
from flask_login import current_user

LANGUAGES = {"en": "English", "zh_CN": "中文"}
COOKIE = "labelops_lang"
babel = Babel()


def locale_of_request() -> str:
    """The language of this request (see the module docstring)."""
    user = current_user
    chosen = getattr(user, "language", None) if getattr(user, "is_authenticated", False) else None
    if chosen in LANGUAGES:
        return str(chosen)
    cookie = request.cookies.get(COOKIE)
    if cookie in LANGUAGES:
        return str(cookie)
    best = request.accept_languages.best_match(["en", "zh_CN", "zh", "zh_Hans", "zh_TW", "zh_HK"], default="en")
    return "zh_CN" if best and best.startswith("zh") else "en"


def html_lang() -> str:
    """The page's ``lang`` attribute (BCP 47)."""
    return "zh-CN" if str(get_locale()) in ("zh_Hans_CN", "zh_CN") else "en"


def init_app(app: Flask) -> None:
    babel.init_app(app, locale_selector=locale_of_request, default_translation_directories="translations")

    @app.context_processor
    def languages() -> dict[str, Any]:
        return {"languages": LANGUAGES, "html_lang": html_lang()}


# Words the library declares (include.services) and the pages show: marked here so that
# extraction finds them; the pages translate them with ``_(word)``.
DECLARED = (
    lazy_gettext("Skip"),
    lazy_gettext("Not sure"),
    lazy_gettext("Bad item"),
    lazy_gettext("Personal data left in"),
    lazy_gettext("Guidelines unclear"),
    lazy_gettext("every label not reviewed yet"),
    lazy_gettext("tasks whose annotators disagree"),
    lazy_gettext("labels the model disagrees with"),
    lazy_gettext("tasks with an open flag"),
    lazy_gettext("evaluation items waiting for a checked label"),
    lazy_gettext("likely mistakes (label reliability, from the last quality check)"),
    lazy_gettext("assigned"),
    lazy_gettext("labeled"),
    lazy_gettext("conflict"),
    lazy_gettext("imported"),
    lazy_gettext("deleted"),
    lazy_gettext("accepted"),
    lazy_gettext("fixed"),
    lazy_gettext("rejected"),
    lazy_gettext("admin"),
    lazy_gettext("annotator"),
    lazy_gettext("reviewer"),
    lazy_gettext(" of yours"),
    lazy_gettext("skip"),
    lazy_gettext("not_sure"),
    lazy_gettext("bad_item"),
    lazy_gettext("pii_left"),
    lazy_gettext("guideline_unclear"),
)
