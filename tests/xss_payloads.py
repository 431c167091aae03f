"""The XSS payload corpus (reliability.md §8 test 4), and the demo clinic with it in every free-text
column, for the page sweeps (tests/test_xss_sweep.py, tests/browser/test_xss_pages.py).

EVALUATED is what any of the template payloads would leave if a template engine ran it (1234*5678).
"""
from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError

from opsmgr.auth.models import Role
from opsmgr.extensions import db
from opsmgr.patients.models import Patient
from opsmgr.sessions.models import InfusionSession

PAYLOADS = [
    # Script elements, in several spellings.
    "<script>alert(1)</script>",
    "<SCRIPT>alert('XSS')</SCRIPT>",
    "<ScRiPt>window.__xss=1</sCrIpT>",
    "<script src=//127.0.0.1/x.js></script>",
    "<script>alert(String.fromCharCode(88,83,83))</script>",
    "<<script>alert(2);//<</script>",
    "<scr<script>ipt>alert(3)</scr</script>ipt>",
    "<script/xss>alert(4)</script>",
    "</script><script>alert(5)</script>",
    # Event handlers on ordinary elements, in various casings.
    "<img src=x onerror=alert(1)>",
    "<IMG SRC=x OnErRoR=alert(6)>",
    '<img src="x" onerror="window.__xss=1">',
    "<img/src=x/onerror=alert(7)>",
    "<img src=x onerror=&#97;lert(8)>",
    "<svg onload=alert(9)>",
    "<svg/onload=alert(10)//",
    "<body onload=alert(11)>",
    "<details open ontoggle=alert(12)>",
    "<input autofocus onfocus=alert(13)>",
    "<video><source onerror=alert(14)></video>",
    "<audio src=x onerror=alert(15)>",
    "<marquee onstart=alert(16)>x</marquee>",
    '<div style="width:100%;height:100%" onmouseover="alert(17)">hover</div>',
    "<select autofocus onfocus=alert(18)>",
    # Attribute breakouts (the draft page puts text in value attributes and in textareas).
    '"><script>alert(19)</script>',
    "'><script>alert(20)</script>",
    '" onmouseover="alert(21)" x="',
    "' onfocus='alert(22)' autofocus='",
    '" autofocus onfocus="window.__xss=1',
    "</textarea><script>alert(23)</script>",
    "</TEXTAREA><img src=x onerror=alert(24)>",
    "</title><script>alert(25)</script>",
    "</span></dd></dl><script>alert(26)</script>",
    "--><script>alert(27)</script><!--",
    "]]><script>alert(28)</script>",
    # URLs with dangerous schemes.
    "javascript:alert(29)",
    "<a href=javascript:alert(30)>click</a>",
    '<a href="jAvAsCrIpT:alert(31)">click</a>',
    "<a href=\"java\tscript:alert(32)\">tab</a>",
    "<a href=data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==>data</a>",
    "<form action=javascript:alert(33)><button>go</button></form>",
    "<button formaction=javascript:alert(34)>go</button>",
    "<object data=javascript:alert(35)></object>",
    "<embed src=javascript:alert(36)>",
    # Frames, MathML, SVG and style tricks.
    "<iframe src=javascript:alert(37)></iframe>",
    '<iframe srcdoc="<script>parent.alert(38)</script>"></iframe>',
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(39)>",
    "<math href=javascript:alert(40)>CLICK</math>",
    "<svg><script>alert(41)</script></svg>",
    "<svg><animate onbegin=alert(42) attributeName=x dur=1s>",
    "<style>@import 'javascript:alert(43)';</style>",
    "<style>*{background:url(javascript:alert(44))}</style>",
    '<div style="background:url(javascript:alert(45))">bg</div>',
    "<noscript><p title=\"</noscript><img src=x onerror=alert(46)>\">",
    "<base href=javascript:alert(47)//>",
    '<meta http-equiv="refresh" content="0;url=javascript:alert(48)">',
    "<link rel=import href=data:text/html,<script>alert(49)</script>>",
    # Template injection: must stay as typed, never evaluated.
    "{{7*7}}",
    "{{ config.items() }}",
    "{% print 7*7 %}",
    "${7*7}",
    "#{7*7}",
    "<%= 7*7 %>",
    "{{constructor.constructor('alert(50)')()}}",
    # Encoded and Unicode variants.
    "&lt;script&gt;alert(51)&lt;/script&gt;",
    "&#60;img src=x onerror=alert(52)&#62;",
    "%3Cscript%3Ealert(53)%3C%2Fscript%3E",
    "\\u003cscript\\u003ealert(54)\\u003c/script\\u003e",
    "\uff1cscript\uff1ealert(55)\uff1c/script\uff1e",
    "<scr\u200bipt>alert(56)</scr\u200bipt>",
    "+ADw-script+AD4-alert(57)+ADw-/script+AD4-",
    "\u202e>tpircs/<)85(trela>tpircs<",
    "<img src=x onerror=\u0061lert(59)>",
    "Zoë «quote» 気分は良い 🙂 <b>bold?</b> &amp; &copy;",
    # Template injection whose evaluation would be unmistakable (1234*5678 = 7006652), raw blocks and
    # unclosed tags (issue 15).
    "{{1234*5678}}",
    "${1234*5678}",
    "{% raw %}{{1234*5678}}{% endraw %}",
    "{{ 1234*5678 }}<img src=x onerror=alert(60)",
    "<img src=x onerror=alert(61)",
    '<a href="javascript:alert(62)',
    "<svg/OnLoAd=alert(63) ",
    "<IFRAME SRC=JaVaScRiPt:alert(64)>",
]
assert len(PAYLOADS) == len(set(PAYLOADS)) >= 50
EVALUATED = "7006652"


#: Every column that holds text a person typed: table -> columns (their lengths come from the model).
FREE_TEXT = {
    "staff_user": ("full_name", "credentials"),
    "chair": ("name",),
    "chair_tablet": ("name",),
    "clinic_closure": ("label",),
    "patient": ("legal_name", "preferred_name", "escort_name", "indication_detail", "allergies",
                "consent_form_version"),
    "protocol": ("name", "notes"),
    "policy_version": ("note",),
    "infusion_series": ("stop_reason",),
    "infusion_session": ("status_reason", "recorded_late_reason", "same_day_reason"),
    "patient_contraindication": ("detail", "entered_in_error_reason"),
    "patient_medication": ("name", "entered_in_error_reason"),
    "patient_weight": ("entered_in_error_reason",),
    "checklist_response": ("escort_name", "escort_arrangement", "intention"),
    "controlled_substance_entry": ("product", "lot", "shortfall_reason"),
    "discharge_assessment": ("condition",),
    "discharge_record": ("condition",),
    "dose_order": ("reason",),
    "dose_record": ("change_reason",),
    "finding_override": ("reason",),
    "follow_up": ("escalation_note", "outcome"),
    "in_chair_alert": ("note", "drug_given"),
    "infusion_event": ("note",),
    "physician_task": ("resolution_note",),
    "adverse_event": ("other_kind", "intervention", "drug_given"),
    "vital_sign": ("entered_in_error_reason",),
    "score": ("entered_in_error_reason",),
    "session_note": ("mindset", "intention", "expectations", "worries", "music", "lighting", "room",
                     "support_person", "setting_changes", "emotional_tone", "themes", "perceptual_effects",
                     "quotes", "ending", "post_session_state", "integration_plan", "narrative"),
}
#: The patient whose first name goes into reminders: a template payload with no space in it.
REMINDER_NAME = "{{1234*5678}}"
#: The legal name of the patient whose session summary the sweep prints: it must come out of pdftotext as typed.
PDF_NAME = "<script>alert(1)</script> {{1234*5678}} ${7*7}"
ROLES = tuple(role.value for role in Role)


def store_payloads(app):
    """Write the corpus into every FREE_TEXT column of every row, each column's payloads cycling so all
    of them land; a row the signed-record lock protects keeps its text (its trigger refuses)."""
    tables = {table.name: table for table in db.metadata.sorted_tables}
    stored = locked = 0
    with app.app_context():
        for name, columns in FREE_TEXT.items():
            table = tables[name]
            key = table.primary_key.columns.values()[0]
            for number, row_id in enumerate(db.session.scalars(select(key).order_by(key))):
                values = {}
                for offset, column in enumerate(columns):
                    limit = table.c[column].type.length or 10_000
                    fits = [p for p in PAYLOADS if len(p) <= limit]
                    values[column] = fits[(number * len(columns) + offset) % len(fits)]
                try:
                    with db.session.begin_nested():
                        db.session.execute(update(table).where(key == row_id).values(**values))
                    stored += len(values)
                except DBAPIError:  # a signed row: the lock's trigger refused the change
                    locked += 1
        patient_id = db.session.scalar(select(Patient.id).order_by(Patient.id))
        db.session.execute(update(Patient).where(Patient.id == patient_id).values(preferred_name=REMINDER_NAME))
        printed = db.session.get(InfusionSession, first_id(InfusionSession, InfusionSession.status == "discharged"))
        db.session.execute(update(Patient).where(Patient.id == printed.series.patient_id).values(legal_name=PDF_NAME))
        db.session.commit()
    return stored


def first_id(model, *where):
    return db.session.scalar(select(model.id).where(*where).order_by(model.id).limit(1))


def page_ids(app, every_status):
    """Real objects for the GET routes' arguments; a session of each status in the long form."""
    from opsmgr.auth.models import StaffUser
    from opsmgr.followups.models import FollowUp
    from opsmgr.reports.models import ReportDocument
    from opsmgr.schedule.models import Chair
    from opsmgr.series.models import Protocol

    with app.app_context():
        common = {"user_id": first_id(StaffUser), "chair_id": first_id(Chair), "protocol_id": first_id(Protocol),
                  "item_id": first_id(FollowUp) or 1, "filename": "css/app.css",
                  "document_id": db.session.scalar(select(ReportDocument.document_id).limit(1)) or "NONE"}
        statuses = db.session.scalars(select(InfusionSession.status).distinct().order_by(InfusionSession.status))
        sessions = [db.session.get(InfusionSession, first_id(InfusionSession, InfusionSession.status == status))
                    for status in statuses]
        if not every_status:  # the short sample: the sessions whose pages show the most typed text
            sessions = [s for s in sessions if s.status == "discharged"] or sessions[:1]
        return [{**common, "session_id": s.id, "series_id": s.series_id, "patient_id": s.series.patient_id}
                for s in sessions]


def get_urls(app, ids):
    adapter = app.url_map.bind("localhost")
    urls = []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.endpoint):
        if "GET" not in rule.methods or rule.endpoint == "static":
            continue
        for values in ids if rule.arguments & {"session_id", "series_id", "patient_id"} else ids[:1]:
            urls.append((rule.endpoint, adapter.build(rule.endpoint, {a: values[a] for a in rule.arguments})))
    # Reflected input: a payload in the search and filter parameters.
    urls += [("patients.list", f"/patients/?q={PAYLOADS[0]}"), ("schedule.book", f"/schedule/book?q={PAYLOADS[9]}"),
             ("audit.event_list", f"/admin/audit/?username={PAYLOADS[10]}")]
    return list(dict.fromkeys(urls))
