"""Patient list, registration, chart and record edits."""
from flask import Blueprint

bp = Blueprint("patients", __name__, url_prefix="/patients")
