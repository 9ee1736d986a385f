"""Flask reading a whole upload with request.get_data() (werkzeug reads wsgi.input)."""
import hashlib

from flask import Flask, jsonify, request

app = Flask(__name__)


@app.route("/upload", methods=["POST"])
def upload():
    data = request.get_data()
    return jsonify(length=len(data), sha256=hashlib.sha256(data).hexdigest())
