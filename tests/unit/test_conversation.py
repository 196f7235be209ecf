"""Threading is strict and explainable: Message-ID, then the buyer's own case reference, then order."""

from __future__ import annotations

from mailbot.core.conversation import (
    CASE_REF_ALPHABET,
    case_ref_from_seed,
    choose_thread,
    find_case_refs,
    is_our_message_id,
    make_message_id,
)
from mailbot.core.types import CaseFacts, Identity, ThreadCandidates, ThreadKeys

US = Identity(addresses=frozenset({"ta-pm@support.example.test"}), message_id_domain="mailbot.example.test")
CASE = CaseFacts(
    ref="K7Q2XZ", buyer="buyer@acme.example", status="open", orders=("1625349876123450",), mailbox="pm"
)
NO_KEYS = ThreadKeys(our_message_ids=(), case_refs=())


def test_case_refs_are_found_even_when_mail_clients_mangle_the_token() -> None:
    for subject in (
        "Re: [Case #K7Q2XZ] cancel",
        "RE: [case#k7q2xz] cancel",
        "AW: Case K7Q2XZ",
        "[Case: K7Q2XZ]",
    ):
        assert find_case_refs(subject, US) == ("K7Q2XZ",), subject


def test_a_number_after_the_word_case_is_not_a_case_reference() -> None:
    assert find_case_refs("about case 123456 of ours", US) == ()


def test_generated_refs_use_the_unambiguous_alphabet_and_are_stable() -> None:
    ref = case_ref_from_seed(b"seed")
    assert len(ref) == 6 and set(ref) <= set(CASE_REF_ALPHABET)
    assert ref == case_ref_from_seed(b"seed")
    assert find_case_refs(f"[Case #{ref}]", US) == (ref,)


def test_our_message_ids_are_recognised_by_domain() -> None:
    mid = make_message_id(US, "x")
    assert is_our_message_id(mid, US)
    assert not is_our_message_id("abc@gmail.example", US)
    assert make_message_id(US, "x") == mid != make_message_id(US, "y")


def test_reply_to_our_message_joins_its_case() -> None:
    match = choose_thread(NO_KEYS, ThreadCandidates(by_message_id=CASE), "buyer@acme.example", ())
    assert (match.case_ref, match.how) == ("K7Q2XZ", "message-id")


def test_subject_reference_from_the_cases_own_buyer_joins() -> None:
    keys = ThreadKeys(our_message_ids=(), case_refs=("K7Q2XZ",))
    match = choose_thread(keys, ThreadCandidates(by_ref=(CASE,)), "Buyer@Acme.example", ())
    assert (match.case_ref, match.how) == ("K7Q2XZ", "subject-ref")


def test_subject_reference_from_another_sender_never_silently_joins() -> None:
    keys = ThreadKeys(our_message_ids=(), case_refs=("K7Q2XZ",))
    match = choose_thread(keys, ThreadCandidates(by_ref=(CASE,)), "stranger@evil.example", ())
    assert match.case_ref is None
    assert "another buyer" in match.reason


def test_same_order_from_same_buyer_with_open_case_joins() -> None:
    match = choose_thread(
        NO_KEYS, ThreadCandidates(by_order=(CASE,)), "buyer@acme.example", ("1625349876123450",)
    )
    assert (match.case_ref, match.how) == ("K7Q2XZ", "order-number")


def test_nothing_known_opens_a_new_case() -> None:
    match = choose_thread(NO_KEYS, ThreadCandidates(), "buyer@acme.example", ("1",))
    assert match.case_ref is None and match.how == "new"


def test_a_case_reference_after_a_megabyte_of_blanks_is_found_without_shortening_them() -> None:
    # Every blank of a run used to be a start that read the rest of the run: 20,000 blanks took
    # 4 s and a megabyte never finished. A regression shows as a test that does not finish.
    text = " " * 1_000_000 + "[" + " " * 1_000_000 + "Case" + " " * 1_000_000 + "#K7Q2XZ]"
    assert find_case_refs(text, US) == ("K7Q2XZ",)


def test_a_bracket_glued_to_a_word_still_lets_the_tag_inside_count() -> None:
    assert find_case_refs("see foo[Case #K7Q2XZ]", US) == ("K7Q2XZ",)
    assert find_case_refs("showcase K7Q2XZ", US) == ()
