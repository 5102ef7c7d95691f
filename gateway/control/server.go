package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"syscall"
	"time"
)

// Server answers the control socket for a Controller. It has the shape of
// http.Server: Serve(ln), Shutdown(ctx).
type Server struct {
	ctl     Controller
	log     *slog.Logger
	version string
	owner   int // the uid besides root that may use the socket
	srv     *http.Server
}

// New makes a server for ctl. version is gw's, for /v1/ping. Only root and
// owner may use it: the socket's mode 0600 says so already (owner is the
// uid that bound it), and the peer's credentials (SO_PEERCRED) are checked
// again per connection, so a socket whose mode was changed, or a
// connection made in the moment between bind and chmod, grants nothing.
// gw passes the uid it started as, not the one it may have dropped to:
// that one is the apps' user, and app code must not drive gw.
func New(ctl Controller, owner int, version string, log *slog.Logger) *Server {
	s := &Server{ctl: ctl, log: log, version: version, owner: owner}
	s.srv = &http.Server{
		Handler:           s.handler(),
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ConnContext:       withPeer,
	}
	return s
}

// Serve answers connections on ln (a unix listener) until Shutdown.
func (s *Server) Serve(ln net.Listener) error { return s.srv.Serve(ln) }

// Shutdown stops accepting and waits for the requests under way until ctx
// ends; a reload under way is not cut short before that.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if err != nil {
		s.srv.Close()
	}
	return err
}

type peerKey struct{}

// peer is who is on the other end of a connection.
type peer struct {
	uid int
	err error // the credentials could not be read: refused
}

// withPeer reads the connecting process's credentials once per connection.
func withPeer(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, peerKey{}, peerOf(c))
}

func peerOf(c net.Conn) peer {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return peer{err: fmt.Errorf("not a unix socket connection (%T)", c)}
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return peer{err: err}
	}
	var cred *syscall.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return peer{err: err}
	}
	if cerr != nil {
		return peer{err: fmt.Errorf("SO_PEERCRED: %w", cerr)}
	}
	return peer{uid: int(cred.Uid)}
}

// allowed says whether a peer with uid may use a socket of owner's gw.
func allowed(uid, owner int) bool { return uid == 0 || uid == owner }

func (s *Server) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/ping", func(w http.ResponseWriter, _ *http.Request) {
		answer(w, http.StatusOK, Ping{GW: s.version, PID: os.Getpid()})
	})
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, _ *http.Request) {
		answer(w, http.StatusOK, s.ctl.Status())
	})
	mux.HandleFunc("GET /v1/apps/{name}", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		for _, a := range s.ctl.Status().Apps {
			if a.Name == name {
				answer(w, http.StatusOK, a)
				return
			}
		}
		answer(w, http.StatusNotFound, Error{Error: fmt.Sprintf("%v: %q", ErrUnknownApp, name)})
	})
	mux.HandleFunc("POST /v1/reload", func(w http.ResponseWriter, r *http.Request) {
		s.act(w, r, "reload", "", "", s.ctl.Reload(context.WithoutCancel(r.Context())))
	})
	mux.HandleFunc("POST /v1/apps/{name}/{action}", s.appAction)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		answer(w, http.StatusNotFound, Error{Error: fmt.Sprintf("no %s %s on the control socket", r.Method, r.URL.Path)})
	})
	return s.guard(mux)
}

// guard refuses peers other than root and gw's own user, and marks every
// answer as gw's.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(Header, Version)
		p, ok := r.Context().Value(peerKey{}).(peer)
		switch {
		case !ok || p.err != nil:
			s.log.Warn("control: peer credentials unreadable; refused", "err", p.err)
			answer(w, http.StatusForbidden, Error{Error: "control socket: peer credentials unreadable"})
			return
		case !allowed(p.uid, s.owner):
			s.log.Warn("control: refused a peer that is neither root nor gw's user", "uid", p.uid, "gw_uid", s.owner)
			answer(w, http.StatusForbidden, Error{Error: fmt.Sprintf("control socket: uid %d may not use it (root and uid %d only)", p.uid, s.owner)})
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) appAction(w http.ResponseWriter, r *http.Request) {
	name, action := r.PathValue("name"), r.PathValue("action")
	// A client that gives up does not cut an action short: a half-booted
	// pool would only be thrown away.
	ctx := context.WithoutCancel(r.Context())
	var err error
	detail := ""
	switch action {
	case "reload":
		err = s.ctl.ReloadApp(ctx, name)
	case "restart":
		err = s.ctl.RestartApp(ctx, name)
	case "drain":
		err = s.ctl.DrainApp(ctx, name)
	case "scale":
		var body Scale
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<10))
		dec.DisallowUnknownFields()
		if derr := dec.Decode(&body); derr != nil || body.Workers == nil || *body.Workers < 0 {
			answer(w, http.StatusBadRequest, Error{Error: `scale: want a body {"workers": N} with N >= 0`})
			return
		}
		err = s.ctl.ScaleApp(ctx, name, *body.Workers)
		detail = fmt.Sprintf(" to %d", *body.Workers)
	default:
		answer(w, http.StatusNotFound, Error{Error: fmt.Sprintf("no app action %q (reload, restart, drain, scale)", action)})
		return
	}
	s.act(w, r, action, name, detail, err)
}

// act answers the outcome of an action and logs it: each one changes what
// gw serves, so the log says who asked.
func (s *Server) act(w http.ResponseWriter, r *http.Request, action, app, detail string, err error) {
	what := action
	if app != "" {
		what = fmt.Sprintf("%s %s%s", action, app, detail)
	}
	uid := r.Context().Value(peerKey{}).(peer).uid
	if err != nil {
		s.log.Error("control: "+action+" failed", "app", app, "uid", uid, "err", err)
		answer(w, status(err), Error{Error: what + ": " + err.Error()})
		return
	}
	s.log.Info("control: "+action+" done", "app", app, "uid", uid)
	answer(w, http.StatusOK, Result{OK: true, Message: what + ": done"})
}

// status maps a Controller error to the answer's status: the one place
// this API does so.
func status(err error) int {
	var c *Conflict
	switch {
	case errors.Is(err, ErrUnknownApp):
		return http.StatusNotFound
	case errors.As(err, &c):
		return http.StatusConflict
	}
	return http.StatusInternalServerError
}

func answer(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
