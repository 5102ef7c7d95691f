package config

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Detect decides the language of an app for --lang auto: *.py or
// module:callable is python, *.ru ruby, *.psgi or *.pl perl, *.php or a
// directory holding index.php php, and an executable (not a script) go.
// Anything else is an error that names the flag to pass.
func Detect(path string) (Lang, error) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".py":
		return LangPython, nil
	case ".ru":
		return LangRuby, nil
	case ".psgi", ".pl":
		return LangPerl, nil
	case ".php":
		return LangPHP, nil
	}
	if isModuleCallable(path) {
		return LangPython, nil
	}
	fi, err := os.Stat(path)
	if err != nil {
		return "", undetected(path, err.Error())
	}
	if fi.IsDir() {
		if _, err := os.Stat(filepath.Join(path, "index.php")); err != nil {
			return "", undetected(path, "a directory without index.php")
		}
		return LangPHP, nil
	}
	if fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
		script, err := isScript(path)
		if err != nil {
			return "", undetected(path, err.Error())
		}
		if !script {
			return LangGo, nil
		}
		return "", undetected(path, "a script without a known extension")
	}
	return "", undetected(path, "not .py, .ru, .psgi, .pl, .php, module:callable or an executable")
}

func undetected(path, why string) error {
	return fmt.Errorf("cannot tell the language of %q (%s): pass --lang python, ruby, perl, php or go", path, why)
}

// isScript reports whether an executable file starts with "#!": such a file
// runs through an interpreter and so is not a Go binary.
func isScript(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, fmt.Errorf("open: %w", err)
	}
	defer f.Close()
	head := make([]byte, 2)
	if _, err := io.ReadFull(f, head); err != nil {
		return false, nil // shorter than a shebang: not a script
	}
	return bytes.Equal(head, []byte("#!")), nil
}

// isModuleCallable reports whether path is a Python "module:callable" such
// as "blog.wsgi:application": a colon with text on both sides and no "/"
// before it, so "./app:x" and "/srv/a:b/app.py" stay file paths.
func isModuleCallable(path string) bool {
	mod, callable, ok := strings.Cut(path, ":")
	return ok && mod != "" && callable != "" && !strings.Contains(mod, "/")
}

// defaultName derives an app name from its path: the module of a
// module:callable, else the base name without extension ("app.py" -> "app").
func defaultName(path string) string {
	if isModuleCallable(path) {
		mod, _, _ := strings.Cut(path, ":")
		return mod
	}
	base := filepath.Base(path)
	if name := strings.TrimSuffix(base, filepath.Ext(base)); name != "" {
		return name
	}
	return base
}
