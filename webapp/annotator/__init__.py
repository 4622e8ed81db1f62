from flask import Blueprint

bp = Blueprint("annotator", __name__)

from webapp.annotator import routes  # noqa: E402, F401
