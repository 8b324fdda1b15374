"""Logins for ``rag chat --auth``: strong enough passwords, generated ones, and hashed password files.

``--auth`` takes ``user:password``, a file holding that, or a file holding
``user:scrypt$N$r$p$salt$hash`` (make one with ``python -m ui.chat.passwords USER``), so the
password itself need not lie on disk; ``--auth user`` alone generates a password and
prints it once. A password must be at least :data:`MIN_LENGTH` characters with three
kinds of character (lower case, upper case, digits, others), or :data:`PASSPHRASE_LENGTH`
characters of any kind.

>>> weakness("b") is not None, weakness("Geheim-4711") is None, weakness("korrekt pferd batterie") is None
(True, True, True)
>>> login = Login("anna", hashed=hash_password("Geheim-4711", n=2**10))
>>> login("anna", "Geheim-4711"), login("anna", "geheim-4711"), login("bob", "Geheim-4711")
(True, False, False)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path

MIN_LENGTH = 10
PASSPHRASE_LENGTH = 16
SCRYPT = "scrypt"
# scrypt's cost: about 50 ms and 16 MB per check on this machine's cores; the login limiter
# (ui.chat.guard.LoginLimiter) bounds how many checks a stranger can ask for.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1


def weakness(password: str) -> str | None:
    """Why ``password`` is too weak for a login, or ``None``."""
    if len(password) >= PASSPHRASE_LENGTH:
        return None
    kinds = sum(
        any(test(c) for c in password) for test in (str.islower, str.isupper, str.isdigit, lambda c: not c.isalnum())
    )
    if len(password) < MIN_LENGTH or kinds < 3:
        return (
            f"the password is too weak: use at least {MIN_LENGTH} characters with three kinds "
            f"(lower case, upper case, digits, others), or {PASSPHRASE_LENGTH} of any kind; "
            "or give only the user name (--auth anna) to have one generated"
        )
    return None


def generate() -> str:
    """A random password of 20 URL-safe characters (about 120 bits)."""
    return secrets.token_urlsafe(15)


def hash_password(password: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    """``scrypt$N$r$p$salt$hash`` (base64) for ``password``, with a fresh salt."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=2**26)
    b64 = base64.urlsafe_b64encode
    return f"{SCRYPT}${n}${r}${p}${b64(salt).decode()}${b64(digest).decode()}"


def _verify(password: str, hashed: str) -> bool:
    try:
        kind, n, r, p, salt, digest = hashed.split("$")
        if kind != SCRYPT:
            return False
        want = base64.urlsafe_b64decode(digest)
        got = hashlib.scrypt(
            password.encode(), salt=base64.urlsafe_b64decode(salt), n=int(n), r=int(r), p=int(p), maxmem=2**26
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, want)


@dataclass(frozen=True)
class Login:
    """One account: a user and a password or its hash. Called as Gradio's ``auth(user, password) -> bool``."""

    user: str
    password: str | None = None
    hashed: str | None = None

    def __call__(self, user: str, password: str) -> bool:
        user_ok = hmac.compare_digest(user.encode(), self.user.encode())
        if self.hashed is not None:
            ok = _verify(password, self.hashed)
        else:
            ok = hmac.compare_digest(password.encode(), (self.password or "").encode())
        return user_ok and ok


def parse_login(value: str | None) -> tuple[Login | None, str | None]:
    """The login ``--auth`` asks for, and a generated password to show (else ``None``).

    Raises:
        ValueError: not in one of the accepted forms, or the password is too weak.
    """
    if not value:
        return None, None
    text = value
    if Path(value).is_file():  # a file keeps the password out of the process list and shell history
        text = (Path(value).read_text(encoding="utf-8").strip().splitlines() or [""])[0]
    user, sep, secret = text.strip().partition(":")
    if not user or (sep and not secret):
        raise ValueError("--auth takes user:password, a user name alone, or a file holding user:password")
    if not sep:
        password = generate()
        return Login(user, password=password), password
    if secret.startswith(f"{SCRYPT}$"):
        if secret.count("$") != 5:
            raise ValueError(f"--auth: the hash for {user} is not scrypt$N$r$p$salt$hash; make one anew")
        return Login(user, hashed=secret), None
    reason = weakness(secret)
    if reason:
        raise ValueError(f"--auth: {reason}")
    return Login(user, password=secret), None


def main(argv: list[str] | None = None) -> int:
    """``python -m ui.chat.passwords USER``: read a password from the terminal, print ``USER:hash`` for a file."""
    import getpass

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m ui.chat.passwords USER  (prints USER:scrypt$... for an --auth file)", file=sys.stderr)
        return 2
    password = getpass.getpass("password: ")
    reason = weakness(password)
    if reason:
        print(f"error: {reason}", file=sys.stderr)
        return 1
    print(f"{args[0]}:{hash_password(password)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
