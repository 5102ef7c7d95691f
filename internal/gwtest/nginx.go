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
	conf := fmt.Sprintf(`http {
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
	return runNginx(t, bin, dir, addr, "", conf)
}

// StartNginxStream runs nginx's TCP proxy (the stream module) in front of
// upstream ("host:port"), sending the PROXY protocol header (v1, the one
// nginx sends) on each connection, and returns its base URL. It skips
// when nginx or its stream module is missing, unless GW_REQUIRE_RUNTIMES=1
// (Debian: apt-get install libnginx-mod-stream).
func StartNginxStream(t testing.TB, upstream string) string {
	t.Helper()
	bin := RequireInterpreter(t, "nginx", "/usr/sbin/nginx")
	mod := "/usr/lib/nginx/modules/ngx_stream_module.so"
	if _, err := os.Stat(mod); err != nil {
		if os.Getenv("GW_REQUIRE_RUNTIMES") == "1" {
			t.Fatalf("nginx stream module missing (%v)", err)
		}
		t.Skipf("nginx stream module missing (%v): apt-get install libnginx-mod-stream", err)
	}
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	conf := fmt.Sprintf("stream {\n\tserver { listen %s; proxy_pass %s; proxy_protocol on; }\n}\n", addr, upstream)
	return runNginx(t, bin, dir, addr, "load_module "+mod+";\n", conf)
}

// runNginx writes main and conf (the http or stream block) and runs nginx
// until the test ends.
func runNginx(t testing.TB, bin, dir, addr, main, conf string) string {
	t.Helper()
	conf = main + fmt.Sprintf("daemon off; master_process off; error_log stderr info; pid %s/nginx.pid;\nevents {}\n", dir) + conf
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
