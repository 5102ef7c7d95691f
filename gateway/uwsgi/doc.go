// Package uwsgi serves an http.Handler to front ends speaking the uwsgi
// protocol, as nginx's uwsgi_pass does (protocols.md §1).
//
// codec.go is the pure packet codec; server.go is the connection loop.
// Unlike uWSGI 2.0, gw gives request variables no power over what runs:
// management modifiers are refused and UWSGI_* variables are dropped
// (trap 1).
package uwsgi
