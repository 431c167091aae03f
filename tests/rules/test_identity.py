"""Telling patients apart, table-first: folding, search and sort keys, phone and email keys, hints. No app."""
import pytest

from opsmgr.rules.identity import (
    email_hint,
    email_key,
    family_and_given,
    fold,
    phone_hint,
    phone_key,
    query_words,
    same_name_key,
    search_key,
)


@pytest.mark.parametrize(("text", "folded"), [
    ("María RAMÍREZ", "maria ramirez"),
    ("Zoë Ångström", "zoe angstrom"),
    ("Straße", "strasse"),
    ("Øyvind Łukasz", "øyvind łukasz"),  # letters that do not decompose keep their own form
    ("ﬁona", "fiona"),  # a compatibility ligature
    ("", ""),
    (None, ""),
])
def test_fold_drops_accents_and_case(text, folded):
    assert fold(text) == folded


@pytest.mark.parametrize(("names", "key"), [
    (("María Ramírez", ""), "maria ramirez"),
    (("María Ramírez", "Mari"), "maria ramirez mari"),
    (("Avery Demo-Lindqvist", "Avery"), "avery demolindqvist demo lindqvist"),
    (("Seán O'Brien", ""), "sean obrien o brien"),
])
def test_search_key_holds_each_word_joined_and_split(names, key):
    assert search_key(*names) == key


def test_search_key_stops_at_a_whole_word_within_the_limit():
    assert search_key("aaaa bbbb cccc", limit=9) == "aaaa bbbb"
    assert search_key("aaaa bbbb cccc", limit=8) == "aaaa"


@pytest.mark.parametrize(("query", "words"), [
    ("ramirez maria", ["ramirez", "maria"]),
    ("RAMÍREZ  María ramirez", ["ramirez", "maria"]),
    ("o'brien", ["obrien"]),
    ("%_!", []),  # never a LIKE wildcard
])
def test_query_words(query, words):
    assert query_words(query) == words


@pytest.mark.parametrize(("first", "second", "same"), [
    ("María Ramírez", "MARIA RAMIREZ", True),
    ("María Ramírez", "Ramírez María", True),
    ("María Ramírez", "Ramírez, María", True),
    ("Ana Demo-Lindqvist", "ana demolindqvist", True),
    ("María Ramírez", "Mario Ramírez", False),
    ("María Ramírez", "María Ramírez López", False),
])
def test_same_name_key_ignores_accents_case_punctuation_and_order(first, second, same):
    assert (same_name_key(first) == same_name_key(second)) is same


@pytest.mark.parametrize(("legal_name", "keys"), [
    ("María Ramírez", ("ramirez", "maria")),
    ("Ramírez, María", ("ramirez", "maria")),
    ("Ana María de la Cruz", ("cruz", "ana maria de la")),
    ("Avery Demo-Lindqvist", ("demolindqvist", "avery")),
    ("Madonna", ("madonna", "")),
    ("", ("", "")),
])
def test_family_name_is_the_last_word_or_before_a_comma(legal_name, keys):
    assert family_and_given(legal_name) == keys


@pytest.mark.parametrize(("phone", "key"), [
    ("+1 (555) 010-4477", "5550104477"),
    ("555.010.4477", "5550104477"),
    ("001 555 010 4477", "5550104477"),
    ("+44 20 7946 0958", "2079460958"),
    ("020 7946 0958", "2079460958"),
    ("555-0101", "5550101"),  # 7 digits: on the threshold, a number
    ("55-0101", ""),  # 6 digits: too few to match on
    ("", ""),
    (None, ""),
])
def test_phone_key_keeps_the_last_ten_digits_of_seven_or_more(phone, key):
    assert phone_key(phone) == key


@pytest.mark.parametrize(("email", "key"), [
    ("Ada.Quill@Example.ORG", "ada.quill@example.org"),
    (" ada@example.org ", "ada@example.org"),
    ("", ""),
])
def test_email_key_ignores_case(email, key):
    assert email_key(email) == key


@pytest.mark.parametrize(("phone", "hint"), [
    ("+1 (555) 010-4477", "ending 4477"), ("4477", "ending 4477"), ("477", ""), ("", "")])
def test_phone_hint_shows_the_last_four_digits(phone, hint):
    assert phone_hint(phone) == hint


@pytest.mark.parametrize(("email", "hint"), [
    ("ada.quill@example.org", "a•••@example.org"), ("a@b.org", "a•••@b.org"), ("@b.org", ""), ("ada@", ""),
    ("", "")])
def test_email_hint_hides_the_name(email, hint):
    assert email_hint(email) == hint
