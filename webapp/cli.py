"""Account commands: ``flask --app webapp create-user|reset-password|seed-demo``."""

from __future__ import annotations

import click
from flask import Flask

from include.db.models import Role
from include.services.users import UserError, create_user, find_user, generate_password, set_password
from webapp.extensions import db


def register_cli(app: Flask) -> None:
    @app.cli.command("create-user")
    @click.argument("username")
    @click.argument("email")
    @click.option("--role", type=click.Choice([r.value for r in Role]), default=Role.ANNOTATOR.value)
    @click.option("--password", help="default: a generated one, printed once")
    def create_user_command(username: str, email: str, role: str, password: str | None) -> None:
        """Create a user (admin or annotator)."""
        password = password or generate_password()
        try:
            create_user(db.session(), username, email, password, Role(role))
            db.session.commit()
        except UserError as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(f"created {role} {username}; password: {password}")

    @app.cli.command("reset-password")
    @click.argument("username")
    @click.option("--password", help="default: a generated one, printed once")
    def reset_password_command(username: str, password: str | None) -> None:
        """Set a new password for a user."""
        user = find_user(db.session(), username)
        if user is None:
            raise click.ClickException(f"no user named {username!r}")
        password = password or generate_password()
        try:
            set_password(user, password)
        except UserError as exc:
            raise click.ClickException(str(exc)) from exc
        db.session.commit()
        click.echo(f"new password for {username}: {password}")

    @app.cli.command("deliver-labels")
    @click.option("--once", is_flag=True, help="deliver what is due now, then exit")
    @click.option("--sweep", default=5.0, show_default=True, help="seconds between rounds")
    def deliver_labels_command(once: bool, sweep: float) -> None:
        """Deliver the label outbox to Label Studio (instead of, or next to, the web processes)."""
        import time

        from include.labelstudio.client import LabelStudioClient
        from include.workers.label_dispatcher import deliver_due

        url, token = app.config.get("LS_URL"), app.config.get("LS_API_TOKEN")
        if not url or not token:
            raise click.ClickException("Label Studio is not configured: set LS_URL and LS_API_TOKEN")
        client = LabelStudioClient(url, token, retries=0)
        database = app.config["SQLALCHEMY_DATABASE_URI"]
        while True:
            try:
                done = deliver_due(database, client, slots=int(app.config.get("LS_WRITE_CONCURRENCY") or 1))
            except Exception as exc:  # the database is away: keep going
                click.echo(f"round failed, retrying: {exc}", err=True)
                done = None
            if done is not None and (done.claimed or done.error):
                click.echo(f"delivered {done.delivered}, failed {done.failed}, undeliverable {done.dead}")
            if once and (done is None or (not done.claimed and not done.busy) or done.error):
                return
            if done is None or not done.claimed or done.error:
                time.sleep(sweep)

    @app.cli.command("seed-demo")
    @click.option("--texts", default=100, show_default=True, help="demo texts in the demo dataset")
    def seed_demo_command(texts: int) -> None:
        """Create the demo users (passwords printed once) and the demo dataset."""
        from include.demo.seed import seed_demo

        result = seed_demo(db.session(), n_texts=texts)
        db.session.commit()
        for username, password in result.created_users.items():
            click.echo(f"created {username}; password: {password}")
        if not result.created_users:
            click.echo("demo users already exist (use reset-password to set new passwords)")
        click.echo(f"demo dataset {result.dataset_id}: {result.items_added} new items")
