// Package deploy holds gw's deployment samples; its test keeps them true to
// gw's flags, so a sample that would kill pods mid-drain or probe the wrong
// port fails CI rather than a rollout.
package deploy

import (
	"bufio"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// The parts of the manifests the checks read.
type (
	deployment struct {
		Kind     string
		Metadata struct{ Name string }
		Spec     struct {
			Selector struct {
				MatchLabels map[string]string `yaml:"matchLabels"`
			}
			Template struct {
				Metadata struct{ Labels map[string]string }
				Spec     struct {
					Grace      int         `yaml:"terminationGracePeriodSeconds"`
					Containers []container `yaml:"containers"`
				}
			}
		}
	}
	container struct {
		Name    string
		Command []string
		Args    []string
		Ports   []struct {
			Name          string
			ContainerPort int `yaml:"containerPort"`
		}
		Liveness  *probe `yaml:"livenessProbe"`
		Readiness *probe `yaml:"readinessProbe"`
		Resources struct {
			Requests map[string]string
			Limits   map[string]string
		}
	}
	probe struct {
		HTTPGet struct {
			Path string
			Port yaml.Node // a number or a port name
		} `yaml:"httpGet"`
	}
	service struct {
		Spec struct {
			Selector map[string]string
			Ports    []struct {
				Name       string
				TargetPort yaml.Node `yaml:"targetPort"`
			}
		}
	}
	hpa struct {
		APIVersion string `yaml:"apiVersion"`
		Spec       struct {
			ScaleTargetRef struct {
				Kind, Name string
			} `yaml:"scaleTargetRef"`
			Metrics []struct {
				Type string
				Pods struct {
					Metric struct{ Name string }
				}
			}
		}
	}
)

func load(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// flag returns the value of --name in args (as --name=V or --name V), or
// def when it is absent.
func flag(args []string, name, def string) string {
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v
		}
		if a == "--"+name && i+1 < len(args) {
			return args[i+1]
		}
	}
	return def
}

// port gives the port of a flag's ADDR (":9191", "0.0.0.0:9191").
func port(t *testing.T, addr string) int {
	t.Helper()
	i := strings.LastIndexByte(addr, ':')
	n, err := strconv.Atoi(addr[i+1:])
	if i < 0 || err != nil {
		t.Fatalf("address %q has no port", addr)
	}
	return n
}

// drainBound is how long gw may take after SIGTERM before it exits on its
// own: --shutdown-delay + --shutdown-timeout (their defaults as gw's).
func drainBound(t *testing.T, args []string) time.Duration {
	t.Helper()
	var total time.Duration
	for _, f := range []struct{ name, def string }{{"shutdown-delay", "0s"}, {"shutdown-timeout", "30s"}} {
		d, err := time.ParseDuration(flag(args, f.name, f.def))
		if err != nil {
			t.Fatalf("--%s: %v", f.name, err)
		}
		total += d
	}
	return total
}

func gwContainer(t *testing.T, d *deployment) container {
	t.Helper()
	for _, c := range d.Spec.Template.Spec.Containers {
		if len(c.Command) > 1 && c.Command[0] == "gw" && c.Command[1] == "run" {
			return c
		}
	}
	t.Fatal("no container runs `gw run`")
	return container{}
}

// resolve turns a probe's or Service's port (number or name) into a number.
func resolve(t *testing.T, c container, n yaml.Node) int {
	t.Helper()
	if p, err := strconv.Atoi(n.Value); err == nil {
		return p
	}
	for _, p := range c.Ports {
		if p.Name == n.Value {
			return p.ContainerPort
		}
	}
	t.Fatalf("port %q is not a container port", n.Value)
	return 0
}

func TestDeployment(t *testing.T) {
	var d deployment
	load(t, "k8s/deployment.yaml", &d)
	c := gwContainer(t, &d)
	args := slices.Concat(c.Command[2:], c.Args)
	statsPort := port(t, flag(args, "stats", ""))
	for _, p := range []struct {
		kind string
		pr   *probe
		path string
	}{{"liveness", c.Liveness, "/healthz"}, {"readiness", c.Readiness, "/readyz"}} {
		if p.pr == nil {
			t.Errorf("no %s probe", p.kind)
			continue
		}
		if p.pr.HTTPGet.Path != p.path || resolve(t, c, p.pr.HTTPGet.Port) != statsPort {
			t.Errorf("%s probe GET %s on port %s; want %s on --stats' port %d",
				p.kind, p.pr.HTTPGet.Path, p.pr.HTTPGet.Port.Value, p.path, statsPort)
		}
	}
	grace := time.Duration(d.Spec.Template.Spec.Grace) * time.Second
	if bound := drainBound(t, args); grace <= bound {
		t.Errorf("terminationGracePeriodSeconds %v is not above shutdown-delay + shutdown-timeout %v: "+
			"the kubelet would SIGKILL gw mid-drain", grace, bound)
	}
	for _, m := range []map[string]string{c.Resources.Requests, c.Resources.Limits} {
		if m["cpu"] == "" || m["memory"] == "" {
			t.Errorf("resources %v: set cpu and memory requests and limits", c.Resources)
		}
	}
	for k, v := range d.Spec.Selector.MatchLabels {
		if d.Spec.Template.Metadata.Labels[k] != v {
			t.Errorf("selector %s=%s does not select the pod template", k, v)
		}
	}
}

func TestService(t *testing.T) {
	var d deployment
	var s service
	load(t, "k8s/deployment.yaml", &d)
	load(t, "k8s/service.yaml", &s)
	c := gwContainer(t, &d)
	for k, v := range s.Spec.Selector {
		if d.Spec.Template.Metadata.Labels[k] != v {
			t.Errorf("service selector %s=%s matches no pod of the Deployment", k, v)
		}
	}
	httpPort := port(t, flag(slices.Concat(c.Command[2:], c.Args), "http", ""))
	if len(s.Spec.Ports) == 0 || resolve(t, c, s.Spec.Ports[0].TargetPort) != httpPort {
		t.Errorf("the service's first port does not lead to --http's port %d", httpPort)
	}
}

func TestHPA(t *testing.T) {
	var d deployment
	var h hpa
	load(t, "k8s/deployment.yaml", &d)
	load(t, "k8s/hpa.yaml", &h)
	ref := h.Spec.ScaleTargetRef
	if h.APIVersion != "autoscaling/v2" || ref.Kind != "Deployment" || ref.Name != d.Metadata.Name {
		t.Errorf("HPA %s targets %s %q, want autoscaling/v2 on Deployment %q", h.APIVersion, ref.Kind, ref.Name, d.Metadata.Name)
	}
	found := false
	for _, m := range h.Spec.Metrics {
		name := m.Pods.Metric.Name
		found = found || m.Type == "Pods" && (name == "gw_busy_ratio" || name == "gw_queue_depth")
	}
	if !found {
		t.Errorf("HPA metrics %+v: want a Pods metric gw_busy_ratio or gw_queue_depth", h.Spec.Metrics)
	}
}

// unit reads the Key=Value lines of a systemd unit.
func unit(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			out[k] = v
		}
	}
	return out
}

func TestSystemdUnits(t *testing.T) {
	svc := unit(t, "systemd/gw.service")
	if svc["Type"] != "notify" || svc["KillMode"] != "mixed" {
		t.Errorf("Type=%s KillMode=%s, want notify and mixed", svc["Type"], svc["KillMode"])
	}
	stop, err := strconv.Atoi(svc["TimeoutStopSec"])
	if err != nil {
		t.Fatalf("TimeoutStopSec=%q: want seconds", svc["TimeoutStopSec"])
	}
	// gw gives its runners up to 10s to exit after the drain.
	if bound := drainBound(t, strings.Fields(svc["ExecStart"])) + 10*time.Second; time.Duration(stop)*time.Second <= bound {
		t.Errorf("TimeoutStopSec=%d is not above gw's own stop bound %v", stop, bound)
	}
	sock := unit(t, "systemd/gw.socket")
	if sock["FileDescriptorName"] != "http" || sock["Service"] != "gw.service" {
		t.Errorf("gw.socket: FileDescriptorName=%s Service=%s", sock["FileDescriptorName"], sock["Service"])
	}
}

func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	for _, want := range []string{"FROM golang:1.26 AS build", "CGO_ENABLED=0", "FROM debian:12-slim", "python3",
		`ENTRYPOINT ["gw", "run", "--http", ":8080", "--stats", ":9191"]`} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	user := ""
	for _, line := range strings.Split(df, "\n") {
		if v, ok := strings.CutPrefix(line, "USER "); ok {
			user = strings.TrimSpace(v)
		}
	}
	if user == "" || user == "root" || strings.HasPrefix(user, "0") {
		t.Errorf("final USER %q: the image must not run as root", user)
	}
}
