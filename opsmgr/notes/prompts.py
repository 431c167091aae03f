"""The note template of each protocol: what each field asks for, as placeholder prompts.

Prompts come from ../shared/reference/clinical.md §5 (intention prompts, environment, experience,
adverse effects, integration) and §2.3 for esketamine's REMS monitoring record. A protocol's own
``notes`` text (edited by admins on the protocol page) is shown above the form as its guidance.
"""
COMMON = {
    "mindset": "How did the patient arrive? Mood, anxiety, sleep, anything on their mind today.",
    "intention": "In the patient's words. A lightly held intention, not an agenda.",
    "expectations": "What do they expect or hope for from this session?",
    "worries": "Fears about the session or life right now.",
    "music": "Instrumental, no lyrics? Playlist name; headphones or speaker.",
    "lighting": "e.g. dimmed lamps, no overhead light",
    "room": "Room or chair area",
    "support_person": "Who was present (name or role), briefed beforehand? Consent to touch given?",
    "setting_changes": "Music stopped, mask removed, lights changed, someone entered…",
    "emotional_tone": "Pleasant, unpleasant, mixed; how it moved through the session.",
    "themes": "What came up: memories, relationships, insights.",
    "perceptual_effects": "Visual effects, body sensations, sense of time, ego dissolution, disinhibition, peace.",
    "quotes": "Notable words of the patient, in quotation marks.",
    "ending": "How the session ended and how the patient came back.",
    "post_session_state": "Orientation, mood, nausea, gait; ready for the escort?",
    "integration_plan": "Integration session booked? Therapy, journaling, next infusion.",
    "narrative": "The session in your words.",
}
BY_ROUTE = {
    "iv": {"narrative": "IV ketamine: dose and rate, the course of the infusion and recovery, in your words."},
    "esketamine": {
        "narrative": "Esketamine: devices used, self-administration under direct supervision, the observation "
                     "period of at least two hours and the patient's condition at its end (REMS).",
        "setting_changes": "Esketamine: changes during the observation period.",
    },
}


def prompts_for(protocol):
    """{field: prompt} for a note of a session on this protocol."""
    return {**COMMON, **BY_ROUTE.get(protocol.route, {})}
