"""SmtpTransport against a real SMTP server (aiosmtpd), and the FolderTransport used without one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fixtures.servers import CertPair, SmtpCapture

from mailbot.adapters.ports import SendError
from mailbot.adapters.smtp import FolderTransport, SmtpConfig, SmtpTransport

EML = Path(__file__).resolve().parents[1] / "eml"
PLAIN = (EML / "adapters-plain.eml").read_bytes()
LATIN1 = (EML / "adapters-8bit-latin1.eml").read_bytes()
FROM = "ta-pm@example.test"
BUYER = "buyer@example.test"


def reply(n: int) -> bytes:
    return (
        f"From: {FROM}\r\nTo: {BUYER}\r\nSubject: Re: order {n}\r\n"
        f"Message-ID: <r-{n}@mailbot.example.test>\r\n\r\nReply {n}.\r\n"
    ).encode()


def config_for(server: SmtpCapture, **overrides: Any) -> SmtpConfig:
    values: dict[str, Any] = {"host": server.host, "port": server.port, "security": "plain", "timeout": 5.0}
    values.update(overrides)
    return SmtpConfig(**values)


# -- delivering ------------------------------------------------------------------------------------


def test_a_reply_arrives_with_its_envelope_and_exact_bytes(smtp_server: SmtpCapture) -> None:
    with SmtpTransport(config_for(smtp_server)) as transport:
        transport.send(PLAIN, mail_from=FROM, rcpt_to=[BUYER])

    [captured] = smtp_server.wait_for(1)
    assert (captured.mail_from, captured.rcpt_tos) == (FROM, [BUYER])
    assert captured.data == PLAIN  # including the line that starts with a dot


def test_several_replies_share_one_connection(smtp_server: SmtpCapture) -> None:
    with SmtpTransport(config_for(smtp_server)) as transport:
        for n in range(3):
            transport.send(reply(n), mail_from=FROM, rcpt_to=[BUYER])

    captured = smtp_server.wait_for(3)
    assert smtp_server.connections == 1
    assert len({message.peer for message in captured}) == 1


def test_bare_line_feeds_are_sent_as_crlf(smtp_server: SmtpCapture) -> None:
    with SmtpTransport(config_for(smtp_server)) as transport:
        transport.send(reply(1).replace(b"\r\n", b"\n"), mail_from=FROM, rcpt_to=[BUYER])

    assert smtp_server.wait_for(1)[0].data == reply(1)


def test_an_eight_bit_body_is_announced_as_8bitmime(smtp_server: SmtpCapture) -> None:
    with SmtpTransport(config_for(smtp_server)) as transport:
        transport.send(LATIN1, mail_from=FROM, rcpt_to=[BUYER])

    [captured] = smtp_server.wait_for(1)
    assert "BODY=8BITMIME" in captured.mail_options
    assert captured.data == LATIN1


# -- refusals --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stage", "answer", "permanent"),
    [
        ("MAIL", "451 4.3.0 try again later", False),
        ("MAIL", "550 5.7.1 sender rejected", True),
        ("RCPT", "450 4.2.1 mailbox busy", False),
        ("RCPT", "550 5.1.1 no such user", True),
        ("DATA", "452 4.3.1 insufficient storage", False),
        ("DATA", "554 5.7.1 message refused as spam", True),
    ],
)
def test_refusals_are_temporary_for_4xx_and_permanent_for_5xx(
    smtp_server: SmtpCapture, stage: str, answer: str, permanent: bool
) -> None:
    smtp_server.script(stage, answer)

    with SmtpTransport(config_for(smtp_server)) as transport, pytest.raises(SendError) as caught:
        transport.send(reply(1), mail_from=FROM, rcpt_to=[BUYER])

    assert caught.value.permanent is permanent
    assert answer in str(caught.value)
    assert str(caught.value).startswith(f"SMTP 127.0.0.1:{smtp_server.port} refused")


def test_the_connection_carries_the_next_reply_after_a_refusal(smtp_server: SmtpCapture) -> None:
    smtp_server.script("RCPT", "550 5.1.1 no such user")

    with SmtpTransport(config_for(smtp_server)) as transport:
        with pytest.raises(SendError):
            transport.send(reply(1), mail_from=FROM, rcpt_to=["nobody@example.test"])
        transport.send(reply(2), mail_from=FROM, rcpt_to=[BUYER])

    assert [message.data for message in smtp_server.wait_for(1)] == [reply(2)]
    assert smtp_server.connections == 1


def test_no_recipients_is_a_permanent_error(smtp_server: SmtpCapture) -> None:
    with SmtpTransport(config_for(smtp_server)) as transport, pytest.raises(SendError) as caught:
        transport.send(reply(1), mail_from=FROM, rcpt_to=[])

    assert caught.value.permanent


# -- dropped connections ---------------------------------------------------------------------------


def test_a_connection_dropped_between_replies_is_reopened_once(smtp_server: SmtpCapture) -> None:
    with SmtpTransport(config_for(smtp_server)) as transport:
        transport.send(reply(1), mail_from=FROM, rcpt_to=[BUYER])
        smtp_server.drop_connections()
        transport.send(reply(2), mail_from=FROM, rcpt_to=[BUYER])

    assert [message.data for message in smtp_server.wait_for(2)] == [reply(1), reply(2)]
    assert smtp_server.connections == 2


def test_a_server_closing_with_421_between_replies_is_reconnected(smtp_server: SmtpCapture) -> None:
    smtp_server.script("MAIL", "421 4.4.2 idle timeout, closing")

    with SmtpTransport(config_for(smtp_server)) as transport:
        transport.send(reply(1), mail_from=FROM, rcpt_to=[BUYER])

    assert [message.data for message in smtp_server.wait_for(1)] == [reply(1)]
    assert smtp_server.connections == 2


def test_a_server_that_is_gone_is_a_temporary_error() -> None:
    server = SmtpCapture().start()
    with SmtpTransport(config_for(server)) as transport:
        transport.send(reply(1), mail_from=FROM, rcpt_to=[BUYER])
        server.stop()

        with pytest.raises(SendError, match="connection refused") as caught:
            transport.send(reply(2), mail_from=FROM, rcpt_to=[BUYER])

    assert caught.value.permanent is False


def test_connecting_to_nothing_fails_when_the_block_is_entered() -> None:
    with SmtpCapture() as server:
        config = config_for(server)

    expected = rf"SMTP connecting at 127\.0\.0\.1:{config.port} failed: connection refused"
    with pytest.raises(SendError, match=expected):
        SmtpTransport(config).__enter__()


# -- authentication and TLS ------------------------------------------------------------------------


def test_auth_logs_in_with_the_configured_user() -> None:
    with SmtpCapture(credentials={"mailbot": "smtp-secret"}) as server:
        config = config_for(server, username="mailbot", password="smtp-secret")
        with SmtpTransport(config) as transport:
            transport.send(reply(1), mail_from=FROM, rcpt_to=[BUYER])

        assert server.wait_for(1)[0].login == "mailbot"


def test_a_wrong_smtp_password_is_permanent_and_not_shown() -> None:
    with SmtpCapture(credentials={"mailbot": "smtp-secret"}) as server:
        config = config_for(server, username="mailbot", password="Wr0ng-Pa55word")

        with pytest.raises(SendError) as caught:
            SmtpTransport(config).__enter__()

    assert caught.value.permanent
    assert "as mailbot" in str(caught.value) and "535" in str(caught.value)
    assert "Wr0ng-Pa55word" not in str(caught.value)


def test_sending_without_auth_where_it_is_required_is_refused_permanently() -> None:
    with (
        SmtpCapture(credentials={"mailbot": "smtp-secret"}) as server,
        SmtpTransport(config_for(server)) as transport,
        pytest.raises(SendError, match="530") as caught,
    ):
        transport.send(reply(1), mail_from=FROM, rcpt_to=[BUYER])

    assert caught.value.permanent


def test_starttls_verifies_the_server_against_ca_file(tls_cert: CertPair) -> None:
    with SmtpCapture(starttls=tls_cert, credentials={"mailbot": "smtp-secret"}) as server:
        config = config_for(
            server, security="starttls", ca_file=str(tls_cert.cert), username="mailbot",
            password="smtp-secret",
        )
        with SmtpTransport(config) as transport:
            transport.send(reply(1), mail_from=FROM, rcpt_to=[BUYER])

        assert server.wait_for(1)[0].data == reply(1)


def test_implicit_tls_verifies_the_server_against_ca_file(tls_cert: CertPair) -> None:
    with SmtpCapture(implicit_tls=tls_cert) as server:
        with SmtpTransport(config_for(server, security="tls", ca_file=str(tls_cert.cert))) as transport:
            transport.send(reply(1), mail_from=FROM, rcpt_to=[BUYER])

        assert server.wait_for(1)[0].data == reply(1)


def test_an_untrusted_certificate_is_refused(tls_cert: CertPair) -> None:
    with SmtpCapture(implicit_tls=tls_cert) as server, pytest.raises(SendError, match="not trusted"):
        SmtpTransport(config_for(server, security="tls")).__enter__()


def test_starttls_against_a_server_without_it_is_a_permanent_error(smtp_server: SmtpCapture) -> None:
    with pytest.raises(SendError, match="STARTTLS") as caught:
        SmtpTransport(config_for(smtp_server, security="starttls")).__enter__()

    assert caught.value.permanent


def test_plain_smtp_is_refused_for_a_host_that_is_not_loopback() -> None:
    with pytest.raises(ValueError, match="only allowed for a loopback host"):
        SmtpConfig(host="smtp.example.test", security="plain")


def test_the_password_is_not_in_the_config_repr() -> None:
    config = SmtpConfig(host="smtp.example.test", username="mailbot", password="s3cret-value")

    assert "s3cret-value" not in repr(config)


def test_a_username_without_a_password_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="username and password"):
        SmtpConfig(host="smtp.example.test", username="mailbot")


def test_default_ports_follow_the_security_mode() -> None:
    modes: list[Any] = ["tls", "starttls", "plain"]
    ports = [SmtpConfig(host="127.0.0.1", security=mode).effective_port for mode in modes]

    assert ports == [465, 587, 25]


# -- the outbox folder -----------------------------------------------------------------------------


def test_the_folder_transport_writes_the_exact_bytes_named_after_the_message_id(tmp_path: Path) -> None:
    with FolderTransport(tmp_path / "outbox") as transport:
        transport.send(reply(1), mail_from=FROM, rcpt_to=[BUYER])

    assert (tmp_path / "outbox" / "r-1@mailbot.example.test.eml").read_bytes() == reply(1)


def test_the_folder_transport_keeps_one_file_per_reply_when_resent(tmp_path: Path) -> None:
    with FolderTransport(tmp_path / "outbox") as transport:
        transport.send(reply(1), mail_from=FROM, rcpt_to=[BUYER])
        transport.send(reply(1), mail_from=FROM, rcpt_to=[BUYER])

    assert [path.name for path in (tmp_path / "outbox").iterdir()] == ["r-1@mailbot.example.test.eml"]


def test_a_message_without_message_id_is_named_after_its_content(tmp_path: Path) -> None:
    raw = b"From: a@example.test\r\nSubject: no id\r\n\r\nbody\r\n"

    with FolderTransport(tmp_path / "outbox") as transport:
        transport.send(raw, mail_from=FROM, rcpt_to=[BUYER])

    [written] = (tmp_path / "outbox").iterdir()
    assert written.name.startswith("sha256-") and written.read_bytes() == raw


def test_an_unwritable_outbox_folder_is_a_temporary_error(tmp_path: Path) -> None:
    (tmp_path / "outbox").write_text("a file where the folder should be")

    with pytest.raises(SendError) as caught:
        FolderTransport(tmp_path / "outbox").send(reply(1), mail_from=FROM, rcpt_to=[BUYER])

    assert caught.value.permanent is False
