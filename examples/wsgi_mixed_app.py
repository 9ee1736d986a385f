"""The Flask app examples/wsgi_mixed mounts on /app, next to a C++ handler and a
WebSocket. Flask sees SCRIPT_NAME=/app, so url_for and redirects include the prefix."""
import os

from flask import Flask, redirect, request, url_for

app = Flask(__name__)


@app.route("/")
def index():
    return f"hello from Flask (pid {os.getpid()}) at {request.script_root}{request.path}\n"


@app.route("/hello/<name>")
def hello(name):
    return {"hello": name, "from": "flask"}


@app.route("/home")
def home():
    return redirect(url_for("index"))
