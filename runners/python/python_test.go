package python

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gwhq/gw/internal/config"
	"github.com/gwhq/gw/internal/gwtest"
)

// TestSelftestGolden: the shim's codec agrees byte for byte with the Go
// codec's golden frames.
func TestSelftestGolden(t *testing.T) {
	gwtest.ShimSelftest(t, gwtest.RequirePython(t), "gw_wsgi.py")
}

func TestSpec(t *testing.T) {
	fake := t.TempDir()
	venv := filepath.Join(fake, "venv")
	os.MkdirAll(filepath.Join(venv, "bin"), 0o755)
	os.WriteFile(filepath.Join(venv, "bin", "python"), []byte("#!/bin/sh\n"), 0o755)
	interp := filepath.Join(fake, "mypython")
	os.WriteFile(interp, []byte("#!/bin/sh\n"), 0o755)
	base := []string{"PATH=/usr/bin:/bin", "PYTHONHOME=/somewhere", "HOME=/root"}
	tests := []struct {
		name      string
		app       config.App
		wantPath  string
		wantArgs  []string
		wantEnv   []string
		noEnv     []string
		wantError string
	}{
		{
			name:     "file app with callable",
			app:      config.App{Name: "blog", Path: "/srv/app.py", Callable: "wsgi", Interpreter: interp},
			wantPath: interp,
			wantArgs: []string{"-u", "/shim.py", "--app", "/srv/app.py", "--name", "blog", "--callable", "wsgi", "--interface", "auto", "--numproc", "1", "--wsgi-threads", "1"},
		},
		{
			name:     "module with dir",
			app:      config.App{Name: "dj", Path: "proj.wsgi:application", Dir: "/srv/proj", Workers: 3, Interpreter: interp},
			wantPath: interp,
			wantArgs: []string{"-u", "/shim.py", "--app", "proj.wsgi:application", "--name", "dj", "--dir", "/srv/proj", "--interface", "auto", "--numproc", "3", "--wsgi-threads", "1"},
		},
		{
			name:     "auto with threads set: every slot serves, WSGI or ASGI",
			app:      config.App{Name: "t", Path: "/a.py", Threads: 4, Interface: config.InterfaceAuto, Interpreter: interp},
			wantArgs: []string{"-u", "/shim.py", "--app", "/a.py", "--name", "t", "--interface", "auto", "--numproc", "1"},
		},
		{
			name:     "asgi",
			app:      config.App{Name: "f", Path: "main:app", Interface: config.InterfaceASGI, Interpreter: interp},
			wantArgs: []string{"-u", "/shim.py", "--app", "main:app", "--name", "f", "--interface", "asgi", "--numproc", "1"},
		},
		{
			name:     "wsgi",
			app:      config.App{Name: "w", Path: "/a.py", Interface: config.InterfaceWSGI, Interpreter: interp},
			wantArgs: []string{"-u", "/shim.py", "--app", "/a.py", "--name", "w", "--interface", "wsgi", "--numproc", "1"},
		},
		{
			name:     "venv",
			app:      config.App{Name: "v", Path: "/a.py", Venv: venv},
			wantPath: filepath.Join(venv, "bin", "python"),
			wantEnv:  []string{"VIRTUAL_ENV=" + venv, "PATH=" + filepath.Join(venv, "bin") + ":/usr/bin:/bin"},
			noEnv:    []string{"PYTHONHOME=/somewhere"},
		},
		{
			name:    "app env overrides",
			app:     config.App{Name: "e", Path: "/a.py", Interpreter: interp, Env: map[string]string{"DJANGO_SETTINGS_MODULE": "x.y", "HOME": "/app"}},
			wantEnv: []string{"DJANGO_SETTINGS_MODULE=x.y", "HOME=/app"},
			noEnv:   []string{"HOME=/root"},
		},
		{
			name:      "missing interpreter",
			app:       config.App{Name: "m", Path: "/a.py", Interpreter: filepath.Join(fake, "nope")},
			wantError: "set --interpreter",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec, err := Spec(tc.app, "/shim.py", base)
			if tc.wantError != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantError) {
					t.Fatalf("err = %v, want %q", err, tc.wantError)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantPath != "" && spec.Path != tc.wantPath {
				t.Errorf("path %s, want %s", spec.Path, tc.wantPath)
			}
			if tc.wantArgs != nil && strings.Join(spec.Args, " ") != strings.Join(tc.wantArgs, " ") {
				t.Errorf("args %q, want %q", spec.Args, tc.wantArgs)
			}
			env := strings.Join(spec.Env, "\n") + "\n"
			for _, e := range tc.wantEnv {
				if !strings.Contains(env, e+"\n") {
					t.Errorf("env lacks %s:\n%s", e, env)
				}
			}
			for _, e := range tc.noEnv {
				if strings.Contains(env, e+"\n") {
					t.Errorf("env has %s", e)
				}
			}
		})
	}
}

// TestSlots: threads wins when set; unset, WSGI gets one slot and ASGI
// (or auto, which may turn out ASGI) the ASGI default.
func TestSlots(t *testing.T) {
	for _, tc := range []struct {
		iface   config.Interface
		threads int
		want    int
	}{
		{config.InterfaceAuto, 0, ASGISlots},
		{config.InterfaceASGI, 0, ASGISlots},
		{config.InterfaceWSGI, 0, 1},
		{config.InterfaceWSGI, 8, 8},
		{config.InterfaceASGI, 3, 3},
		{config.InterfaceAuto, 2, 2},
	} {
		if got := Slots(config.App{Interface: tc.iface, Threads: tc.threads}); got != tc.want {
			t.Errorf("Slots(%s, threads %d) = %d, want %d", tc.iface, tc.threads, got, tc.want)
		}
	}
}

// TestShimHarness runs the shim's own conformance harness: PEP 3333 edge
// cases that are awkward to reach through HTTP (exc_info rules, aborted
// bodies, protocol errors, slot EOF mid-request).
func TestShimHarness(t *testing.T) {
	py := gwtest.RequirePython(t)
	gwtest.ShimHarness(t, "GW_PYTHON="+py)
}

// TestASGIScope: gw_asgi reads gw's heads by position and any other head
// through the general path, with the same scope (testdata/asgi_scope.py).
func TestASGIScope(t *testing.T) {
	py := gwtest.RequirePython(t)
	out, err := exec.Command(py, filepath.Join("testdata", "asgi_scope.py")).CombinedOutput()
	if err != nil {
		t.Fatalf("asgi_scope.py: %v\n%s", err, out)
	}
}
