"""The hand-over point of SmtpTransport: what the server can have when, against a real aiosmtpd."""

from __future__ import annotations

import pytest
from fixtures.servers import SmtpCapture

from mailbot.adapters.ports import SendError
from mailbot.adapters.smtp import SmtpConfig, SmtpTransport

FROM = "ta-pm@example.test"
BUYER = "buyer@example.test"
REPLY = (
    f"From: {FROM}\r\nTo: {BUYER}\r\nSubject: Re: order 1\r\nMessage-ID: <h-1@mailbot.example.test>\r\n\r\n"
    ".a line that starts with a dot\r\nReply.\r\n"
).encode()


def transport(server: SmtpCapture, timeout: float = 5.0, final: float = 10.0) -> SmtpTransport:
    return SmtpTransport(
        SmtpConfig(
            host=server.host, port=server.port, security="plain", timeout=timeout, final_reply_timeout=final
        )
    )


def test_the_hand_over_is_called_once_per_message_before_the_server_has_it(smtp_server: SmtpCapture) -> None:
    seen: list[int] = []

    with transport(smtp_server) as smtp:
        smtp.send(
            REPLY, mail_from=FROM, rcpt_to=[BUYER], on_handover=lambda: seen.append(len(smtp_server.messages))
        )

    assert seen == [0]
    (message,) = smtp_server.messages
    assert message.data == REPLY  # dot-stuffing undone by the server: the exact bytes arrived


def test_a_failing_hand_over_means_the_server_never_gets_the_message(smtp_server: SmtpCapture) -> None:
    def refuse() -> None:
        raise RuntimeError("database gone")

    with transport(smtp_server) as smtp:
        with pytest.raises(RuntimeError, match="database gone"):
            smtp.send(REPLY, mail_from=FROM, rcpt_to=[BUYER], on_handover=refuse)
        smtp.send(REPLY, mail_from=FROM, rcpt_to=[BUYER])  # the transport reconnects for the next one

    assert len(smtp_server.messages) == 1


def test_a_connection_lost_after_the_final_dot_is_an_unknown_outcome(smtp_server: SmtpCapture) -> None:
    smtp_server.fault("drop-after-data")

    with transport(smtp_server) as smtp, pytest.raises(SendError) as raised:
        smtp.send(REPLY, mail_from=FROM, rcpt_to=[BUYER])

    assert raised.value.outcome_unknown and not raised.value.permanent
    assert len(smtp_server.messages) == 1


def test_a_250_later_than_the_final_reply_timeout_is_an_unknown_outcome(smtp_server: SmtpCapture) -> None:
    smtp_server.fault("delay-250:2")

    with transport(smtp_server, timeout=0.3, final=0.5) as smtp, pytest.raises(SendError) as raised:
        smtp.send(REPLY, mail_from=FROM, rcpt_to=[BUYER])

    assert raised.value.outcome_unknown


@pytest.mark.parametrize(
    ("stage", "answer", "permanent", "recipient"),
    [
        ("RCPT", "550 5.1.1 no such user", True, True),
        ("DATA", "554 5.7.1 refused", True, True),
        ("DATA", "451 4.3.0 later", False, True),
        ("MAIL", "553 5.7.1 sender not allowed", True, False),
    ],
)
def test_a_refusal_is_a_definite_answer_that_names_whose_fault_it_is(
    smtp_server: SmtpCapture, stage: str, answer: str, permanent: bool, recipient: bool
) -> None:
    smtp_server.script(stage, answer)

    with transport(smtp_server) as smtp, pytest.raises(SendError) as raised:
        smtp.send(REPLY, mail_from=FROM, rcpt_to=[BUYER])

    error = raised.value
    assert (error.permanent, error.recipient_refused, error.outcome_unknown) == (permanent, recipient, False)
    assert smtp_server.messages == []
