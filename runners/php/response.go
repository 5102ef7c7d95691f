package php

import (
	"bytes"
	"errors"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"

	"github.com/gwhq/gw/internal/framing"
)

// maxHead bounds the CGI response head php-cgi may send.
const maxHead = 64 << 10

var errHeadTooBig = errors.New("php-cgi response head exceeds 64 KiB")

// cgiHead collects a CGI response head (RFC 3875 §6) from STDOUT data that
// may arrive in pieces, then sets it on an http.ResponseWriter.
type cgiHead struct {
	buf  []byte
	done bool
}

// feed adds STDOUT bytes; once the blank line is seen it returns the body
// bytes that followed it and done=true.
func (h *cgiHead) feed(b []byte) (body []byte, done bool, err error) {
	h.buf = append(h.buf, b...)
	end, sep := bytes.Index(h.buf, []byte("\r\n\r\n")), 4
	if i := bytes.Index(h.buf, []byte("\n\n")); i >= 0 && (end < 0 || i < end) {
		end, sep = i, 2
	}
	if end < 0 {
		if len(h.buf) > maxHead {
			return nil, false, errHeadTooBig
		}
		return nil, false, nil
	}
	h.done = true
	rest := h.buf[end+sep:]
	h.buf = h.buf[:end]
	return rest, true, nil
}

// apply parses the collected head onto w and returns the status: the Status
// header's code, else 302 when there is a Location, else 200.
func (h *cgiHead) apply(w http.ResponseWriter) int {
	status := 0
	hdr := w.Header()
	// One copy of the head (the values kept are substrings of it: h.buf
	// is reused for the next request), and no slice of lines.
	for rest := string(h.buf); rest != ""; {
		var line string
		line, rest, _ = strings.Cut(rest, "\n")
		line = strings.TrimRight(line, "\r")
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		name = textproto.CanonicalMIMEHeaderKey(strings.TrimSpace(name))
		value = strings.TrimSpace(value)
		switch name {
		case "Status":
			if code, err := strconv.Atoi(strings.SplitN(value, " ", 2)[0]); err == nil && code >= 100 && code <= 999 {
				status = code
			}
			continue
		case "Connection", "Keep-Alive", "Upgrade", "Trailer", "Te", "Proxy-Connection":
			continue // hop-by-hop: the front end owns the client connection
			// Transfer-Encoding stays, for framing.Head: a script that
			// chunked its own output is de-chunked there.
		}
		hdr[name] = append(hdr[name], value)
	}
	if status == 0 {
		status = http.StatusOK
		if hdr.Get("Location") != "" {
			status = http.StatusFound
		}
	}
	return status
}

// start applies the head to w and, if framing.Head accepts it (a final
// status, clean fields, a usable Content-Length), sends it; the Body is
// what the script's output then goes through.
func (h *cgiHead) start(w http.ResponseWriter, method string) (framing.Body, error) {
	status := h.apply(w)
	body, err := framing.Head(w, method, status, true)
	if err != nil {
		return body, err
	}
	w.WriteHeader(status)
	return body, nil
}

// end says how a response that reached END_REQUEST went: no head at all, a
// head framing refused, or a body that broke its head's framing (checked
// only while the client is there to get it) are app errors.
func end(h *cgiHead, body *framing.Body, client bool, refused error) error {
	switch {
	case !h.done:
		return &AppError{Msg: "php-cgi ended the request without a response head"}
	case refused != nil:
		return &AppError{Msg: refused.Error()}
	case client:
		if err := body.Close(); err != nil {
			return &AppError{Msg: err.Error()}
		}
	}
	return nil
}
