"""Mint a Personal Access Token for Label Studio's admin, from inside Label Studio's own Python.

Standalone on purpose (no platform import): docker compose runs it in the official Label Studio
image as the one-shot ``ls-token`` service, and ``make run``'s launcher runs it with the
``.venv-ls`` interpreter. Label Studio has no API that issues a token to a password holder, so
its Django models are used, as its own ``manage.py shell`` would.

    python ls_token.py ADMIN_EMAIL OUT      # OUT: a file (kept if it already holds a token), or -
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def mint(email: str) -> str:
    import label_studio

    sys.path.insert(0, os.path.dirname(label_studio.__file__))  # Label Studio's apps are top-level
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings.label_studio")
    import django

    django.setup()
    from jwt_auth.models import LSAPIToken
    from users.models import User

    return str(LSAPIToken.for_user(User.objects.get(email=email)).get_full_jwt())


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    email, out = argv
    if out == "-":
        print("PAT=" + mint(email))
        return 0
    target = Path(out)
    if target.exists() and target.read_text().strip():
        print(f"{target} already holds a token; delete it to mint a new one")
        return 0
    token = mint(email)
    partial = target.with_suffix(".partial")
    partial.write_text(token + "\n")
    partial.chmod(0o644)  # containers run as other users; the volume is mounted by platform services only
    partial.replace(target)  # readers never see half a token
    print(f"token for {email} written to {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
