// Package uwsgiimport turns a uWSGI config file into a gw.yaml, and says
// for every option what it became: a gw key, something gw does by default,
// or something gw does not do (and why).
//
// It has two halves. read.go and expand.go read uWSGI's config dialect as
// uWSGI itself does (core/ini.c, core/yaml.c, core/json.c, core/xmlconf.c,
// core/config.c, core/utils.c in unbit/uwsgi): the [uwsgi] section or the
// one asked for with FILE:section, repeated keys, magic variables (%d %n
// %c %p %s %e %x %k %0-%9 ...), the config logic (if-env, if-exists, for,
// endif ...), includes (ini = FILE, ini = :section), and the three late
// passes $(ENV), @(FILE) and %(placeholder). map.go maps the resulting
// option list to gw's config; emit.go writes it as YAML.
//
// The importer reads only the environment it is given (Input.Environ), so
// its output is the same wherever it runs with the same input.
package uwsgiimport
