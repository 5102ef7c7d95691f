// Package e2e holds gw's end-to-end tests: the real gw binary, real
// interpreters and real sockets on loopback.
package e2e
