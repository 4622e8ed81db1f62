"""The interface in Chinese (zh-CN) and English, with Flask-Babel.

The language is the user's own choice (their profile, set with the switch in the top bar), else
the one chosen before logging in (a cookie), else the browser's Accept-Language, else English.
Page strings are marked with ``_()`` in templates and Python; ``make translations`` extracts
them (``pybabel extract``) and compiles ``webapp/translations/zh_Hans_CN`` (Babel names zh_CN so) (``pybabel compile``).

Texts people label are never translated; their blocks carry ``lang="zh"`` when they hold
Chinese (``webapp.args.has_cjk``) so the browser picks CJK glyphs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from flask import Flask, g, request
from flask_babel import Babel, get_locale, gettext, lazy_gettext

LANGUAGES = {"en": "English", "zh_CN": "中文"}
COOKIE = "labelops_lang"
babel = Babel()


def locale_of_request() -> str:
    """The language of this request (see the module docstring).

    The user is read only if the request has loaded them already (every logged-in view has):
    loading them here would query the database, and the "database unavailable" page must render
    without it."""
    user = g.get("_login_user")
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
    # ``tr(text)``: a declared text (a parameter's label, a pipeline's title), translated as it
    # is, never formatted (``_()`` in templates formats with %, which such a text may contain).
    app.jinja_env.globals["tr"] = gettext

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
    # the dataset page's tabs (include.services.dataset_view.TABS)
    lazy_gettext("Overview"),
    lazy_gettext("Labeling"),
    lazy_gettext("Quality and privacy"),
    lazy_gettext("Models"),
    lazy_gettext("People"),
    lazy_gettext("Settings"),
    # form buttons named by the templates that call values_form
    lazy_gettext("Save"),
    lazy_gettext("Save thresholds"),
    lazy_gettext("Auto-assign"),
    # job, model and run states (badges)
    lazy_gettext("queued"),
    lazy_gettext("running"),
    lazy_gettext("success"),
    lazy_gettext("failed"),
    lazy_gettext("skipped"),
    lazy_gettext("candidate"),
    lazy_gettext("promoted"),
    lazy_gettext("retired"),
    lazy_gettext("baseline"),
    lazy_gettext("finished"),
    lazy_gettext("stopped"),
)


def extract_declarations(
    fileobj: Any, keywords: Any, comment_tags: Any, options: Any
) -> Iterator[tuple[int, str, str, list[str]]]:
    """A Babel extractor (babel.cfg) for the words the library declares and the pages show:
    every parameter's label and help (include.params.ParamSpec), every pipeline's and dataset
    setting's title and description. They live in include/, which knows nothing of Flask-Babel."""
    import gc

    import webapp  # noqa: F401 (imports every route, and with them every declaration)
    from include.params import ParamSpec
    from include.pipelines.catalog import PIPELINES
    from include.services.dataset_settings import SETTINGS

    seen: set[str] = set()

    def once(text: str) -> Iterator[tuple[int, str, str, list[str]]]:
        if text and text not in seen:
            seen.add(text)
            yield 0, "gettext", text, []

    for spec in [o for o in gc.get_objects() if isinstance(o, ParamSpec)]:
        yield from once(spec.label)
        yield from once(spec.help)
    for pipeline in PIPELINES.values():
        yield from once(pipeline.title)
        yield from once(pipeline.description)
    for setting in SETTINGS.values():
        yield from once(setting.title)
        yield from once(setting.description)
