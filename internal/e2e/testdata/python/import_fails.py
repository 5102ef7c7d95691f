import json


def helper():
    return json.loads("{not json")


CONFIG = helper()


def application(environ, start_response):
    start_response("200 OK", [])
    return [b"never"]
