"""Telling patients apart: names folded for search and sorting, phone numbers and emails compared as
people write them differently, and contact details shown only in part.

migrations/versions/20261205_a4c3d9e0f1b4_patient_search_keys.py holds a copy of the name and phone
keys (a migration may not import the app): change both together.
"""
import unicodedata


def fold(text):
    """Text without accents, in one case: 'María RAMÍREZ' → 'maria ramirez'. Letters that do not
    decompose (ø, ł, ß) keep their own form, casefolded ('ß' → 'ss')."""
    decomposed = unicodedata.normalize("NFKD", text or "")
    return "".join(char for char in decomposed if not unicodedata.combining(char)).casefold()


def _parts(word):
    """The letter-and-digit runs of one word: "o'brien" → ['o', 'brien']."""
    return "".join(char if char.isalnum() else " " for char in word).split()


def name_words(text):
    """The folded words of a name, joined across hyphens and apostrophes: "O'Brien-Díaz" → ['obriendiaz']."""
    return [joined for joined in ("".join(_parts(word)) for word in fold(text).split()) if joined]


def search_key(*names, limit=250):
    """Every word of the names, joined and also split at hyphens and apostrophes, each once, so that a word
    typed either way is the prefix of one of them; cut at a whole word within `limit` characters."""
    words = []
    for word in fold(" ".join(names)).split():
        parts = _parts(word)
        for candidate in ["".join(parts), *(parts if len(parts) > 1 else ())]:
            if candidate and candidate not in words:
                words.append(candidate)
    key = ""
    for word in words:
        if len(key) + len(word) + 1 > limit:
            break
        key = f"{key} {word}" if key else word
    return key


def query_words(text):
    """The words a search must find, each as a prefix of some word of the name, in any order."""
    return list(dict.fromkeys(name_words(text)))


def same_name_key(legal_name):
    """A legal name compared as a whole, ignoring accents, case, hyphens and apostrophes, and word order."""
    return " ".join(sorted(name_words(legal_name)))


def family_and_given(legal_name):
    """(family, given) for sorting, folded: 'Ramírez, María' and 'María Ramírez' both give ('ramirez', 'maria').
    Without a comma the last word is the family name."""
    text = fold(legal_name)
    if "," in text:
        family, given = text.split(",", 1)
    else:
        *first, last = text.split() or [""]
        family, given = last, " ".join(first)
    return " ".join(name_words(family)), " ".join(name_words(given))


#: Digits compared: the last ten drop any country code or trunk prefix ('+44 20…' and '020…' agree).
PHONE_DIGITS = 10
#: Fewer digits than this is no phone number to match on.
MIN_PHONE_DIGITS = 7


def phone_key(phone):
    """A phone number as digits to compare, or '' when there are too few to mean anything."""
    digits = "".join(char for char in phone or "" if char.isdigit() and char.isascii())
    return digits[-PHONE_DIGITS:] if len(digits) >= MIN_PHONE_DIGITS else ""


def email_key(email):
    """An email address compared without regard to case or surrounding space."""
    # lower(), not casefold(): the database compares with SQL lower().
    return (email or "").strip().lower()


def phone_hint(phone):
    """Only the last digits of a phone number: 'ending 0101'."""
    digits = "".join(char for char in phone or "" if char.isdigit())
    return f"ending {digits[-4:]}" if len(digits) >= 4 else ""


def email_hint(email):
    """An email with the name hidden but its first letter: 'm•••@example.org'."""
    name, at, domain = (email or "").strip().rpartition("@")
    return f"{name[:1]}•••@{domain}" if at and name and domain else ""
