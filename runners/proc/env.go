package proc

import (
	"fmt"
	"os/exec"
	"strings"
)

// GetEnv returns k's value in env ("" if absent).
func GetEnv(env []string, k string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, k+"="); ok {
			return v
		}
	}
	return ""
}

// SetEnv returns env with k set to v (replacing any earlier value).
func SetEnv(env []string, k, v string) []string {
	return append(UnsetEnv(env, k), k+"="+v)
}

// UnsetEnv returns a copy of env without k.
func UnsetEnv(env []string, k string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, k+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// WithEnv returns environ plus the app's own variables, which win.
func WithEnv(environ []string, appEnv map[string]string) []string {
	env := append([]string(nil), environ...)
	for k, v := range appEnv {
		env = SetEnv(env, k, v)
	}
	return env
}

// Interpreter resolves an app's interpreter: configured, else def, looked
// up in PATH. lang names it in the error.
func Interpreter(configured, def, lang string) (string, error) {
	if configured == "" {
		configured = def
	}
	path, err := exec.LookPath(configured)
	if err != nil {
		return "", fmt.Errorf("%s interpreter %q: %w (set --interpreter)", lang, configured, err)
	}
	return path, nil
}
