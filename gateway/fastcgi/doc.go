// Package fastcgi serves an http.Handler to web servers speaking FastCGI
// 1.0 in the RESPONDER role, as nginx's fastcgi_pass does (protocols.md
// §2). The record codec is internal/fcgi; the CGI params become an
// *http.Request through gateway/cgireq, exactly as uwsgi's vars do.
//
// One request per connection at a time (FCGI_MPXS_CONNS=0): a second
// BEGIN_REQUEST while one is in flight gets CANT_MPX_CONN. FCGI_KEEP_CONN
// keeps the connection for the next request.
//
// Known limit: while a handler leaves its body unread, the read loop waits
// to hand over the next STDIN record (that is the backpressure), so an
// ABORT_REQUEST or a closed connection behind it is noticed only once the
// handler reads on or returns.
package fastcgi
