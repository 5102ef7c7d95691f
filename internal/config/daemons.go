package config

import (
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/gwhq/gw/internal/cron"
)

// Restart is when a daemon that exited is started again.
type Restart string

// The restart policies. Each restart waits out a backoff that grows while
// the daemon keeps exiting young.
const (
	RestartAlways    Restart = "always"     // whatever the exit
	RestartOnFailure Restart = "on-failure" // not after exit status 0
	RestartNever     Restart = "never"
)

// Process is what a daemon or a cron job runs, and how it is stopped.
type Process struct {
	Name string
	// Command is the program and its arguments, no shell: a bare program
	// name is looked up on gw's PATH; [sh, -c, "LINE"] runs a shell line.
	Command     []string
	Dir         string            // working directory ("" = gw's)
	Env         map[string]string // added to gw's environment, case preserved
	User, Group string            // what it runs as ("" = Config's, like an app's runners)
	StopSignal  syscall.Signal    // asks it to stop (default SIGTERM)
	StopTimeout time.Duration     // then SIGKILL after this (default 10s)
}

// Daemon is a process gw starts after the apps, keeps running, and stops
// after them (celery, sidekiq, a queue worker).
type Daemon struct {
	Process
	Restart Restart // default always
}

// CronJob is a command gw runs on a schedule, one run at a time.
type CronJob struct {
	Process
	Schedule     cron.Schedule
	ScheduleText string        // as written, for stats
	Timeout      time.Duration // a run past it is stopped; 0 = none
}

// processKeys are the keys of both lists; each adds its own.
var processKeys = []string{"name", "command", "dir", "env", "uid", "gid", "stop_signal", "stop_timeout"}

// daemonSchema is the shape of an entry of daemons: or, with cron, of cron:.
func daemonSchema(cron bool) *schema {
	s := &schema{fields: map[string]*schema{}}
	keys := slices.Concat(processKeys, []string{"restart"})
	if cron {
		keys = slices.Concat(processKeys, []string{"schedule", "timeout"})
	}
	for _, k := range keys {
		s.fields[k] = &schema{}
	}
	s.fields["env"] = &schema{free: true}
	s.fields["command"] = &schema{scalars: true,
		hint: `; write the program and its arguments as a list, like [celery, -A, proj, worker], or [sh, -c, "LINE"] for a shell line`}
	return s
}

// signals are the signals stop_signal may name.
var signals = map[string]syscall.Signal{
	"TERM": syscall.SIGTERM, "INT": syscall.SIGINT, "QUIT": syscall.SIGQUIT, "HUP": syscall.SIGHUP,
	"USR1": syscall.SIGUSR1, "USR2": syscall.SIGUSR2, "KILL": syscall.SIGKILL, "WINCH": syscall.SIGWINCH,
}

// daemons builds the entries of daemons:.
func (l *loader) daemons() []Daemon {
	var out []Daemon
	names := map[string]*yaml.Node{}
	for _, e := range l.entries("daemons") {
		d := Daemon{Process: l.process(e, names), Restart: RestartAlways}
		if v := entryValue(e, "restart"); v.text != "" {
			switch r := Restart(strings.ToLower(v.text)); r {
			case RestartAlways, RestartOnFailure, RestartNever:
				d.Restart = r
			default:
				l.c.of(v, "restart must be always, on-failure or never, got %q", v.text)
			}
		}
		out = append(out, d)
	}
	return out
}

// cronJobs builds the entries of cron:.
func (l *loader) cronJobs() []CronJob {
	var out []CronJob
	names := map[string]*yaml.Node{}
	for _, e := range l.entries("cron") {
		j := CronJob{Process: l.process(e, names)}
		if v := entryValue(e, "schedule"); v.text == "" {
			l.c.at(e.node, e.path, "missing schedule: five crontab fields like \"*/15 * * * *\", or @hourly, @daily, @every 5m")
		} else if s, err := cron.Parse(v.text); err != nil {
			l.c.of(v, "%v", err)
		} else {
			j.Schedule, j.ScheduleText = s, v.text
		}
		if v := entryValue(e, "timeout"); v.text != "" {
			j.Timeout = l.durationOff(v)
		}
		out = append(out, j)
	}
	return out
}

func (l *loader) entries(list string) []entry {
	if l.fd == nil {
		return nil
	}
	return l.fd.entries[list]
}

// entryValue is key of entry e, as a value for problems.
func entryValue(e entry, key string) value {
	v := value{path: e.path + "." + key}
	if _, n := field(e.node, key); n != nil && n.Kind == yaml.ScalarNode {
		v.text, v.node, v.set = n.Value, n, true
	}
	return v
}

// process reads the keys daemons and cron jobs share. names holds the
// names seen so far in the list: they must be unique (logs, stats).
func (l *loader) process(e entry, names map[string]*yaml.Node) Process {
	p := Process{Env: mapOf(e.node, "env"), StopSignal: syscall.SIGTERM, StopTimeout: 10 * time.Second}
	nv := entryValue(e, "name")
	switch p.Name = nv.text; {
	case p.Name == "":
		l.c.at(e.node, e.path, "missing name: it tags the log lines and the stats")
	case names[p.Name] != nil:
		l.c.of(nv, "name %q is already used on line %d; names must be unique", p.Name, names[p.Name].Line)
	default:
		names[p.Name] = nv.node
	}
	if _, n := field(e.node, "command"); n == nil {
		l.c.at(e.node, e.path, "missing command: the program and its arguments, as a list")
	} else if n.Kind == yaml.SequenceNode {
		for _, it := range n.Content {
			p.Command = append(p.Command, deref(it).Value)
		}
		if len(p.Command) == 0 || p.Command[0] == "" {
			l.c.at(n, e.path+".command", "empty command: want the program and its arguments")
		} else if filepath.IsAbs(p.Command[0]) {
			l.mustExist(value{text: p.Command[0], node: n, path: e.path + ".command", set: true}, p.Command[0], false)
		}
	}
	if dv := entryValue(e, "dir"); dv.text != "" {
		p.Dir = l.path(dv)
		l.mustExist(dv, p.Dir, true)
	}
	p.User, p.Group = entryValue(e, "uid").text, entryValue(e, "gid").text
	if v := entryValue(e, "stop_signal"); v.text != "" {
		name := strings.TrimPrefix(strings.ToUpper(v.text), "SIG")
		if sig, ok := signals[name]; ok {
			p.StopSignal = sig
		} else {
			l.c.of(v, "stop_signal must be one of TERM, INT, QUIT, HUP, USR1, USR2, WINCH, KILL, got %q", v.text)
		}
	}
	if v := entryValue(e, "stop_timeout"); v.text != "" {
		p.StopTimeout = l.duration(v)
	}
	return p
}
