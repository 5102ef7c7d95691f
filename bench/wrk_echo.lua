-- POST /echo with a 64 KiB body, built once by wrk (no per-request Lua).
wrk.method = "POST"
wrk.path = "/echo"
wrk.body = string.rep("a", 65536)
wrk.headers["Content-Type"] = "application/octet-stream"
