package gateway

import "net/http"

// closeHidden closes the connection after the requests whose framing
// net/http accepts but hides from handlers (the rule gw's own HTTP/1.1
// server must keep, where it can see the head: answer 400 and close, as
// nginx does):
//
//   - Content-Length together with Transfer-Encoding: net/http drops the
//     Content-Length and reads the body as chunked; RFC 9112 §6.1 says the
//     server MUST close the connection after responding, since a proxy in
//     front may have framed it by the Content-Length (request smuggling).
//     A handler cannot tell whether Content-Length was there, so every
//     HTTP/1.1 request with a chunked body closes.
//   - Transfer-Encoding on HTTP/1.0: net/http ignores and drops it (Go
//     issue 12785), so a chunked body would be parsed as the next request;
//     RFC 9112 §6.1 says to treat the framing as faulty and close. A
//     handler cannot see it either, so every HTTP/1.0 keep-alive request
//     closes (HTTP/1.0 clients close by default anyway).
type closeHidden struct{ http.Handler }

func (h closeHidden) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor == 1 && (len(r.TransferEncoding) > 0 || r.ProtoMinor == 0 && !r.Close) {
		w.Header().Set("Connection", "close")
	}
	h.Handler.ServeHTTP(w, r)
}
