"""Flask hello world for bench/run.py `flask-hello` (Debian's python3-flask)."""
from flask import Flask

app = Flask(__name__)


@app.route("/")
def hello():
    return "Hello, world"


application = app
