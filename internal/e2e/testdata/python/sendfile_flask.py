# Flask's send_file with use_x_sendfile: the answer carries X-Sendfile and
# the file's Content-Length, and no body.
import os
import flask

app = flask.Flask(__name__)
app.use_x_sendfile = True
ROOT = os.environ["SENDFILE_ROOT"]


@app.route("/dl")
def dl():
    p = flask.request.args["path"]
    if not p.startswith("/"):
        p = os.path.join(ROOT, p)
    return flask.send_file(p, as_attachment=True, download_name="r.bin")


@app.route("/type")
def sendfile_type():
    return flask.request.headers.get("X-Sendfile-Type", "") + "|" + flask.request.headers.get("X-Accel-Mapping", "")


@app.route("/ping")
def ping():
    return "pong"
