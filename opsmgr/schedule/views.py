"""The chair board, the week calendar, booking and session actions."""
from flask import Blueprint

bp = Blueprint("schedule", __name__)
