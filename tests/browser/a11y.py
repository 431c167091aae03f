"""axe-core in the browser tests: inject the vendored copy (tests/browser/vendor, never the app's static
files) into a page and list what it finds against WCAG 2.1 A and AA.

The app's Content-Security-Policy forbids injected scripts, so the page must be open in a browser
context created with ``bypass_csp=True``.
"""
from pathlib import Path

AXE = Path(__file__).parent / "vendor" / "axe.min.js"
#: axe-core's tags for the success criteria of WCAG 2.0 and 2.1, levels A and AA.
WCAG_21_AA = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa")

# Only what the report needs crosses back from the page (axe's full result is large).
_RUN = """async ({tags, disabled}) => {
  const options = {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']};
  if (disabled.length) {
    options.rules = Object.fromEntries(disabled.map(id => [id, {enabled: false}]));
  }
  const results = await axe.run(document, options);
  return results.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
    nodes: v.nodes.map(n => ({target: n.target, summary: n.failureSummary || '', html: n.html})),
  }));
}"""


def violations(page, disabled=()):
    """axe's WCAG 2.1 A/AA violations on the page as it is now, except the rules in `disabled`."""
    if not page.evaluate("typeof window.axe === 'object'"):
        page.add_script_tag(path=str(AXE))
    return page.evaluate(_RUN, {"tags": list(WCAG_21_AA), "disabled": list(disabled)})


def _selector(target):
    # A target is a list of selectors: one per frame or shadow root on the way to the element.
    return " >> ".join(part if isinstance(part, str) else " ".join(part) for part in target)


def report(found, where=""):
    """A readable list: rule id, impact and help, then each offending element with axe's summary."""
    lines = [f"{len(found)} accessibility violation(s){f' on {where}' if where else ''}:"]
    for violation in found:
        lines.append(f"- {violation['id']} ({violation['impact']}): {violation['help']} <{violation['helpUrl']}>")
        for node in violation["nodes"]:
            lines.append(f"    at {_selector(node['target'])}")
            lines.extend(f"       {line.strip()}" for line in node["summary"].splitlines() if line.strip())
    return "\n".join(lines)
