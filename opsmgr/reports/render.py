"""One renderer: a Jinja template → WeasyPrint → PDF/A-3b bytes, in memory.

WeasyPrint reads nothing but the app's own static files and the in-memory assets we hand it (the
chart): every other URL (http, https, ftp, data, file:// outside static) stops the render with an
error. Fonts are the system's DejaVu, named explicitly and embedded (subset) in every PDF. A broken
template or a failed render raises ReportError and leaves nothing behind: the PDF only exists as
the bytes returned.
"""
import warnings
from pathlib import Path
from urllib.parse import unquote, urlsplit

from flask import current_app, render_template
from markupsafe import Markup

#: The page sizes a clinic may choose (OPSMGR_REPORT_PAGE_SIZE), as CSS names them.
PAGE_SIZES = {"A4": "A4", "LETTER": "letter"}
#: The scheme of the in-memory assets a render is given (the chart).
ASSET_SCHEME = "opsmgr-asset"
PDF_VARIANT = "pdf/a-3b"


class ReportError(RuntimeError):
    """The report could not be produced (a template, font or renderer failure): nothing was written."""


def fetcher(static_folder, assets=None):
    """A URL fetcher serving ``static_folder`` (file:// URLs inside it) and ``assets`` ({name: (bytes,
    mime type)} as ``opsmgr-asset:name``); any other URL raises RefusedURL, which stops the render."""
    from weasyprint.urls import URLFetcher, URLFetcherResponse

    root = Path(static_folder).resolve()
    assets = dict(assets or {})
    refused = refused_url_error()

    class Fetcher(URLFetcher):
        def fetch(self, url, headers=None):
            parts = urlsplit(url)
            if parts.scheme == ASSET_SCHEME and parts.path in assets:
                body, mime = assets[parts.path]
                return URLFetcherResponse(url, body, {"Content-Type": mime})
            if parts.scheme == "file" and parts.netloc in ("", "localhost"):
                path = Path(unquote(parts.path)).resolve()
                if path.is_relative_to(root) and path.is_file():
                    return URLFetcherResponse(url, path.read_bytes(), {"Content-Type": _mime(path)})
            raise refused(f"refused to fetch {url[:80]!r}: reports read only the app's static files")

    return Fetcher(allowed_protocols=("file", ASSET_SCHEME), allow_redirects=False, fail_on_errors=True)


_REFUSED = {}


def refused_url_error():
    """The exception a refused URL raises: a WeasyPrint fatal error, so the render stops (WeasyPrint
    is imported on first use: it takes a second, and only PDF requests need it)."""
    if "class" not in _REFUSED:
        from weasyprint.urls import FatalURLFetchingError

        class RefusedURL(FatalURLFetchingError):
            """A report asked for a URL outside the app's static files."""

        _REFUSED["class"] = RefusedURL
    return _REFUSED["class"]


def _mime(path):
    return {".css": "text/css", ".svg": "image/svg+xml", ".png": "image/png", ".ttf": "font/ttf",
            ".woff2": "font/woff2"}.get(path.suffix, "application/octet-stream")


def css_string(value):
    """A value as a quoted CSS string, every character but letters and digits hex-escaped (so nothing
    typed can end the string, the rule or the <style> element)."""
    escaped = "".join(char if char.isascii() and char.isalnum() else f"\\{ord(char):06x}" for char in str(value))
    return Markup(f'"{escaped}"')  # noqa: S704  # nosec B704  # only letters, digits and hex escapes remain


def page_size(config):
    """The CSS page size from OPSMGR_REPORT_PAGE_SIZE (A4 or Letter)."""
    return PAGE_SIZES[config.get("REPORT_PAGE_SIZE", "A4").upper()]


def render_pdf(template, *, assets=None, **context):
    """Render ``template`` with ``context`` to PDF/A-3b bytes (in memory); ReportError on any failure."""
    app = current_app
    static = Path(app.static_folder)
    try:
        html = render_template(template, page_size=page_size(app.config), css_string=css_string, **context)
    except Exception as error:  # a broken template: say which, write nothing
        raise ReportError(f"The report template {template} could not be rendered: {type(error).__name__}") from error
    return html_to_pdf(html, static, assets)


def html_to_pdf(html, static_folder, assets=None):
    """WeasyPrint alone: final HTML → PDF/A-3b bytes, reading only ``static_folder`` and ``assets``."""
    from weasyprint import HTML

    base_url = Path(static_folder).resolve().as_uri() + "/"
    try:
        document = HTML(string=html, base_url=base_url, url_fetcher=fetcher(static_folder, assets))
        with warnings.catch_warnings():
            # WeasyPrint 70 opens its sRGB profile for PDF/A and never closes it (a ResourceWarning).
            warnings.simplefilter("ignore", ResourceWarning)
            return document.write_pdf(pdf_variant=PDF_VARIANT)
    except BaseException as error:
        if isinstance(error, (KeyboardInterrupt, SystemExit)):
            raise
        raise ReportError(f"The PDF could not be produced: {type(error).__name__}: {error}") from error
