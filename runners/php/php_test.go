package php

import (
	"os/exec"
	"slices"
	"testing"

	"github.com/gwhq/gw/internal/config"
)

// TestSpecClearsEnv: php-cgi gets none of gw's environment (secrets
// included) but the php.ini locations, as php-fpm's clear_env does; the
// app's env: and the PHP_FCGI_* settings are there.
func TestSpecClearsEnv(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip(err)
	}
	environ := []string{"AWS_SECRET_ACCESS_KEY=s3cret", "PATH=/usr/bin", "GW_HTTP=:80", "PHPRC=/etc/php/custom", "HOME=/root"}
	tests := []struct {
		name   string
		appEnv map[string]string
		want   []string
	}{
		{"defaults", nil,
			[]string{"PHPRC=/etc/php/custom", "PHP_FCGI_CHILDREN=0", "PHP_FCGI_MAX_REQUESTS=0"}},
		{"app env", map[string]string{"APP_KEY": "k", "PATH": "/opt/bin", "PHP_FCGI_MAX_REQUESTS": "100", "PHP_FCGI_CHILDREN": "8"},
			[]string{"APP_KEY=k", "PATH=/opt/bin", "PHPRC=/etc/php/custom", "PHP_FCGI_CHILDREN=0", "PHP_FCGI_MAX_REQUESTS=100"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec, err := Spec(config.App{Interpreter: sh, Env: tc.appEnv}, environ)
			if err != nil {
				t.Fatal(err)
			}
			got := slices.Sorted(slices.Values(spec.Env))
			if !slices.Equal(got, tc.want) {
				t.Fatalf("env = %q, want %q", got, tc.want)
			}
		})
	}
}
