"""Refusals: a step a rule or a service declines, with the problems (field, message) to show."""
from opsmgr.rules.findings import Problem


class DomainError(ValueError):
    """A refused step. `problems` pairs each message with the form field it concerns (None: the form);
    `audited` refusals wrote their audit event, which the request boundary commits (and nothing else);
    `findings` are the open findings behind a gate's refusal."""

    def __init__(self, problems, *, audited=False, findings=(), message=None):
        self.problems = tuple(problems) or (Problem(None, "This was refused."),)
        super().__init__(message or self.problems[0].message)
        self.audited, self.findings = audited, tuple(findings)
        #: The field of the first problem (None: the whole form).
        self.field = self.problems[0].field

    @property
    def errors(self):
        return [(problem.field, problem.message) for problem in self.problems]
