// Package wire is what both ends of gw's Go plugin protocol agree on: the
// go-plugin handshake, the name the plugin is dispensed under, the body
// chunk size, and the conversion of HTTP header maps to and from
// proto/plugin.proto's repeated name/value pairs.
package wire

import (
	"net/http"
	"net/textproto"

	"github.com/hashicorp/go-plugin"

	"github.com/gwhq/gw/proto/pluginpb"
)

// ProtocolVersion is the newest application protocol version in the
// go-plugin handshake. Bump it on any change to proto/plugin.proto: a
// plugin built against a version the host does not speak then fails its
// handshake with go-plugin's "incompatible API version" instead of
// misreading messages. Both sides offer every version in Versions and
// go-plugin picks the highest they share, so a plugin built against an
// older SDK keeps working.
//
//	1: requests and responses (plugin.proto without raw connections)
//	2: raw connections: raw_connection, hijacked, GW_GO_PLUGIN_RAW_FD
const ProtocolVersion = 2

// RawVersion is the first version with raw connections (http.Hijacker).
const RawVersion = 2

// Versions are the protocol versions this build speaks, oldest first.
var Versions = []int{1, 2}

// RawFDEnv names the plugin's inherited SOCK_SEQPACKET socket that carries,
// for each upgrade request, its connection id (u32le) and the plugin's end
// of the connection (SCM_RIGHTS) ahead of the request (plugin.proto).
const RawFDEnv = "GW_GO_PLUGIN_RAW_FD"

// The magic cookie only keeps a plugin from being run by hand by mistake
// (it then prints go-plugin's "This binary is a plugin" and exits); it is not
// a security measure. Launcher.Checksum is.
const (
	CookieKey   = "GW_GO_PLUGIN"
	CookieValue = "f3d2c1b0-http-handler"
)

// OwnerFDEnv names the plugin's inherited descriptor whose other end gw
// holds: at its EOF gw is gone, and the plugin exits (see sdk.Serve).
const OwnerFDEnv = "GW_GO_PLUGIN_OWNER_FD"

// SlotsEnv tells the plugin how many requests gw sends it at once
// (Launcher.Slots): it runs as many gRPC stream workers.
const SlotsEnv = "GW_GO_PLUGIN_SLOTS"

// PluginName is the key of the HTTP handler in both sides' plugin sets.
const PluginName = "http"

// ChunkSize is the largest body chunk either side puts in one message: far
// below the 4 MiB a default gRPC server accepts, and small enough that a
// streamed body moves in steps a client can see.
const ChunkSize = 64 << 10

// VersionedPlugins offers set under every version in Versions.
func VersionedPlugins(set plugin.PluginSet) map[int]plugin.PluginSet {
	m := make(map[int]plugin.PluginSet, len(Versions))
	for _, v := range Versions {
		m[v] = set
	}
	return m
}

// Handshake is the go-plugin handshake both sides use.
func Handshake() plugin.HandshakeConfig {
	return plugin.HandshakeConfig{
		ProtocolVersion:  ProtocolVersion,
		MagicCookieKey:   CookieKey,
		MagicCookieValue: CookieValue,
	}
}

// AppendHeaders appends h's fields to dst as name/value pairs, one per value
// so duplicates survive. Go's header map has already lost the order between
// different names; the order of one name's values is kept. Keys for which
// skip returns true are left out (skip may be nil).
func AppendHeaders(dst []*pluginpb.Header, h http.Header, skip func(string) bool) []*pluginpb.Header {
	for k, vv := range h {
		if skip != nil && skip(k) {
			continue
		}
		name := []byte(k)
		for _, v := range vv {
			dst = append(dst, &pluginpb.Header{Name: name, Value: []byte(v)})
		}
	}
	return dst
}

// AddHeaders adds pairs to h under their canonical names, as net/http's own
// parser would store them.
func AddHeaders(h http.Header, pairs []*pluginpb.Header) {
	for _, p := range pairs {
		k := textproto.CanonicalMIMEHeaderKey(string(p.Name))
		h[k] = append(h[k], string(p.Value))
	}
}
