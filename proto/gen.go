// Package proto holds gw's protocol definitions. The generated Go code lives
// in the bridgepb and pluginpb subpackages, so it never collides with
// protobuf's own "proto" package name. plugin.proto also needs
// protoc-gen-go-grpc on PATH.
package proto

//go:generate protoc --go_out=. --go_opt=module=github.com/gwhq/gw/proto bridge.proto
//go:generate protoc --go_out=. --go_opt=module=github.com/gwhq/gw/proto --go-grpc_out=. --go-grpc_opt=module=github.com/gwhq/gw/proto plugin.proto
