"""Forms used by more than one blueprint."""

from __future__ import annotations

from flask_wtf import FlaskForm


class CsrfForm(FlaskForm):
    """A form with only the CSRF token, for buttons that post."""
