"""Phone numbers and email addresses as people type them: checked with `phonenumbers` and
`email-validator` (no network), kept in one form (E.164, the normalised address), shown to staff the
way the clinic writes them."""
import phonenumbers
from email_validator import EmailNotValidError, validate_email
from flask import current_app
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType

#: Number types that can take a text message. US and Canadian numbers are all "fixed line or mobile":
#: the numbering plan does not tell them apart.
TEXTABLE = frozenset({PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE})
NO_EXTENSION = "Enter the number without an extension: reminders cannot dial one."


class ContactError(ValueError):
    """A phone number or email address that is not one; the message says what to type."""


def clinic_region():
    """The clinic's region (ISO 3166 code such as "US"): numbers typed without a country code are read in it."""
    return current_app.config["PHONE_REGION"]


def phone_message(region):
    """How to write a phone number, with an example of the clinic's own format and an international one."""
    if region == "US":
        return "Enter a phone number like (503) 555-0142 or +44 20 7946 0958."
    local = phonenumbers.example_number(region)
    example = phonenumbers.format_number(local, PhoneNumberFormat.NATIONAL) if local else "+1 503 555 0142"
    return f"Enter a phone number like {example} or +1 503 555 0142."


def e164(text, region):
    """A phone number typed as people write it, in E.164 ('(503) 555-0142' → '+15035550142'); '' for
    nothing typed. ContactError when it is not a valid number in `region` or with its country code."""
    text = (text or "").strip()
    if not text:
        return ""
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException as error:
        raise ContactError(phone_message(region)) from error
    if not phonenumbers.is_valid_number(number):
        raise ContactError(phone_message(region))
    if number.extension:
        raise ContactError(NO_EXTENSION)
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def _stored(value):
    """A stored E.164 number, parsed; None for anything else (numbers saved before E.164 was required)."""
    if not value or not value.startswith("+"):
        return None
    try:
        number = phonenumbers.parse(value, None)
    except NumberParseException:
        return None
    return number if phonenumbers.is_valid_number(number) else None


def takes_texts(value):
    """Whether a stored number can take a text message (a mobile, or a number that may be one)."""
    number = _stored(value)
    return number is not None and phonenumbers.number_type(number) in TEXTABLE


def phone_display(value, region):
    """A stored number for staff: the national format for numbers of the clinic's country, international
    for others; anything not in E.164 (saved before it was required) exactly as stored."""
    number = _stored(value)
    if number is None:
        return value or ""
    home = number.country_code == phonenumbers.country_code_for_region(region)
    return phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL if home else PhoneNumberFormat.INTERNATIONAL)


def phone_filter(value):
    """The `phone` template filter: phone_display in the clinic's region."""
    return phone_display(value, clinic_region())


def normal_email(text):
    """An email address in its normalised form (domain in lower case); '' for nothing typed. ContactError
    when it is not an address; the domain's mail servers are not looked up."""
    text = (text or "").strip()
    if not text:
        return ""
    try:
        return validate_email(text, check_deliverability=False).normalized
    except EmailNotValidError as error:
        raise ContactError(f"Enter an email address like name@example.org. {error}") from error
