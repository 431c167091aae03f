"""Ordering, viewing and stopping infusion series."""
from flask import Blueprint

bp = Blueprint("series", __name__)
