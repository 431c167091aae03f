"""The bare baseline: a Flask "hello" served exactly as the app is (same gunicorn command line)."""
from flask import Flask

app = Flask(__name__)


@app.get("/")
def hello():
    return "hello"
