package gwtest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// StartNginx runs the real nginx in the foreground on a loopback port, with
// httpExtra inside http {} and locations inside server {}, and returns its
// base URL. It skips when nginx is missing, unless GW_REQUIRE_RUNTIMES=1.
// The nginx is killed by PID at cleanup.
func StartNginx(t testing.TB, httpExtra, locations string) string {
	t.Helper()
	bin := RequireInterpreter(t, "nginx", "/usr/sbin/nginx")
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	conf := fmt.Sprintf(`daemon off; master_process off; error_log stderr info; pid %[1]s/nginx.pid;
events {}
http {
	access_log off;
	client_body_temp_path %[1]s/body; proxy_temp_path %[1]s/proxy; fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi; scgi_temp_path %[1]s/scgi;
	%[4]s
	server {
		listen %[2]s;
		client_max_body_size 64m;
		%[3]s
	}
}
`, dir, addr, locations, httpExtra)
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	stderr := &syncBuffer{}
	cmd := exec.Command(bin, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"), "-e", "stderr")
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill() // by PID: only the nginx this test started
		cmd.Wait()
		if t.Failed() {
			t.Logf("nginx stderr:\n%s", stderr.String())
		}
	})
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return "http://" + addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx did not listen on %s:\n%s", addr, stderr.String())
		}
	}
}
