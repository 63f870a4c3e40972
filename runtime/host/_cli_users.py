"""`vplc users add|disable|enable|reset|unlock|passwd|list`: the user store from the shell.

Passwords never come from the command line (they would sit in the shell history and in
``ps``): from a prompt, or for scripts from ``VPLC_PASSWORD`` (the acting user's own) and
``VPLC_NEW_PASSWORD`` (the password being set). Once the store holds an active user of the
role ``manage_users`` needs, every change needs ``--as ID`` and that user's password; before
that (the very first account) the change is recorded as a bootstrap by the OS user.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from runtime.host._apps import path_arg
from runtime.ops._access import DEFAULT_PERMISSIONS, DEFAULT_ROLES, load_access_config
from runtime.ops._audit import AuditError, AuditLog
from runtime.ops._audit_key import AuditKeyError
from runtime.ops._users import (
    LoginRefusedError,
    PasswordRejectedError,
    UserStore,
    UserStoreError,
)

__all__ = ["add_users_commands", "default_store_path", "read_secret"]

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2
STORE_ENV = "VPLC_USERS"


class _InvalidError(Exception):
    """Bad input: printed as one paragraph, exit 2."""


def default_store_path() -> Path:
    """``$VPLC_USERS``, else ``$VPLC_STATE_DIR/users.json`` (``~/.local/state/vplc``)."""
    if os.environ.get(STORE_ENV):
        return Path(os.environ[STORE_ENV])
    base = os.environ.get("VPLC_STATE_DIR") or Path.home() / ".local" / "state" / "vplc"
    return Path(base) / "users.json"


def read_secret(env: str, prompt: str, *, confirm: bool = False) -> str:
    """A password from ``env`` or the terminal; _InvalidError when neither is there."""
    value = os.environ.get(env)
    if value is not None:
        return value
    if not sys.stdin.isatty():
        raise _InvalidError(
            f"{prompt.rstrip(': ')}: no terminal to ask on and {env} is not set; passwords "
            f"are never taken from the command line (set {env} in the environment of a script)"
        )
    first = getpass.getpass(prompt)
    if confirm and getpass.getpass("again: ") != first:
        raise _InvalidError("the two passwords differ; nothing was changed")
    return first


def add_users_commands(sub: Any) -> None:
    """Register ``vplc users ...``."""
    users = sub.add_parser("users", help="people who may command and sign (21 CFR 11.300)")
    inner = users.add_subparsers(dest="users_command", required=True, metavar="SUBCOMMAND")
    add = inner.add_parser("add", help="a new user with a temporary password (changed at login)")
    _common(add)
    add.add_argument("user_id", metavar="ID")
    add.add_argument("--name", required=True, help="printed name (shown with every signature)")
    add.add_argument("--role", required=True, help="one of the access file's roles")
    add.set_defaults(func=_add)
    for name, helptext, func in (
        ("disable", "disable a user (never deleted; --reason required)", _disable),
        ("enable", "enable a disabled user again (--reason required)", _enable),
        ("reset", "set a temporary password; unlocks; the user must change it", _reset),
        ("unlock", "clear a lockout after failed logins", _unlock),
    ):
        p = inner.add_parser(name, help=helptext)
        _common(p)
        p.add_argument("user_id", metavar="ID")
        if name in ("disable", "enable"):
            p.add_argument("--reason", required=True, help="why (goes to the audit trail)")
        p.set_defaults(func=func)
    passwd = inner.add_parser("passwd", help="change your own password (old one, then new)")
    _common(passwd)
    passwd.add_argument("user_id", metavar="ID")
    passwd.set_defaults(func=_passwd)
    lst = inner.add_parser("list", help="users with role, status and password age (no hashes)")
    _common(lst)
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(func=_list)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--store", type=path_arg, metavar="FILE", help="default $VPLC_USERS or state dir"
    )
    p.add_argument(
        "--access", type=path_arg, metavar="FILE", help="access file: its roles and user_store"
    )
    p.add_argument(
        "--audit", type=path_arg, metavar="TRAIL", help="audit trail to record changes in"
    )
    p.add_argument("--as", dest="actor", metavar="ID", help="the administrator making the change")


class _Context:
    def __init__(self, args: argparse.Namespace, *, create: bool = False) -> None:
        roles: tuple[str, ...] = DEFAULT_ROLES
        permissions, store_path = dict(DEFAULT_PERMISSIONS), None
        if args.access is not None:
            try:
                access = load_access_config(args.access)
            except (OSError, ValueError) as exc:
                raise _InvalidError(f"--access {args.access}: {exc}") from None
            roles, permissions, store_path = access.roles, access.permissions, access.user_store
        self.roles = roles
        self.admin_role = permissions.get("manage_users", roles[-1])
        path = args.store or store_path or default_store_path()
        try:
            self.audit = AuditLog(args.audit) if args.audit is not None else None
        except (OSError, AuditError, AuditKeyError) as exc:
            why = exc.strerror if isinstance(exc, OSError) else exc
            raise _InvalidError(
                f"--audit {args.audit}: cannot use as the audit trail: {why}"
            ) from None
        sink = self.audit.append if self.audit is not None else None
        try:
            self.store = UserStore.load(path, roles=roles, audit=sink, create=create)
        except UserStoreError as exc:
            raise _InvalidError(str(exc)) from None
        self.now = time.time()

    def actor(self, args: argparse.Namespace) -> str:
        """Who makes the change: ``--as`` authenticated, or a bootstrap while no admin exists."""
        rank = self.roles.index(self.admin_role)
        admins = [
            u
            for u in self.store.users()
            if not u.disabled and u.role in self.roles and self.roles.index(u.role) >= rank
        ]
        if args.actor is None:
            if admins:
                raise _InvalidError(
                    f"changing users needs --as ID (a user of role {self.admin_role!r} or "
                    f"higher) and that user's password ({', '.join(u.user_id for u in admins)})"
                )
            return f"bootstrap:{getpass.getuser()}"
        password = read_secret("VPLC_PASSWORD", f"password of {args.actor}: ")
        try:
            user = self.store.authenticate(
                args.actor, password, now_s=self.now, purpose="manage_users", source="cli"
            )
        except LoginRefusedError as exc:
            raise _InvalidError(f"--as {args.actor}: {exc}") from None
        if user.role not in self.roles or self.roles.index(user.role) < rank:
            raise _InvalidError(
                f"--as {args.actor}: role {user.role!r} may not manage users (needs "
                f"{self.admin_role!r})"
            )
        return user.user_id


def _run(args: argparse.Namespace, body: Any, *, create: bool = False) -> int:
    try:
        ctx = _Context(args, create=create)
        return int(body(ctx))
    except _InvalidError as exc:
        print(f"vplc users: error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except (PasswordRejectedError, ValueError) as exc:
        print(f"vplc users: error: {exc}; nothing was changed", file=sys.stderr)
        return EXIT_INVALID
    except KeyError as exc:
        print(f"vplc users: error: {exc.args[0]}", file=sys.stderr)
        return EXIT_INVALID
    except (UserStoreError, AuditError, AuditKeyError, OSError) as exc:
        print(f"vplc users: error: {exc}", file=sys.stderr)
        return EXIT_FAILED


def _add(args: argparse.Namespace) -> int:
    def body(ctx: _Context) -> int:
        by = ctx.actor(args)
        password = read_secret(
            "VPLC_NEW_PASSWORD", f"temporary password for {args.user_id}: ", confirm=True
        )
        user = ctx.store.add(
            args.user_id,
            printed_name=args.name,
            role=args.role,
            password=password,
            now_s=ctx.now,
            by=by,
        )
        print(f"added {user.user_id} ({user.printed_name}, {user.role}); they must set their own")
        print(f"password before first use: vplc users passwd {user.user_id}")
        return EXIT_OK

    return _run(args, body, create=True)


def _disable(args: argparse.Namespace) -> int:
    def body(ctx: _Context) -> int:
        by = ctx.actor(args)
        user = ctx.store.disable(args.user_id, reason=args.reason, now_s=ctx.now, by=by)
        print(f"disabled {user.user_id}: {user.disabled_reason} (the id stays reserved)")
        return EXIT_OK

    return _run(args, body)


def _enable(args: argparse.Namespace) -> int:
    def body(ctx: _Context) -> int:
        by = ctx.actor(args)
        user = ctx.store.enable(args.user_id, reason=args.reason, now_s=ctx.now, by=by)
        print(f"enabled {user.user_id}")
        return EXIT_OK

    return _run(args, body)


def _reset(args: argparse.Namespace) -> int:
    def body(ctx: _Context) -> int:
        by = ctx.actor(args)
        password = read_secret(
            "VPLC_NEW_PASSWORD", f"temporary password for {args.user_id}: ", confirm=True
        )
        ctx.store.reset(args.user_id, password=password, now_s=ctx.now, by=by)
        print(f"reset {args.user_id}: unlocked; the temporary password must be changed first")
        return EXIT_OK

    return _run(args, body)


def _unlock(args: argparse.Namespace) -> int:
    def body(ctx: _Context) -> int:
        ctx.store.unlock(args.user_id, now_s=ctx.now, by=ctx.actor(args))
        print(f"unlocked {args.user_id}")
        return EXIT_OK

    return _run(args, body)


def _passwd(args: argparse.Namespace) -> int:
    def body(ctx: _Context) -> int:
        old = read_secret("VPLC_PASSWORD", f"current password of {args.user_id}: ")
        new = read_secret("VPLC_NEW_PASSWORD", "new password: ", confirm=True)
        try:
            ctx.store.change_password(args.user_id, old, new, now_s=ctx.now, source="cli")
        except LoginRefusedError as exc:
            raise _InvalidError(str(exc)) from None
        print(f"password of {args.user_id} changed")
        return EXIT_OK

    return _run(args, body)


def _list(args: argparse.Namespace) -> int:
    def body(ctx: _Context) -> int:
        rows = [u.public(ctx.store.policy, ctx.now) for u in ctx.store.users()]
        if args.json:
            print(json.dumps(rows, indent=2))
            return EXIT_OK
        print(f"{'id':<16} {'printed name':<24} {'role':<10} {'status':<9} password expires")
        for r in rows:
            exp = (r["password_expires"] or "never")[:10]
            change = " (must change)" if r["must_change"] else ""
            print(
                f"{r['user_id']:<16} {r['printed_name'][:24]:<24} {r['role']:<10} "
                f"{r['status']:<9} {exp}{change}"
            )
        print(f"{len(rows)} user(s) in {ctx.store.path}")
        return EXIT_OK

    return _run(args, body)
