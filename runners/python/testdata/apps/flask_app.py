"""A small Flask app for the gw_wsgi harness."""
from flask import Flask, Response, jsonify, request

app = Flask(__name__)


@app.route('/')
def index():
    return 'flask ok'


@app.post('/json')
def json_echo():
    return jsonify(got=request.get_json(), length=request.content_length)


@app.post('/form')
def form():
    return jsonify(form=request.form.to_dict(), files={k: f.read().decode() for k, f in request.files.items()})


@app.route('/stream')
def stream():
    return Response((b'%d\n' % i for i in range(3)), mimetype='text/plain')


@app.route('/fail')
def fail():
    raise ZeroDivisionError('flask boom')


if __name__ == '__main__':
    app.run()  # must never run under gw
