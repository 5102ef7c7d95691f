from flask import Flask, request, jsonify

app = Flask(__name__)


@app.route("/")
def index():
    return "Hello from Flask"


@app.route("/form", methods=["POST"])
def form():
    return jsonify(name=request.form.get("name"), script_root=request.script_root, path=request.path)
