"""Admin pages for protocols, chairs, opening hours and settings."""
from flask import Blueprint

bp = Blueprint("clinic", __name__, url_prefix="/admin/clinic")
