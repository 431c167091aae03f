"""The clinical policy: every threshold the rules use, as one object of configurable defaults.

Each default names its source (clinical reference, "Rules a tool should enforce"; [INF] marks
a default chosen where the sources give no number). Admins edit the values in the app; every
version is kept, and a session records the version it was decided under. The severity of each
finding code is policy too (`severities`, within the limits rules/severities.py declares).
"""
from dataclasses import asdict, dataclass, field, fields


@dataclass(frozen=True)
class ClinicalPolicy:
    # --- Rule 1: vitals before start -------------------------------------------------------------
    #: Vitals older than this at the start are stale [INF window] (amg-ketamine; Spravato form §2.3).
    vitals_max_age_minutes: int = 30
    # --- Rule 2: BP soft gate (Spravato label: consider delaying if > 140/90, §2.2) --------------
    bp_soft_systolic: int = 140
    bp_soft_diastolic: int = 90
    # --- Rule 3: BP hard gate (Swiss ketamine label: resting BP > 180/100 contraindicated; ED trial
    #     excluded SBP > 180, §1.6). Overridable by a physician, per Yip 2022 (§1.1). ---------------
    bp_hard_systolic: int = 180
    bp_hard_diastolic: int = 100
    # --- Rule 4: HR and SpO2 gates (NCT01892995 entry limits, §1.6; as clinic gates [INF]) --------
    hr_low: int = 50
    hr_high: int = 120
    spo2_min: int = 95
    # --- Rule 5: contraindication recheck: substance or alcohol use within this window -----------
    substance_window_hours: int = 24
    # --- Rule 6: fasting (amg-ketamine, elev8md: solids 6 h, clear liquids 2 h; Spravato: food 2 h,
    #     liquids 30 min, §2.2 and §3) -----------------------------------------------------------
    iv_fast_solids_minutes: int = 360
    iv_fast_liquids_minutes: int = 120
    esketamine_fast_food_minutes: int = 120
    esketamine_fast_liquids_minutes: int = 30
    # --- Rule 7: PHQ-9 item 9 above this needs same-day physician review (calcipedia note, §4) -----
    phq9_item9_threshold: int = 0
    # --- Rule 9: dose (Andrade 0.1-0.75 mg/kg; ASKP usual starting range tops at 1.0 mg/kg;
    #     0.5 mg/kg over >= 40 minutes, §1.7) ---------------------------------------------------------
    dose_mg_per_kg_low: float = 0.1
    dose_mg_per_kg_high: float = 0.75
    dose_mg_per_kg_ceiling: float = 1.0
    min_infusion_minutes: int = 40
    #: Weight older than this many days cannot be used for a weight-based dose [INF, §1.7].
    weight_max_age_days: int = 0
    # --- Rule 10: esketamine devices are 28 mg (§2.2) -------------------------------------------
    esketamine_device_mg: int = 28
    esketamine_max_mg: int = 84
    # --- Rule 11: vitals cadence (Emory and Yale protocols, §1.8; Spravato BP at 40 min, §2.2) ------
    iv_infusion_vitals_every_minutes: int = 10
    iv_recovery_vitals_every_minutes: int = 15
    esketamine_bp_check_minutes: int = 40
    esketamine_bp_window_minutes: int = 5
    # --- Rule 12: intra-session alert [INF thresholds]; MOAA/S 0 is loss of consciousness (§2.2) ---
    alert_systolic: int = 180
    alert_diastolic: int = 110
    alert_spo2_below: int = 92
    alert_moaas_at_or_below: int = 2
    # --- Rules 13-14: discharge (IV recovery 30 minutes [INF from ketwell/ketamine-infusion.com];
    #     esketamine >= 120 minutes after the dose, REMS §2.1) --------------------------------------
    iv_min_observation_minutes: int = 30
    esketamine_min_observation_minutes: int = 120
    baseline_moaas: int = 5
    # --- Rule 21: unsigned-note queue [INF 48 h]; CMS "as soon as practicable" (§7.3) ---
    unsigned_note_flag_hours: int = 48
    # --- Rule 17: series templates. A series plans at most its protocol's count plus this many
    #     sessions [INF]: the sources give six-infusion inductions (§1.11), so 40 is a slip. --------
    series_extra_sessions: int = 2
    # --- Rule 18 and issue 12: the follow-up plan (rules/followups.py) ------------------------------
    #: Next-day check-in call after every discharged session [INF 24 h]: ambulatory discharge standards
    #: recommend telephone follow-up (§6, medicalalgorithms.com).
    checkin_call_hours_after: int = 24
    #: A further call after the first session of a series [INF 72 h]; research follows up on day 3 (§6, PMC6447473).
    first_session_call_hours_after: int = 72
    #: PHQ-9 requests: the first this many days after the last induction session (§6 research point 7 days;
    #: rule 18 [INF]), then weekly for this many weeks in all, then every this many days [INF] (§6 maverickmedicine).
    phq9_first_request_days: int = 7
    phq9_weekly_weeks: int = 4
    phq9_then_every_days: int = 14
    #: Booster review: PHQ-9 this many points above the post-induction best, or back at/above this total
    #: (rule 18 [INF]; maverickmedicine, nyketamine §6).
    booster_rise_points: int = 5
    booster_phq9_at_or_above: int = 10
    # --- Rule 15: REMS Patient Monitoring Form, calendar days after the session (§2.3-2.4) ------------
    rems_due_days: int = 7
    rems_remind_day: int = 5
    rems_overdue_day: int = 8
    # --- Issue 12: patient reminders (rules/reminders.py) [INF defaults] ----------------------------
    #: Hours before the session; 0 switches that reminder off.
    reminder_first_hours: int = 48
    reminder_second_hours: int = 24
    #: Quiet hours in the clinic's zone, whole hours 0-23: messages due from start until end are held to end.
    quiet_hours_start: int = 20
    quiet_hours_end: int = 8
    #: "Not reached" on a follow-up call is retried the next clinic day; this miss escalates [INF].
    followup_misses_before_escalation: int = 3
    # --- Severities: {finding code: severity value} the clinic chose; a code not here has its default
    #     (rules/severities.py). Versions stored before severities were policy have none. ------------
    severities: dict[str, str] = field(default_factory=dict, hash=False)

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, values):
        """A policy from stored values; unknown keys are ignored and missing ones take the default."""
        known = {f.name for f in fields(cls)}
        kept = {name: value for name, value in values.items() if name in known}
        return cls(**{**kept, "severities": dict(kept.get("severities") or {})})


DEFAULT_POLICY = ClinicalPolicy()
#: The numeric settings, each with its FIELD_HELP (everything but `severities`).
THRESHOLDS = tuple(f.name for f in fields(ClinicalPolicy) if f.name != "severities")


#: How each setting is shown to an admin: (label, unit, source). Every threshold must be here.
FIELD_HELP = {
    "vitals_max_age_minutes": ("Pre-start vitals count as fresh for", "minutes", "Rule 1 [INF window]"),
    "bp_soft_systolic": ("Physician review above systolic", "mmHg", "Rule 2; Spravato label §2.2"),
    "bp_soft_diastolic": ("Physician review above diastolic", "mmHg", "Rule 2; Spravato label §2.2"),
    "bp_hard_systolic": ("Block start at or above systolic", "mmHg", "Rule 3; Swiss ketamine label §1.6"),
    "bp_hard_diastolic": ("Block start at or above diastolic", "mmHg", "Rule 3; Swiss ketamine label §1.6"),
    "hr_low": ("Physician review below heart rate", "bpm", "Rule 4; NCT01892995 §1.6"),
    "hr_high": ("Physician review above heart rate", "bpm", "Rule 4; NCT01892995 §1.6"),
    "spo2_min": ("Physician review below SpO2", "%", "Rule 4; NCT01892995 §1.6"),
    "substance_window_hours": ("Recent alcohol or substance use window", "hours", "Rule 5; ketwellalaska §3"),
    "iv_fast_solids_minutes": ("IV: no solid food for", "minutes", "Rule 6; amg-ketamine §3"),
    "iv_fast_liquids_minutes": ("IV: no clear liquids for", "minutes", "Rule 6; amg-ketamine §3"),
    "esketamine_fast_food_minutes": ("Esketamine: no food for", "minutes", "Rule 6; Spravato label §2.2"),
    "esketamine_fast_liquids_minutes": ("Esketamine: no liquids for", "minutes", "Rule 6; Spravato label §2.2"),
    "phq9_item9_threshold": ("PHQ-9 item 9 needs review above", "points", "Rule 7; PHQ-9 item-9 note §4"),
    "dose_mg_per_kg_low": ("Physician review below dose", "mg/kg", "Rule 9; Andrade 2017 §1.7"),
    "dose_mg_per_kg_high": ("Physician review above dose", "mg/kg", "Rule 9; Andrade 2017 §1.7"),
    "dose_mg_per_kg_ceiling": ("Block above dose", "mg/kg", "Rule 9; ASKP §1.3"),
    "min_infusion_minutes": ("Physician review for infusions shorter than", "minutes", "Rule 9; §1.7"),
    "weight_max_age_days": ("Weight may be this many days old", "days", "§1.7 [INF]"),
    "esketamine_device_mg": ("Esketamine device size", "mg", "Rule 10; Spravato label §2.2"),
    "esketamine_max_mg": ("Esketamine maximum dose", "mg", "Rule 10; Spravato label §2.2"),
    "iv_infusion_vitals_every_minutes": ("IV: vitals during infusion every", "minutes", "Rule 11; Emory, Yale §1.8"),
    "iv_recovery_vitals_every_minutes": ("IV: vitals in recovery every", "minutes", "Rule 11; Emory §1.8"),
    "esketamine_bp_check_minutes": ("Esketamine: BP check after the dose at", "minutes", "Rule 11; §2.2"),
    "esketamine_bp_window_minutes": ("Esketamine: BP check window ±", "minutes", "Rule 11 [INF]"),
    "alert_systolic": ("In-chair alert at or above systolic", "mmHg", "Rule 12 [INF]"),
    "alert_diastolic": ("In-chair alert at or above diastolic", "mmHg", "Rule 12 [INF]"),
    "alert_spo2_below": ("In-chair alert below SpO2", "%", "Rule 12 [INF]"),
    "alert_moaas_at_or_below": ("In-chair alert at or below MOAA/S", "score", "Rule 12 [INF]; §2.2"),
    "iv_min_observation_minutes": ("IV: observe after the infusion for at least", "minutes", "Rule 14 [INF]; §1.10"),
    "esketamine_min_observation_minutes": ("Esketamine: observe after the dose for at least", "minutes",
                                           "Rule 13; REMS §2.1"),
    "baseline_moaas": ("Baseline mental status (MOAA/S) for discharge", "score", "Rule 14; §1.10"),
    "unsigned_note_flag_hours": ("Flag notes still unsigned this long after the session", "hours",
                                 "Rule 21 [INF]; CMS §7.3"),
    "checkin_call_hours_after": ("Check-in call after each discharged session", "hours",
                                 "Rule 18 [INF]; ambulatory discharge follow-up §6"),
    "first_session_call_hours_after": ("Extra call after the first session of a series", "hours",
                                       "Issue 12 [INF]; day-3 research follow-up §6"),
    "phq9_first_request_days": ("First PHQ-9 request after the last induction session", "days",
                                "Rule 18 [INF]; 7-day research point §6"),
    "phq9_weekly_weeks": ("PHQ-9 requests weekly for (the first request included)", "weeks",
                          "Rule 18 [INF]; maverickmedicine §6"),
    "phq9_then_every_days": ("After that, a PHQ-9 request every", "days", "Issue 12 [INF]; maverickmedicine §6"),
    "booster_rise_points": ("Booster review when PHQ-9 rises above the post-induction best by", "points",
                            "Rule 18 [INF]; maverickmedicine, nyketamine §6"),
    "booster_phq9_at_or_above": ("Booster review when PHQ-9 is back at or above", "points",
                                 "Rule 18 [INF]; PHQ-9 moderate band §4"),
    "rems_due_days": ("REMS monitoring form due after the session", "days", "Rule 15; Spravato REMS §2.3"),
    "rems_remind_day": ("REMS monitoring form reminder on day", "day", "Rule 15; §2.3"),
    "rems_overdue_day": ("REMS monitoring form overdue from day", "day", "Rule 15; §2.3"),
    "reminder_first_hours": ("First patient reminder before the session (0: off)", "hours", "Issue 12 [INF]"),
    "reminder_second_hours": ("Second patient reminder before the session (0: off)", "hours", "Issue 12 [INF]"),
    "quiet_hours_start": ("No messages from (clinic time)", "hour 0-23", "Issue 12 [INF]"),
    "quiet_hours_end": ("No messages until (clinic time)", "hour 0-23", "Issue 12 [INF]"),
    "followup_misses_before_escalation": ("Escalate a follow-up call to a physician at miss number", "misses",
                                          "Issue 12 [INF]"),
    "series_extra_sessions": ("A series may plan beyond its protocol's count at most", "sessions",
                              "Rule 17 [INF]; §1.11"),
}
