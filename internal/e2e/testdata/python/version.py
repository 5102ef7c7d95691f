"""An app whose answer names its code version; tests rewrite this file."""
import os

VERSION = "v1"


def application(environ, start_response):
    body = ("%s %s %s" % (VERSION, os.getpid(), os.environ.get("GW_TEST_COLOR", ""))).encode()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]
