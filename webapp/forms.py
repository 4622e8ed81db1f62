"""Forms used by more than one blueprint."""

from __future__ import annotations

from flask import abort
from flask_wtf import FlaskForm


class CsrfForm(FlaskForm):
    """A form with only the CSRF token, for buttons that post."""


def checked(form: FlaskForm) -> FlaskForm:
    """The form, if its CSRF token is valid; a 400 otherwise (an expired page, a forged post)."""
    if not form.validate_on_submit():
        abort(400)
    return form
