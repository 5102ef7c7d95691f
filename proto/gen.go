// Package proto holds gw's protocol definitions. The generated Go code lives
// in the bridgepb subpackage, so it never collides with protobuf's own
// "proto" package name.
package proto

//go:generate protoc --go_out=. --go_opt=module=github.com/gwhq/gw/proto bridge.proto
