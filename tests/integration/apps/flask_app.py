"""A small but real Flask app: routes, forms, redirects, cookies, sessions, JSON, errors."""
from flask import Flask, abort, jsonify, make_response, redirect, request, session, url_for

app = Flask(__name__)
app.secret_key = "not-a-secret-for-tests"


@app.route("/")
def index():
    return "Hello, World!"


@app.route("/hello/<name>")
def hello(name):
    return f"Hello, {name}! ({request.args.get('greeting', 'hi')})"


@app.route("/form", methods=["GET", "POST"])
def form():
    if request.method == "POST":
        return jsonify(name=request.form.get("name"), tags=request.form.getlist("tag"))
    return '<form method="post"><input name="name"></form>'


@app.route("/upload", methods=["POST"])
def upload():
    f = request.files["file"]
    data = f.read()
    return jsonify(filename=f.filename, size=len(data), field=request.form.get("note"))


@app.route("/json", methods=["POST"])
def json_echo():
    return jsonify(got=request.get_json(), path=request.path, script=request.script_root)


@app.route("/go")
def go():
    return redirect(url_for("hello", name="redirected"))


@app.route("/cookie/set")
def set_cookie():
    resp = make_response("set")
    resp.set_cookie("flavour", "oatmeal", httponly=True)
    return resp


@app.route("/cookie/get")
def get_cookie():
    return request.cookies.get("flavour", "none")


@app.route("/session/<value>")
def set_session(value):
    session["value"] = value
    return "stored"


@app.route("/session")
def get_session():
    return session.get("value", "empty")


@app.route("/forbidden")
def forbidden():
    abort(403)


@app.route("/crash")
def crash():
    raise RuntimeError("unhandled in a view")


@app.route("/headers")
def headers():
    return jsonify(ua=request.headers.get("User-Agent"), xs=request.headers.get("X-Custom"),
                   remote=request.remote_addr, scheme=request.scheme, host=request.host)


application = app
