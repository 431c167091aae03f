"""One wording for a reading against its limit, so the same check reads the same on every page.

The checklist's gates, the in-chair alerts and the discharge check all say which component crossed
its limit ("Blood pressure 165/100: diastolic 100 is at or above 100"), never the whole reading
against the whole limit ("165/100 is at or above 180/100" reads as if 165 were at or above 180).
"""


def blood_pressure(systolic, diastolic, limit_systolic, limit_diastolic, *, inclusive) -> str:
    """"Blood pressure S/D: <each component over its limit>", the limit inclusive (at or above) or
    not (above); a component not measured is shown as "–" and never named."""
    relation, over = ("is at or above", _at_or_above) if inclusive else ("is above", _above)
    crossed = [f"{name} {value} {relation} {limit}"
               for name, value, limit in (("systolic", systolic, limit_systolic),
                                          ("diastolic", diastolic, limit_diastolic)) if over(value, limit)]
    return f"Blood pressure {_shown(systolic)}/{_shown(diastolic)}: {' and '.join(crossed)}"


def heart_rate_outside(heart_rate, low, high) -> str:
    return f"Heart rate {heart_rate} is outside {low}–{high}"


def spo2_below(spo2, minimum) -> str:
    return f"SpO2 {spo2}% is below {minimum}%"


def _at_or_above(value, limit):
    return value is not None and value >= limit


def _above(value, limit):
    return value is not None and value > limit


def _shown(value):
    return "–" if value is None else value
