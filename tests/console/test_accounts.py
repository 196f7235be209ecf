"""Staff accounts: argon2 hashes, one-line refusals, sessions that end when the account is disabled."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlmodel import Session, select

from mailbot.cli import main
from mailbot.services import accounts
from mailbot.store.tables import StaffSession, StaffUser

from .installation import PASSWORD, Installation


def test_a_password_is_stored_only_as_an_argon2_hash(installation: Installation) -> None:
    installation.user("ana@support.example")
    with Session(installation.engine) as session:
        user = session.exec(select(StaffUser)).one()
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash


@pytest.mark.parametrize(
    ("email", "role", "password", "message"),
    [
        ("not-an-address", "staff", PASSWORD, "is not an e-mail address"),
        ("ana@support.example", "boss", PASSWORD, "unknown role 'boss'"),
        ("ana@support.example", "staff", "short", "shorter than 10 characters"),
    ],
)
def test_a_bad_account_is_refused_in_one_line(
    installation: Installation, email: str, role: str, password: str, message: str
) -> None:
    with pytest.raises(accounts.AccountError, match=message):
        accounts.add_user(installation.engine, email, role, password)


def test_the_same_address_cannot_have_two_accounts(installation: Installation) -> None:
    installation.user("ana@support.example")
    with pytest.raises(accounts.AccountError, match="exists already"):
        accounts.add_user(installation.engine, "Ana@Support.example", "admin", PASSWORD)


def test_a_wrong_password_signs_nobody_in(installation: Installation) -> None:
    installation.user("ana@support.example")
    assert accounts.sign_in(installation.engine, "ana@support.example", "wrong password!") is None
    assert accounts.sign_in(installation.engine, "nobody@support.example", PASSWORD) is None


def test_signing_in_again_replaces_the_session(installation: Installation) -> None:
    installation.user("ana@support.example")
    first = accounts.sign_in(installation.engine, "ana@support.example", PASSWORD)
    assert first is not None
    second = accounts.sign_in(
        installation.engine, "ana@support.example", PASSWORD, previous_token=first.token
    )
    assert second is not None and second.token != first.token and second.csrf_token != first.csrf_token
    assert accounts.session_for(installation.engine, first.token) is None
    assert accounts.session_for(installation.engine, second.token) is not None
    with Session(installation.engine) as session:
        stored = session.exec(select(StaffSession.token_hash)).all()
    assert second.token not in stored  # only its hash is kept


def test_disabling_an_account_ends_its_sessions(installation: Installation) -> None:
    installation.user("ana@support.example")
    signed = accounts.sign_in(installation.engine, "ana@support.example", PASSWORD)
    assert signed is not None
    accounts.disable_user(installation.engine, "ana@support.example")
    assert accounts.session_for(installation.engine, signed.token) is None
    assert accounts.sign_in(installation.engine, "ana@support.example", PASSWORD) is None


def test_roles_rank_admin_over_supervisor_over_staff(installation: Installation) -> None:
    staff = accounts.add_user(installation.engine, "s@support.example", "staff", PASSWORD)
    supervisor = accounts.add_user(installation.engine, "v@support.example", "supervisor", PASSWORD)
    admin = accounts.add_user(installation.engine, "a@support.example", "admin", PASSWORD)
    assert [staff.may("supervisor"), supervisor.may("supervisor"), supervisor.may("admin")] == [
        False,
        True,
        False,
    ]
    assert admin.may("staff") and admin.may("admin")


def test_the_users_commands_add_list_and_disable(installation: Installation) -> None:
    runner = CliRunner()
    config = ["--config", str(installation.config)]
    added = runner.invoke(
        main,
        [*config, "users", "add", "Ana@Support.example", "--role", "supervisor", "--password-stdin"],
        input=PASSWORD + "\n",
    )
    assert added.exit_code == 0, added.output
    assert added.output.strip() == "added ana@support.example (supervisor)"
    again = runner.invoke(
        main,
        [*config, "users", "add", "ana@support.example", "--role", "staff", "--password-stdin"],
        input=PASSWORD + "\n",
    )
    assert again.exit_code == 1
    assert again.output.strip() == "error: an account ana@support.example exists already"
    listed = runner.invoke(main, [*config, "users", "list"])
    assert (
        "ana@support.example" in listed.output and "supervisor" in listed.output and "active" in listed.output
    )
    disabled = runner.invoke(main, [*config, "users", "disable", "ana@support.example"])
    assert disabled.exit_code == 0
    assert "disabled" in runner.invoke(main, [*config, "users", "list"]).output
