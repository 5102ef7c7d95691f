package h1

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// statusLines holds "HTTP/1.1 NNN Text\r\n" for every code below 600.
// Responses are always HTTP/1.1, also to 1.0 clients (RFC 9110 §6.2), as
// net/http's are.
var statusLines = func() (t [600][]byte) {
	for code := 100; code < 600; code++ {
		t[code] = statusLineOf(code)
	}
	return t
}()

func statusLineOf(code int) []byte {
	text := http.StatusText(code)
	if text == "" {
		text = "status code " + strconv.Itoa(code)
	}
	return fmt.Appendf(nil, "HTTP/1.1 %03d %s\r\n", code, text)
}

func statusLine(code int) []byte {
	if code < len(statusLines) {
		return statusLines[code]
	}
	return statusLineOf(code)
}

// writeHead puts the status line and the header into the write buffer and
// settles the framing (RFC 9112 §6.3): no body for HEAD, 1xx, 204 and 304;
// else the handler's Content-Length; else, when the handler has finished
// (final), the length it wrote; else chunked for 1.1 and a close-delimited
// body for 1.0. It also settles whether the connection stays open.
func (w *response) writeHead(final bool) {
	w.headOut = true
	h, c := w.hdr, w.c
	w.settleKeepAlive()
	autoCL := int64(-1)
	hasTrailers := len(w.trailers) > 0 || hasPrefixKey(h)
	switch {
	case !w.bodyAllowed():
		delete(h, "Content-Length") // RFC 9110 §8.6: none on 1xx and 204
	case w.isHead:
		if w.declared < 0 && final && w.written > 0 {
			autoCL = w.written
		}
	case w.declared >= 0:
	case final && !hasTrailers:
		autoCL = w.written
	case w.minor == 1:
		w.chunking = true
	default:
		w.keepAlive = false
	}
	bw := w.o.bw
	bw.Write(statusLine(w.status))
	w.writeFields(true)
	if _, ok := h["Date"]; !ok {
		bw.WriteString("Date: ")
		bw.Write(c.date())
		bw.WriteString("\r\n")
	}
	switch {
	case autoCL >= 0:
		bw.WriteString("Content-Length: ")
		bw.Write(strconv.AppendInt(c.scratch[:0], autoCL, 10))
		bw.WriteString("\r\n")
	case w.chunking:
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	switch {
	case !w.keepAlive:
		bw.WriteString("Connection: close\r\n")
	case w.minor == 0 && !hasToken(h["Connection"], "keep-alive"):
		bw.WriteString("Connection: keep-alive\r\n")
	}
	bw.WriteString("\r\n")
}

// settleKeepAlive decides, as the head goes out, whether the connection
// can carry another request.
func (w *response) settleKeepAlive() {
	c := w.c
	if !c.srv.keepAlives() || hasToken(w.hdr["Connection"], "close") {
		w.keepAlive = false
	}
	left := c.body.left.Load()
	if c.expected {
		c.contMu.Lock()
		owed := c.expect
		c.expect = false // no 100 Continue after a final head
		c.contMu.Unlock()
		if owed && left != 0 {
			// 100 Continue was never sent: the client may or may not
			// send its body now, so the connection cannot carry
			// another request.
			w.keepAlive = false
		}
	}
	if left > maxPostHandlerRead {
		w.keepAlive = false // too much left to drop; see maxPostHandlerRead
	}
}

// writeFields writes the handler's header. Transfer-Encoding is the
// server's to set; Connection only when the connection stays open;
// trailers go at the end; names that are not tokens are dropped and CR
// or LF in values become spaces, as net/http does.
func (w *response) writeFields(final bool) {
	bw := w.o.bw
	for k, vv := range w.hdr {
		switch {
		case k == "Transfer-Encoding", k == "Connection" && (!w.keepAlive || !final):
			continue
		case strings.HasPrefix(k, http.TrailerPrefix) || !isTokenString(k) || w.isTrailer(k):
			continue
		case final && !w.bodyAllowed() && w.status == http.StatusNotModified && k == "Content-Type":
			continue // net/http's suppressedHeaders304
		}
		for _, v := range vv {
			bw.WriteString(k)
			bw.WriteString(": ")
			if strings.ContainsAny(v, "\r\n") {
				v = strings.TrimSpace(strings.NewReplacer("\r", " ", "\n", " ").Replace(v))
			}
			bw.WriteString(v)
			bw.WriteString("\r\n")
		}
	}
}

func (w *response) isTrailer(k string) bool {
	for _, t := range w.trailers {
		if t == k {
			return true
		}
	}
	return false
}

func hasPrefixKey(h http.Header) bool {
	for k := range h {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			return true
		}
	}
	return false
}

func isTokenString(s string) bool {
	for i := 0; i < len(s); i++ {
		if !tchar[s[i]] {
			return false
		}
	}
	return len(s) > 0
}

// writeTrailers writes the fields announced in "Trailer" and those set
// under http.TrailerPrefix, as net/http does (RFC 9112 §7.1.2).
func (w *response) writeTrailers() {
	bw := w.o.bw
	emit := func(k string, vv []string) {
		if !isTokenString(k) {
			return
		}
		for _, v := range vv {
			if strings.ContainsAny(v, "\r\n") {
				continue
			}
			bw.WriteString(k + ": " + v + "\r\n")
		}
	}
	for _, k := range w.trailers {
		emit(k, w.hdr[k])
	}
	for k, vv := range w.hdr {
		if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok {
			emit(http.CanonicalHeaderKey(name), vv)
		}
	}
}

// date returns the Date field value, formatted at most once a second per
// connection.
func (c *conn) date() []byte {
	now := c.now
	if now.IsZero() {
		now = time.Now()
	}
	if s := now.Unix(); s != c.dateSec || c.dateBuf == nil {
		c.dateSec = s
		c.dateBuf = now.UTC().AppendFormat(c.dateBuf[:0], http.TimeFormat)
	}
	return c.dateBuf
}
