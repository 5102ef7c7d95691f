package gateway

import (
	"bytes"
	"net/http"
	"strings"

	"github.com/gwhq/gw/internal/cgi"
)

// route picks r's app by the path the request resolves to, and returns r
// carrying that path in r.URL.Path, so the static files, PHP's document
// root, the runner's PATH_INFO and a Go plugin all see the path the app
// was chosen by. r.RequestURI stays what the client sent.
//
// Over HTTP the path is r.URL.Path, percent-decoded by the URL parser (an
// encoded "%2e%2e" or "%2f" too, as nginx decodes them), cleaned as nginx
// cleans $uri with its defaults: dot segments removed (RFC 3986 §5.2.4)
// and repeated slashes merged (merge_slashes on). Agreeing with nginx is
// the point: behind `location /admin { deny all; }` + proxy_pass, nginx
// forwards "/admin/../x" and "/admin//.." raw, having judged them as "/x"
// and "/", so gw must not route them to /admin. An encoded slash is a
// slash for the same reason: "/admin/..%2fx" is "/x" to nginx.
//
// Over uwsgi and FastCGI cgireq already made r.URL.Path what the front
// server resolved (SCRIPT_NAME+PATH_INFO, as uWSGI routes); gw keeps its
// slashes as they are, since merging what nginx kept (merge_slashes off)
// would disagree with nginx's locations, and only removes dot segments,
// which nginx never leaves.
func (t *table) route(r *http.Request) (*http.Request, *route) {
	p := r.URL.Path
	if strings.Contains(p, "/.") || strings.Contains(p, "//") { // the context lookup only when it matters
		p = cleanPath(p, cgi.Params(r.Context()) == nil)
	}
	if p == "" && r.Method != http.MethodConnect {
		p = "/" // "http://host?q": an empty path is "/" (RFC 9110 §4.2.3)
	}
	if p != r.URL.Path {
		u := *r.URL
		u.Path, u.RawPath = p, ""
		r = r.WithContext(r.Context()) // a shallow copy: handlers must not modify r
		r.URL = &u
	}
	return r, t.match(r.Host, p)
}

// cleanPath removes p's dot segments (RFC 3986 §5.2.4; ".." above the root
// stays at the root) and, with merge, collapses repeated slashes. A path
// that ended in a dot segment keeps a trailing slash ("/a/b/.." is "/a/"),
// as in the RFC and nginx. p is returned as is when there is nothing to
// do, and so is a path that does not start with "/" ("*").
func cleanPath(p string, merge bool) string {
	if p == "" || p[0] != '/' || !strings.Contains(p, "/.") && !(merge && strings.Contains(p, "//")) {
		return p
	}
	b := make([]byte, 0, len(p))
	for i := 0; i < len(p); {
		j := strings.IndexByte(p[i+1:], '/')
		last := j < 0
		if last {
			j = len(p)
		} else {
			j += i + 1
		}
		switch seg := p[i+1 : j]; {
		case seg == ".", seg == "" && merge:
			if last {
				b = append(b, '/')
			}
		case seg == "..":
			if k := bytes.LastIndexByte(b, '/'); k >= 0 {
				b = b[:k]
			}
			if last {
				b = append(b, '/')
			}
		default:
			b = append(b, '/')
			b = append(b, seg...)
		}
		i = j
	}
	if len(b) == 0 {
		return "/"
	}
	return string(b)
}
