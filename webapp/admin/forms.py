"""Forms of the admin pages (the CSRF-only form is in webapp.forms)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileAllowed, FileField
from wtforms import EmailField, IntegerField, RadioField, SelectField, StringField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, Email, InputRequired, Length, NumberRange, Optional, Regexp

from include.ml.batch import BATCH_STRATEGY


class DatasetForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(min=2, max=128)])
    description = TextAreaField("Description", validators=[Optional(), Length(max=2000)])
    # The default (LABELS) is filled in by the view from the app's config.
    labels = StringField("Labels", validators=[DataRequired(), Length(max=500)])
    label_descriptions = TextAreaField(
        "What each label means (optional, one per line: LABEL: description)",
        validators=[Optional(), Length(max=5000)],
    )
    source = RadioField(
        "Items",
        choices=[("upload", "Upload a CSV or JSONL file"), ("demo", "Generate demo texts"), ("empty", "Start empty")],
        default="upload",
    )
    file = FileField("File", validators=[FileAllowed(["csv", "jsonl", "ndjson"], "Upload a .csv or .jsonl file")])
    text_column = StringField("Text column", default="text", validators=[DataRequired(), Length(max=64)])
    demo_count = IntegerField("Demo texts", default=100, validators=[Optional(), NumberRange(min=1, max=5000)])
    submit = SubmitField("Create dataset")


class UploadForm(FlaskForm):
    file = FileField(
        "File", validators=[DataRequired(), FileAllowed(["csv", "jsonl", "ndjson"], "Upload a .csv or .jsonl file")]
    )
    text_column = StringField("Text column", default="text", validators=[DataRequired(), Length(max=64)])
    submit = SubmitField("Add items")


class TrainingConfigForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=128)])
    file = FileField("YAML file", validators=[FileAllowed(["yaml", "yml"], "Upload a .yaml file")])
    body = TextAreaField("or paste it", validators=[Optional(), Length(max=5 * 1024 * 1024)])
    submit = SubmitField("Save config")


class DeleteDatasetForm(FlaskForm):
    confirm_name = StringField("Type the dataset's name to confirm", validators=[DataRequired()])
    submit = SubmitField("Delete dataset")


class AutoAssignForm(FlaskForm):
    username = SelectField("Annotator", validators=[DataRequired()], choices=[])
    count = IntegerField("Tasks", default=20, validators=[InputRequired(), NumberRange(min=1, max=50_000)])
    strategy = SelectField(
        "Batch",
        choices=[("diverse", "hardest, spread over similar texts"), ("top", "hardest, strictly by priority")],
        default=BATCH_STRATEGY.default,
    )
    submit = SubmitField("Auto-assign")


class AssignForm(FlaskForm):
    username = SelectField("Annotator", validators=[DataRequired()], choices=[])
    submit = SubmitField("Assign")


class UserForm(FlaskForm):
    username = StringField(
        "Username",
        validators=[DataRequired(), Regexp(r"^[a-zA-Z0-9_.\-]{2,64}$", message="2-64 letters, digits, . _ -")],
    )
    email = EmailField("Email", validators=[DataRequired(), Email(check_deliverability=False), Length(max=255)])
    role = SelectField("Role", choices=[("annotator", "Annotator"), ("admin", "Admin")], default="annotator")
    submit = SubmitField("Create user")


class ResolveForm(FlaskForm):
    label = SelectField("Final label", validators=[DataRequired()], choices=[])
    submit = SubmitField("Resolve")
