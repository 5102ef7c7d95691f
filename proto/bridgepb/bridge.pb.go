// The bridge protocol: how the gw gateway talks to a language runner.
//
// Why the schema is this flat: every runner shim (Python, Ruby, Perl) carries
// its own ~100-line protobuf codec with no library behind it. So the schema
// uses only varints (uint32/uint64/bool), strings, bytes and repeated bytes:
// no maps, no oneofs (the frame type byte already says which message
// follows), no nested messages, no floats, no signed varints. Keep it so.
//
// Framing. Every frame on a bridge socket is an 8-byte header and a payload:
//
//   offset 0  u8     type       FrameType
//   offset 1  u8     flags      0 (reserved; receivers ignore it)
//   offset 2  u16le  reserved   0
//   offset 4  u32le  length     payload bytes that follow (at most 16 MiB)
//
// The payload of REQUEST_BODY and RESPONSE_BODY frames is raw body bytes, not
// a protobuf message, so body data never passes through a marshaller. Every
// other payload is the protobuf encoding of the message the type names; an
// empty payload is a message with every field at its default.
//
// Streams. A runner gets, as inherited file descriptors, one control socket
// (a SOCK_STREAM socketpair end) and one slot per thread. gw makes each slot
// two pipes, one per direction (--slot-fds R:W): a pipe has a wait queue per
// direction, so neither side's read wakes the other side idle reading its own
// stream, as reading a socketpair does. The shims also take a socket for a
// slot (--slot-fds N: one fd for both directions). A slot carries one request
// at a time:
//
//   gateway -> runner: REQUEST_HEAD, REQUEST_BODY*, REQUEST_END
//   runner -> gateway: RESPONSE_HEAD, RESPONSE_BODY*, RESPONSE_END
//
// The two directions are independent streams: the runner may answer before it
// has read the body. The gateway always ends the request stream with
// REQUEST_END (aborted=true when it stops early), and the runner always reads
// up to REQUEST_END, discarding what the app left unread, before it reads the
// next REQUEST_HEAD: an unread body never corrupts the next request.
//
// The control socket carries READY or LOAD_ERROR once (runner -> gateway),
// then PING/PONG. It is also the owner channel: the runner exits as soon as
// it reads EOF on it, so runners never outlive the gateway, even when the
// gateway is SIGKILLed.
//
// WebSockets (docs/design/websocket.md). A runner whose READY says
// websocket=true got one more socket, the session channel (--session-fd),
// which carries every WebSocket session of that runner, each frame naming
// its session. A session starts on a slot like a request:
//
//   gateway -> runner (slot): WS_CONNECT (a RequestHead with
//                             websocket_session set; no body, no REQUEST_END)
//   runner -> gateway (slot): WS_ACCEPT, or a whole HTTP answer (RESPONSE_HEAD,
//                             RESPONSE_BODY*, RESPONSE_END: the app refused)
//
// After WS_ACCEPT the slot takes the next request: the session lives on the
// session channel, where both sides send WS_TEXT, WS_BINARY and WS_CLOSE.
// WS_TEXT and WS_BINARY payloads are raw: the session id (u32le), then the
// message. WS_CLOSE ends the session from the side that sends it; each side
// ignores frames for sessions it no longer knows (they crossed a WS_CLOSE).
//
// Handed-over sessions (ASGI on plain HTTP/1.1; docs/design/websocket.md
// "Handover for ASGI"). To a runner whose READY says ws_socket=true gw may
// first send RAW_CONNECT (the session's id) with the client's TCP socket on
// the session channel, then the WS_CONNECT with raw_connection (the same
// id), ws_max_message and ws_ping_ms. The runner then speaks RFC 6455 on
// the socket itself: it writes the 101 and answers WS_ACCEPT with handed
// set; a refusal is answered on the slot as above (the runner closes its
// copy, gw writes the answer). gw sends the session nothing more but a
// WS_CLOSE at a drain (1001: the runner closes with it); the runner sends
// no WS_* for it, and RAW_CLOSED (id, u64le messages in, u64le messages
// out) once its copy of the socket is closed.
//
// Raw connections (Rack, PSGI: docs/design/websocket.md). A runner whose
// READY says raw=true takes its session channel as a descriptor channel:
// for every upgrade request gw first sends there RAW_CONNECT (u32le id)
// and then, in its own sendmsg, one byte carrying the app's end of a
// socketpair (SCM_RIGHTS), then the request on a slot with raw_connection
// set to the id. If the app takes the socket the runner sends
// RAW_HIJACKED on the slot (gw relays the client's connection from then
// on) and, once the app's code returned, RESPONSE_END; else an ordinary
// answer, and it closes the socket.
//
// Client gone (ASGI's http.disconnect while the app answers). A runner
// whose READY says client_gone=true gets CLIENT_GONE on a slot's request
// stream when the client of the request on that slot left (its connection
// closed, a write to it failed) before the answer ended: empty, gateway ->
// runner (slot), at most once per request, always after that request's
// REQUEST_END, possibly after the runner's RESPONSE_END (it then comes
// before the next REQUEST_HEAD, and the runner discards it). The runner
// tells the app (ASGI: receive() returns http.disconnect, send() is
// ignored) so it stops and the slot comes back. gw sends it to no other
// runner; a runner that does not know it (WSGI, Rack, PSGI) discards it
// wherever it expects REQUEST_HEAD, so the next request is not corrupted.
//
// Early hints (RFC 8297). EARLY_HINTS carries header pairs (Link, mostly)
// for an informational 103: runner -> gateway (slot), any number, before
// RESPONSE_HEAD (gw drops one that comes after it: too late to hint). gw sends a 103 to an
// HTTP/1.1 or HTTP/2 client; to an HTTP/1.0 client, and on the uwsgi and
// FastCGI listeners (neither protocol can carry an interim answer to
// nginx), it drops it. Rack's env['rack.early_hints'] and ASGI's
// http.response.early_hint send it; PSGI has no such call.
//
// Regenerate bridge.pb.go with `go generate ./proto` (see gen.go).

// Code generated by protoc-gen-go. DO NOT EDIT.
// versions:
// 	protoc-gen-go v1.36.12
// 	protoc        v3.21.12
// source: bridge.proto

package bridgepb

import (
	protoreflect "google.golang.org/protobuf/reflect/protoreflect"
	protoimpl "google.golang.org/protobuf/runtime/protoimpl"
	reflect "reflect"
	sync "sync"
	unsafe "unsafe"
)

const (
	// Verify that this generated code is sufficiently up-to-date.
	_ = protoimpl.EnforceVersion(20 - protoimpl.MinVersion)
	// Verify that runtime/protoimpl is sufficiently up-to-date.
	_ = protoimpl.EnforceVersion(protoimpl.MaxVersion - 20)
)

// FrameType is the first byte of every frame header.
type FrameType int32

const (
	FrameType_FRAME_INVALID FrameType = 0
	FrameType_REQUEST_HEAD  FrameType = 1  // RequestHead, gateway -> runner (slot)
	FrameType_REQUEST_BODY  FrameType = 2  // raw bytes, gateway -> runner (slot)
	FrameType_REQUEST_END   FrameType = 3  // RequestEnd, gateway -> runner (slot)
	FrameType_RESPONSE_HEAD FrameType = 4  // ResponseHead, runner -> gateway (slot)
	FrameType_RESPONSE_BODY FrameType = 5  // raw bytes, runner -> gateway (slot)
	FrameType_RESPONSE_END  FrameType = 6  // ResponseEnd, runner -> gateway (slot)
	FrameType_WS_CONNECT    FrameType = 7  // RequestHead with websocket_session, gateway -> runner (slot)
	FrameType_WS_ACCEPT     FrameType = 8  // WsAccept, runner -> gateway (slot)
	FrameType_WS_TEXT       FrameType = 9  // raw: u32le session id, UTF-8 message (session channel, both ways)
	FrameType_WS_BINARY     FrameType = 10 // raw: u32le session id, message (session channel, both ways)
	FrameType_WS_CLOSE      FrameType = 11 // WsClose (session channel, both ways)
	FrameType_RAW_CONNECT   FrameType = 12 // raw: u32le connection id, then one byte carrying the socket (session channel, gateway -> runner)
	FrameType_RAW_HIJACKED  FrameType = 13 // empty, runner -> gateway (slot): the app took the connection
	FrameType_CLIENT_GONE   FrameType = 14 // empty, gateway -> runner (slot), after REQUEST_END: the client left (client_gone runners only)
	FrameType_EARLY_HINTS   FrameType = 15 // EarlyHints, runner -> gateway (slot), before RESPONSE_HEAD (later: dropped): send a 103
	FrameType_READY         FrameType = 16 // Ready, runner -> gateway (control)
	FrameType_LOAD_ERROR    FrameType = 17 // LoadError, runner -> gateway (control)
	FrameType_PING          FrameType = 18 // Ping, gateway -> runner (control)
	FrameType_PONG          FrameType = 19 // Pong, runner -> gateway (control)
	// 20 and up: runner -> gateway requests on the control socket, made by
	// the app through uWSGI's API (runners/python/gw_wsgi.py section 11).
	FrameType_RELOAD_APP    FrameType = 20 // empty, runner -> gateway (control): reload this app gracefully (uwsgi.reload())
	FrameType_CACHE_REQUEST FrameType = 21 // CacheRequest, runner -> gateway (cache channel: uwsgi.cache_*)
	FrameType_CACHE_ANSWER  FrameType = 22 // CacheAnswer, gateway -> runner (cache channel), one per request, in order
	FrameType_RAW_CLOSED    FrameType = 23 // raw: u32le connection id, runner -> gateway (session channel): its copy of a client's TCP socket is closed (raw_socket, ws_socket runners); a ws_socket runner adds u64le messages in (client to app), u64le messages out
)

// Enum value maps for FrameType.
var (
	FrameType_name = map[int32]string{
		0:  "FRAME_INVALID",
		1:  "REQUEST_HEAD",
		2:  "REQUEST_BODY",
		3:  "REQUEST_END",
		4:  "RESPONSE_HEAD",
		5:  "RESPONSE_BODY",
		6:  "RESPONSE_END",
		7:  "WS_CONNECT",
		8:  "WS_ACCEPT",
		9:  "WS_TEXT",
		10: "WS_BINARY",
		11: "WS_CLOSE",
		12: "RAW_CONNECT",
		13: "RAW_HIJACKED",
		14: "CLIENT_GONE",
		15: "EARLY_HINTS",
		16: "READY",
		17: "LOAD_ERROR",
		18: "PING",
		19: "PONG",
		20: "RELOAD_APP",
		21: "CACHE_REQUEST",
		22: "CACHE_ANSWER",
		23: "RAW_CLOSED",
	}
	FrameType_value = map[string]int32{
		"FRAME_INVALID": 0,
		"REQUEST_HEAD":  1,
		"REQUEST_BODY":  2,
		"REQUEST_END":   3,
		"RESPONSE_HEAD": 4,
		"RESPONSE_BODY": 5,
		"RESPONSE_END":  6,
		"WS_CONNECT":    7,
		"WS_ACCEPT":     8,
		"WS_TEXT":       9,
		"WS_BINARY":     10,
		"WS_CLOSE":      11,
		"RAW_CONNECT":   12,
		"RAW_HIJACKED":  13,
		"CLIENT_GONE":   14,
		"EARLY_HINTS":   15,
		"READY":         16,
		"LOAD_ERROR":    17,
		"PING":          18,
		"PONG":          19,
		"RELOAD_APP":    20,
		"CACHE_REQUEST": 21,
		"CACHE_ANSWER":  22,
		"RAW_CLOSED":    23,
	}
)

func (x FrameType) Enum() *FrameType {
	p := new(FrameType)
	*p = x
	return p
}

func (x FrameType) String() string {
	return protoimpl.X.EnumStringOf(x.Descriptor(), protoreflect.EnumNumber(x))
}

func (FrameType) Descriptor() protoreflect.EnumDescriptor {
	return file_bridge_proto_enumTypes[0].Descriptor()
}

func (FrameType) Type() protoreflect.EnumType {
	return &file_bridge_proto_enumTypes[0]
}

func (x FrameType) Number() protoreflect.EnumNumber {
	return protoreflect.EnumNumber(x)
}

// Deprecated: Use FrameType.Descriptor instead.
func (FrameType) EnumDescriptor() ([]byte, []int) {
	return file_bridge_proto_rawDescGZIP(), []int{0}
}

// RequestHead starts a request on a slot.
type RequestHead struct {
	state protoimpl.MessageState `protogen:"open.v1"`
	// CGI/1.1 meta-variables (RFC 3875) as name, value, name, value, ...:
	// REQUEST_METHOD, SCRIPT_NAME, PATH_INFO (percent-decoded bytes),
	// QUERY_STRING, REQUEST_URI (raw), SERVER_NAME, SERVER_PORT,
	// SERVER_PROTOCOL, REMOTE_ADDR, REMOTE_PORT, CONTENT_TYPE and
	// CONTENT_LENGTH (only when known), then HTTP_* for each request header
	// (duplicates joined with ", ", Cookie with "; "; hop-by-hop headers and
	// HTTP_CONTENT_*/HTTP_PROXY never appear). Names are ASCII; values are
	// raw bytes. A request with a body of unknown length (chunked) has no
	// CONTENT_LENGTH; its body ends at REQUEST_END.
	Env [][]byte `protobuf:"bytes,1,rep,name=env,proto3" json:"env,omitempty"`
	// "http" or "https".
	UrlScheme string `protobuf:"bytes,2,opt,name=url_scheme,json=urlScheme,proto3" json:"url_scheme,omitempty"`
	// The request id the gateway logs (X-Request-Id).
	RequestId string `protobuf:"bytes,3,opt,name=request_id,json=requestId,proto3" json:"request_id,omitempty"`
	// The same name/value pairs as env, as one block: name NUL value NUL
	// name NUL value (no trailing NUL). A runner splits it on NUL in one
	// call of its language's C string code, where decoding env costs a loop
	// iteration per item in the interpreter: at ~12 pairs per request that
	// is most of a shim's decode time. The gateway puts every pair here
	// except one whose value holds a NUL byte (only a percent-decoded
	// PATH_INFO can), which goes in env. Runners read both; a name appears
	// in only one of them.
	EnvBlock []byte `protobuf:"bytes,4,opt,name=env_block,json=envBlock,proto3" json:"env_block,omitempty"`
	// Set only in WS_CONNECT: the id the session's frames will carry on the
	// session channel (never 0).
	WebsocketSession uint32 `protobuf:"varint,5,opt,name=websocket_session,json=websocketSession,proto3" json:"websocket_session,omitempty"`
	// Set only on an upgrade request to a runner that said raw in READY:
	// the id of the RAW_CONNECT that carried the app's end of the client
	// connection on the session channel, sent before this head (never 0).
	RawConnection uint32 `protobuf:"varint,6,opt,name=raw_connection,json=rawConnection,proto3" json:"raw_connection,omitempty"`
	// Set only in a WS_CONNECT whose raw_connection is the client's TCP
	// socket itself (READY ws_socket; docs/design/websocket.md "Handover for
	// ASGI"): the runner frames the session, with gw's limits: the largest
	// client message (close 1009 beyond) and the keep-alive ping interval
	// in milliseconds (0: none).
	WsMaxMessage  uint64 `protobuf:"varint,7,opt,name=ws_max_message,json=wsMaxMessage,proto3" json:"ws_max_message,omitempty"`
	WsPingMs      uint32 `protobuf:"varint,8,opt,name=ws_ping_ms,json=wsPingMs,proto3" json:"ws_ping_ms,omitempty"`
	unknownFields protoimpl.UnknownFields
	sizeCache     protoimpl.SizeCache
}

func (x *RequestHead) Reset() {
	*x = RequestHead{}
	mi := &file_bridge_proto_msgTypes[0]
	ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
	ms.StoreMessageInfo(mi)
}

func (x *RequestHead) String() string {
	return protoimpl.X.MessageStringOf(x)
}

func (*RequestHead) ProtoMessage() {}

func (x *RequestHead) ProtoReflect() protoreflect.Message {
	mi := &file_bridge_proto_msgTypes[0]
	if x != nil {
		ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
		if ms.LoadMessageInfo() == nil {
			ms.StoreMessageInfo(mi)
		}
		return ms
	}
	return mi.MessageOf(x)
}

// Deprecated: Use RequestHead.ProtoReflect.Descriptor instead.
func (*RequestHead) Descriptor() ([]byte, []int) {
	return file_bridge_proto_rawDescGZIP(), []int{0}
}

func (x *RequestHead) GetEnv() [][]byte {
	if x != nil {
		return x.Env
	}
	return nil
}

func (x *RequestHead) GetUrlScheme() string {
	if x != nil {
		return x.UrlScheme
	}
	return ""
}

func (x *RequestHead) GetRequestId() string {
	if x != nil {
		return x.RequestId
	}
	return ""
}

func (x *RequestHead) GetEnvBlock() []byte {
	if x != nil {
		return x.EnvBlock
	}
	return nil
}

func (x *RequestHead) GetWebsocketSession() uint32 {
	if x != nil {
		return x.WebsocketSession
	}
	return 0
}

func (x *RequestHead) GetRawConnection() uint32 {
	if x != nil {
		return x.RawConnection
	}
	return 0
}

func (x *RequestHead) GetWsMaxMessage() uint64 {
	if x != nil {
		return x.WsMaxMessage
	}
	return 0
}

func (x *RequestHead) GetWsPingMs() uint32 {
	if x != nil {
		return x.WsPingMs
	}
	return 0
}

// RequestEnd ends the request body stream.
type RequestEnd struct {
	state protoimpl.MessageState `protogen:"open.v1"`
	// True when the body stopped early (client went away, body limit hit):
	// the runner must make the app's next body read fail, not return EOF.
	Aborted       bool   `protobuf:"varint,1,opt,name=aborted,proto3" json:"aborted,omitempty"`
	Reason        string `protobuf:"bytes,2,opt,name=reason,proto3" json:"reason,omitempty"`
	unknownFields protoimpl.UnknownFields
	sizeCache     protoimpl.SizeCache
}

func (x *RequestEnd) Reset() {
	*x = RequestEnd{}
	mi := &file_bridge_proto_msgTypes[1]
	ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
	ms.StoreMessageInfo(mi)
}

func (x *RequestEnd) String() string {
	return protoimpl.X.MessageStringOf(x)
}

func (*RequestEnd) ProtoMessage() {}

func (x *RequestEnd) ProtoReflect() protoreflect.Message {
	mi := &file_bridge_proto_msgTypes[1]
	if x != nil {
		ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
		if ms.LoadMessageInfo() == nil {
			ms.StoreMessageInfo(mi)
		}
		return ms
	}
	return mi.MessageOf(x)
}

// Deprecated: Use RequestEnd.ProtoReflect.Descriptor instead.
func (*RequestEnd) Descriptor() ([]byte, []int) {
	return file_bridge_proto_rawDescGZIP(), []int{1}
}

func (x *RequestEnd) GetAborted() bool {
	if x != nil {
		return x.Aborted
	}
	return false
}

func (x *RequestEnd) GetReason() string {
	if x != nil {
		return x.Reason
	}
	return ""
}

// ResponseHead carries the status and headers. At most one per request.
type ResponseHead struct {
	state  protoimpl.MessageState `protogen:"open.v1"`
	Status uint32                 `protobuf:"varint,1,opt,name=status,proto3" json:"status,omitempty"`
	// name, value, name, value, ... in the order the app gave them; a header
	// the app repeated (Set-Cookie) appears once per value.
	Headers [][]byte `protobuf:"bytes,2,rep,name=headers,proto3" json:"headers,omitempty"`
	// The same pairs as one block, name NUL value NUL ... (no trailing NUL),
	// cheaper for a shim to build (one join) than one field per item. A
	// runner may use either or both; the gateway reads headers first, then
	// the block. Header values never hold NUL (runners refuse them).
	HeaderBlock   []byte `protobuf:"bytes,3,opt,name=header_block,json=headerBlock,proto3" json:"header_block,omitempty"`
	unknownFields protoimpl.UnknownFields
	sizeCache     protoimpl.SizeCache
}

func (x *ResponseHead) Reset() {
	*x = ResponseHead{}
	mi := &file_bridge_proto_msgTypes[2]
	ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
	ms.StoreMessageInfo(mi)
}

func (x *ResponseHead) String() string {
	return protoimpl.X.MessageStringOf(x)
}

func (*ResponseHead) ProtoMessage() {}

func (x *ResponseHead) ProtoReflect() protoreflect.Message {
	mi := &file_bridge_proto_msgTypes[2]
	if x != nil {
		ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
		if ms.LoadMessageInfo() == nil {
			ms.StoreMessageInfo(mi)
		}
		return ms
	}
	return mi.MessageOf(x)
}

// Deprecated: Use ResponseHead.ProtoReflect.Descriptor instead.
func (*ResponseHead) Descriptor() ([]byte, []int) {
	return file_bridge_proto_rawDescGZIP(), []int{2}
}

func (x *ResponseHead) GetStatus() uint32 {
	if x != nil {
		return x.Status
	}
	return 0
}

func (x *ResponseHead) GetHeaders() [][]byte {
	if x != nil {
		return x.Headers
	}
	return nil
}

func (x *ResponseHead) GetHeaderBlock() []byte {
	if x != nil {
		return x.HeaderBlock
	}
	return nil
}

// ResponseEnd ends the response. A runner sends it after the body, or
// instead of a head when the app failed before starting the response.
type ResponseEnd struct {
	state protoimpl.MessageState `protogen:"open.v1"`
	// Empty on success. Otherwise why the app failed; if no head was sent the
	// gateway answers 500, else it aborts the client connection.
	Error string `protobuf:"bytes,1,opt,name=error,proto3" json:"error,omitempty"`
	// Fields the app set for the access log (uwsgi.set_logvar) as name,
	// value, name, value, ...; gw logs them as vars.NAME=VALUE.
	Logvars       [][]byte `protobuf:"bytes,2,rep,name=logvars,proto3" json:"logvars,omitempty"`
	unknownFields protoimpl.UnknownFields
	sizeCache     protoimpl.SizeCache
}

func (x *ResponseEnd) Reset() {
	*x = ResponseEnd{}
	mi := &file_bridge_proto_msgTypes[3]
	ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
	ms.StoreMessageInfo(mi)
}

func (x *ResponseEnd) String() string {
	return protoimpl.X.MessageStringOf(x)
}

func (*ResponseEnd) ProtoMessage() {}

func (x *ResponseEnd) ProtoReflect() protoreflect.Message {
	mi := &file_bridge_proto_msgTypes[3]
	if x != nil {
		ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
		if ms.LoadMessageInfo() == nil {
			ms.StoreMessageInfo(mi)
		}
		return ms
	}
	return mi.MessageOf(x)
}

// Deprecated: Use ResponseEnd.ProtoReflect.Descriptor instead.
func (*ResponseEnd) Descriptor() ([]byte, []int) {
	return file_bridge_proto_rawDescGZIP(), []int{3}
}

func (x *ResponseEnd) GetError() string {
	if x != nil {
		return x.Error
	}
	return ""
}

func (x *ResponseEnd) GetLogvars() [][]byte {
	if x != nil {
		return x.Logvars
	}
	return nil
}

// EarlyHints is one 103 Early Hints answer (RFC 8297) the app sent before
// its final head.
type EarlyHints struct {
	state protoimpl.MessageState `protogen:"open.v1"`
	// name, value, name, value, ... (Link, usually once per value). Field 2,
	// as ResponseHead's headers: the gateway reads both with one decoder.
	Headers       [][]byte `protobuf:"bytes,2,rep,name=headers,proto3" json:"headers,omitempty"`
	unknownFields protoimpl.UnknownFields
	sizeCache     protoimpl.SizeCache
}

func (x *EarlyHints) Reset() {
	*x = EarlyHints{}
	mi := &file_bridge_proto_msgTypes[4]
	ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
	ms.StoreMessageInfo(mi)
}

func (x *EarlyHints) String() string {
	return protoimpl.X.MessageStringOf(x)
}

func (*EarlyHints) ProtoMessage() {}

func (x *EarlyHints) ProtoReflect() protoreflect.Message {
	mi := &file_bridge_proto_msgTypes[4]
	if x != nil {
		ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
		if ms.LoadMessageInfo() == nil {
			ms.StoreMessageInfo(mi)
		}
		return ms
	}
	return mi.MessageOf(x)
}

// Deprecated: Use EarlyHints.ProtoReflect.Descriptor instead.
func (*EarlyHints) Descriptor() ([]byte, []int) {
	return file_bridge_proto_rawDescGZIP(), []int{4}
}

func (x *EarlyHints) GetHeaders() [][]byte {
	if x != nil {
		return x.Headers
	}
	return nil
}

// Ready is the runner's first message: the app is loaded and every slot is
// being served.
type Ready struct {
	state    protoimpl.MessageState `protogen:"open.v1"`
	Protocol uint32                 `protobuf:"varint,1,opt,name=protocol,proto3" json:"protocol,omitempty"` // bridge protocol version; currently 2 (2 added the blocks)
	Pid      uint32                 `protobuf:"varint,2,opt,name=pid,proto3" json:"pid,omitempty"`
	Runtime  string                 `protobuf:"bytes,3,opt,name=runtime,proto3" json:"runtime,omitempty"` // e.g. "CPython 3.11.2"
	// The slots the runner serves: the first `slots` of those it was given.
	// Fewer when it decided so once the app was loaded (a WSGI app under
	// interface auto gets one thread); it closed the others, and gw does too.
	Slots uint32 `protobuf:"varint,4,opt,name=slots,proto3" json:"slots,omitempty"`
	// The runner serves WebSocket sessions on its session channel; without
	// it gw hands upgrade requests to the app as plain HTTP requests.
	Websocket bool `protobuf:"varint,5,opt,name=websocket,proto3" json:"websocket,omitempty"`
	// The runner takes raw connections (Rack hijack, psgix.io): gw sends
	// every upgrade request's socket on the session channel (RAW_CONNECT).
	Raw bool `protobuf:"varint,6,opt,name=raw,proto3" json:"raw,omitempty"`
	// The runner acts on CLIENT_GONE (ASGI): gw watches the client of each
	// request while the app answers and sends it when the client leaves.
	// Others are never sent it, so their requests cost no watch.
	ClientGone bool `protobuf:"varint,7,opt,name=client_gone,json=clientGone,proto3" json:"client_gone,omitempty"`
	// The runner takes the client's TCP socket itself in RAW_CONNECT (not
	// only a socketpair end) and says RAW_CLOSED on the session channel when
	// its copy of such a socket is closed, hijacked or not
	// (docs/design/websocket.md "Handover").
	RawSocket bool `protobuf:"varint,8,opt,name=raw_socket,json=rawSocket,proto3" json:"raw_socket,omitempty"`
	// The runner can take a WebSocket's client TCP socket itself (ASGI): gw
	// may send a WS_CONNECT with raw_connection set, after its RAW_CONNECT;
	// the runner then speaks RFC 6455 on the socket (writes the 101 itself,
	// answers WS_ACCEPT with handed) and says RAW_CLOSED, with the message
	// counts, when its copy is closed.
	WsSocket      bool `protobuf:"varint,9,opt,name=ws_socket,json=wsSocket,proto3" json:"ws_socket,omitempty"`
	unknownFields protoimpl.UnknownFields
	sizeCache     protoimpl.SizeCache
}

func (x *Ready) Reset() {
	*x = Ready{}
	mi := &file_bridge_proto_msgTypes[5]
	ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
	ms.StoreMessageInfo(mi)
}

func (x *Ready) String() string {
	return protoimpl.X.MessageStringOf(x)
}

func (*Ready) ProtoMessage() {}

func (x *Ready) ProtoReflect() protoreflect.Message {
	mi := &file_bridge_proto_msgTypes[5]
	if x != nil {
		ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
		if ms.LoadMessageInfo() == nil {
			ms.StoreMessageInfo(mi)
		}
		return ms
	}
	return mi.MessageOf(x)
}

// Deprecated: Use Ready.ProtoReflect.Descriptor instead.
func (*Ready) Descriptor() ([]byte, []int) {
	return file_bridge_proto_rawDescGZIP(), []int{5}
}

func (x *Ready) GetProtocol() uint32 {
	if x != nil {
		return x.Protocol
	}
	return 0
}

func (x *Ready) GetPid() uint32 {
	if x != nil {
		return x.Pid
	}
	return 0
}

func (x *Ready) GetRuntime() string {
	if x != nil {
		return x.Runtime
	}
	return ""
}

func (x *Ready) GetSlots() uint32 {
	if x != nil {
		return x.Slots
	}
	return 0
}

func (x *Ready) GetWebsocket() bool {
	if x != nil {
		return x.Websocket
	}
	return false
}

func (x *Ready) GetRaw() bool {
	if x != nil {
		return x.Raw
	}
	return false
}

func (x *Ready) GetClientGone() bool {
	if x != nil {
		return x.ClientGone
	}
	return false
}

func (x *Ready) GetRawSocket() bool {
	if x != nil {
		return x.RawSocket
	}
	return false
}

func (x *Ready) GetWsSocket() bool {
	if x != nil {
		return x.WsSocket
	}
	return false
}

// LoadError replaces Ready when the app cannot be loaded; the runner exits
// (status 4) right after sending it.
type LoadError struct {
	state         protoimpl.MessageState `protogen:"open.v1"`
	Stage         string                 `protobuf:"bytes,1,opt,name=stage,proto3" json:"stage,omitempty"`     // "import", "callable", "args"
	Message       string                 `protobuf:"bytes,2,opt,name=message,proto3" json:"message,omitempty"` // one line, e.g. "SyntaxError: invalid syntax (app.py, line 3)"
	Detail        string                 `protobuf:"bytes,3,opt,name=detail,proto3" json:"detail,omitempty"`   // the language's full report (Python traceback)
	unknownFields protoimpl.UnknownFields
	sizeCache     protoimpl.SizeCache
}

func (x *LoadError) Reset() {
	*x = LoadError{}
	mi := &file_bridge_proto_msgTypes[6]
	ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
	ms.StoreMessageInfo(mi)
}

func (x *LoadError) String() string {
	return protoimpl.X.MessageStringOf(x)
}

func (*LoadError) ProtoMessage() {}

func (x *LoadError) ProtoReflect() protoreflect.Message {
	mi := &file_bridge_proto_msgTypes[6]
	if x != nil {
		ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
		if ms.LoadMessageInfo() == nil {
			ms.StoreMessageInfo(mi)
		}
		return ms
	}
	return mi.MessageOf(x)
}

// Deprecated: Use LoadError.ProtoReflect.Descriptor instead.
func (*LoadError) Descriptor() ([]byte, []int) {
	return file_bridge_proto_rawDescGZIP(), []int{6}
}

func (x *LoadError) GetStage() string {
	if x != nil {
		return x.Stage
	}
	return ""
}

func (x *LoadError) GetMessage() string {
	if x != nil {
		return x.Message
	}
	return ""
}

func (x *LoadError) GetDetail() string {
	if x != nil {
		return x.Detail
	}
	return ""
}

// Ping asks for a Pong with the same seq. It proves the runner's control
// loop still gets scheduled (the interpreter is not wedged).
type Ping struct {
	state         protoimpl.MessageState `protogen:"open.v1"`
	Seq           uint64                 `protobuf:"varint,1,opt,name=seq,proto3" json:"seq,omitempty"`
	unknownFields protoimpl.UnknownFields
	sizeCache     protoimpl.SizeCache
}

func (x *Ping) Reset() {
	*x = Ping{}
	mi := &file_bridge_proto_msgTypes[7]
	ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
	ms.StoreMessageInfo(mi)
}

func (x *Ping) String() string {
	return protoimpl.X.MessageStringOf(x)
}

func (*Ping) ProtoMessage() {}

func (x *Ping) ProtoReflect() protoreflect.Message {
	mi := &file_bridge_proto_msgTypes[7]
	if x != nil {
		ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
		if ms.LoadMessageInfo() == nil {
			ms.StoreMessageInfo(mi)
		}
		return ms
	}
	return mi.MessageOf(x)
}

// Deprecated: Use Ping.ProtoReflect.Descriptor instead.
func (*Ping) Descriptor() ([]byte, []int) {
	return file_bridge_proto_rawDescGZIP(), []int{7}
}

func (x *Ping) GetSeq() uint64 {
	if x != nil {
		return x.Seq
	}
	return 0
}

// Pong answers Ping and carries the runner's own counters.
type Pong struct {
	state         protoimpl.MessageState `protogen:"open.v1"`
	Seq           uint64                 `protobuf:"varint,1,opt,name=seq,proto3" json:"seq,omitempty"`
	Requests      uint64                 `protobuf:"varint,2,opt,name=requests,proto3" json:"requests,omitempty"` // requests completed since start
	Busy          uint32                 `protobuf:"varint,3,opt,name=busy,proto3" json:"busy,omitempty"`         // slots serving a request now
	unknownFields protoimpl.UnknownFields
	sizeCache     protoimpl.SizeCache
}

func (x *Pong) Reset() {
	*x = Pong{}
	mi := &file_bridge_proto_msgTypes[8]
	ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
	ms.StoreMessageInfo(mi)
}

func (x *Pong) String() string {
	return protoimpl.X.MessageStringOf(x)
}

func (*Pong) ProtoMessage() {}

func (x *Pong) ProtoReflect() protoreflect.Message {
	mi := &file_bridge_proto_msgTypes[8]
	if x != nil {
		ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
		if ms.LoadMessageInfo() == nil {
			ms.StoreMessageInfo(mi)
		}
		return ms
	}
	return mi.MessageOf(x)
}

// Deprecated: Use Pong.ProtoReflect.Descriptor instead.
func (*Pong) Descriptor() ([]byte, []int) {
	return file_bridge_proto_rawDescGZIP(), []int{8}
}

func (x *Pong) GetSeq() uint64 {
	if x != nil {
		return x.Seq
	}
	return 0
}

func (x *Pong) GetRequests() uint64 {
	if x != nil {
		return x.Requests
	}
	return 0
}

func (x *Pong) GetBusy() uint32 {
	if x != nil {
		return x.Busy
	}
	return 0
}

// WsAccept: the app accepted the WebSocket (ASGI websocket.accept).
type WsAccept struct {
	state       protoimpl.MessageState `protogen:"open.v1"`
	Subprotocol string                 `protobuf:"bytes,1,opt,name=subprotocol,proto3" json:"subprotocol,omitempty"` // chosen from the client's offer; "" = none
	Headers     [][]byte               `protobuf:"bytes,2,rep,name=headers,proto3" json:"headers,omitempty"`         // extra response headers: name, value, ...
	// The runner wrote the 101 on the client's socket itself (a WS_CONNECT
	// with raw_connection): gw hands the connection over and stays out of
	// the session until RAW_CLOSED.
	Handed        bool `protobuf:"varint,3,opt,name=handed,proto3" json:"handed,omitempty"`
	unknownFields protoimpl.UnknownFields
	sizeCache     protoimpl.SizeCache
}

func (x *WsAccept) Reset() {
	*x = WsAccept{}
	mi := &file_bridge_proto_msgTypes[9]
	ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
	ms.StoreMessageInfo(mi)
}

func (x *WsAccept) String() string {
	return protoimpl.X.MessageStringOf(x)
}

func (*WsAccept) ProtoMessage() {}

func (x *WsAccept) ProtoReflect() protoreflect.Message {
	mi := &file_bridge_proto_msgTypes[9]
	if x != nil {
		ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
		if ms.LoadMessageInfo() == nil {
			ms.StoreMessageInfo(mi)
		}
		return ms
	}
	return mi.MessageOf(x)
}

// Deprecated: Use WsAccept.ProtoReflect.Descriptor instead.
func (*WsAccept) Descriptor() ([]byte, []int) {
	return file_bridge_proto_rawDescGZIP(), []int{9}
}

func (x *WsAccept) GetSubprotocol() string {
	if x != nil {
		return x.Subprotocol
	}
	return ""
}

func (x *WsAccept) GetHeaders() [][]byte {
	if x != nil {
		return x.Headers
	}
	return nil
}

func (x *WsAccept) GetHanded() bool {
	if x != nil {
		return x.Handed
	}
	return false
}

// WsClose ends a session. From the gateway: the client closed (its code),
// went away (1006), sent a message over the size limit (1009), or gw is
// stopping (1001). From the runner: the app closed (its code), returned
// (1000) or failed (1011).
type WsClose struct {
	state         protoimpl.MessageState `protogen:"open.v1"`
	Session       uint32                 `protobuf:"varint,1,opt,name=session,proto3" json:"session,omitempty"`
	Code          uint32                 `protobuf:"varint,2,opt,name=code,proto3" json:"code,omitempty"`
	Reason        string                 `protobuf:"bytes,3,opt,name=reason,proto3" json:"reason,omitempty"`
	unknownFields protoimpl.UnknownFields
	sizeCache     protoimpl.SizeCache
}

func (x *WsClose) Reset() {
	*x = WsClose{}
	mi := &file_bridge_proto_msgTypes[10]
	ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
	ms.StoreMessageInfo(mi)
}

func (x *WsClose) String() string {
	return protoimpl.X.MessageStringOf(x)
}

func (*WsClose) ProtoMessage() {}

func (x *WsClose) ProtoReflect() protoreflect.Message {
	mi := &file_bridge_proto_msgTypes[10]
	if x != nil {
		ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
		if ms.LoadMessageInfo() == nil {
			ms.StoreMessageInfo(mi)
		}
		return ms
	}
	return mi.MessageOf(x)
}

// Deprecated: Use WsClose.ProtoReflect.Descriptor instead.
func (*WsClose) Descriptor() ([]byte, []int) {
	return file_bridge_proto_rawDescGZIP(), []int{10}
}

func (x *WsClose) GetSession() uint32 {
	if x != nil {
		return x.Session
	}
	return 0
}

func (x *WsClose) GetCode() uint32 {
	if x != nil {
		return x.Code
	}
	return 0
}

func (x *WsClose) GetReason() string {
	if x != nil {
		return x.Reason
	}
	return ""
}

// CacheRequest is one uwsgi.cache_* call, on the cache channel (--cache-fd:
// a socketpair per Python runner; the app's cache is gw's, shared by all
// its runners). The runner sends one and reads its answer before the next.
type CacheRequest struct {
	state         protoimpl.MessageState `protogen:"open.v1"`
	Op            uint32                 `protobuf:"varint,1,opt,name=op,proto3" json:"op,omitempty"`           // 1 get, 2 set (not over an existing key), 3 update, 4 del, 5 exists, 6 clear
	Key           []byte                 `protobuf:"bytes,2,opt,name=key,proto3" json:"key,omitempty"`          // with the cache's name: name NUL key ("" name: the default cache)
	Value         []byte                 `protobuf:"bytes,3,opt,name=value,proto3" json:"value,omitempty"`      // set, update
	Expires       uint64                 `protobuf:"varint,4,opt,name=expires,proto3" json:"expires,omitempty"` // set, update: seconds to live; 0 = no expiry
	unknownFields protoimpl.UnknownFields
	sizeCache     protoimpl.SizeCache
}

func (x *CacheRequest) Reset() {
	*x = CacheRequest{}
	mi := &file_bridge_proto_msgTypes[11]
	ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
	ms.StoreMessageInfo(mi)
}

func (x *CacheRequest) String() string {
	return protoimpl.X.MessageStringOf(x)
}

func (*CacheRequest) ProtoMessage() {}

func (x *CacheRequest) ProtoReflect() protoreflect.Message {
	mi := &file_bridge_proto_msgTypes[11]
	if x != nil {
		ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
		if ms.LoadMessageInfo() == nil {
			ms.StoreMessageInfo(mi)
		}
		return ms
	}
	return mi.MessageOf(x)
}

// Deprecated: Use CacheRequest.ProtoReflect.Descriptor instead.
func (*CacheRequest) Descriptor() ([]byte, []int) {
	return file_bridge_proto_rawDescGZIP(), []int{11}
}

func (x *CacheRequest) GetOp() uint32 {
	if x != nil {
		return x.Op
	}
	return 0
}

func (x *CacheRequest) GetKey() []byte {
	if x != nil {
		return x.Key
	}
	return nil
}

func (x *CacheRequest) GetValue() []byte {
	if x != nil {
		return x.Value
	}
	return nil
}

func (x *CacheRequest) GetExpires() uint64 {
	if x != nil {
		return x.Expires
	}
	return 0
}

// CacheAnswer answers the CacheRequest before it.
type CacheAnswer struct {
	state         protoimpl.MessageState `protogen:"open.v1"`
	Ok            bool                   `protobuf:"varint,1,opt,name=ok,proto3" json:"ok,omitempty"`      // found (get, exists), stored (set, update), removed (del)
	Value         []byte                 `protobuf:"bytes,2,opt,name=value,proto3" json:"value,omitempty"` // get
	unknownFields protoimpl.UnknownFields
	sizeCache     protoimpl.SizeCache
}

func (x *CacheAnswer) Reset() {
	*x = CacheAnswer{}
	mi := &file_bridge_proto_msgTypes[12]
	ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
	ms.StoreMessageInfo(mi)
}

func (x *CacheAnswer) String() string {
	return protoimpl.X.MessageStringOf(x)
}

func (*CacheAnswer) ProtoMessage() {}

func (x *CacheAnswer) ProtoReflect() protoreflect.Message {
	mi := &file_bridge_proto_msgTypes[12]
	if x != nil {
		ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
		if ms.LoadMessageInfo() == nil {
			ms.StoreMessageInfo(mi)
		}
		return ms
	}
	return mi.MessageOf(x)
}

// Deprecated: Use CacheAnswer.ProtoReflect.Descriptor instead.
func (*CacheAnswer) Descriptor() ([]byte, []int) {
	return file_bridge_proto_rawDescGZIP(), []int{12}
}

func (x *CacheAnswer) GetOk() bool {
	if x != nil {
		return x.Ok
	}
	return false
}

func (x *CacheAnswer) GetValue() []byte {
	if x != nil {
		return x.Value
	}
	return nil
}

var File_bridge_proto protoreflect.FileDescriptor

const file_bridge_proto_rawDesc = "" +
	"\n" +
	"\fbridge.proto\x12\fgw.bridge.v1\"\x92\x02\n" +
	"\vRequestHead\x12\x10\n" +
	"\x03env\x18\x01 \x03(\fR\x03env\x12\x1d\n" +
	"\n" +
	"url_scheme\x18\x02 \x01(\tR\turlScheme\x12\x1d\n" +
	"\n" +
	"request_id\x18\x03 \x01(\tR\trequestId\x12\x1b\n" +
	"\tenv_block\x18\x04 \x01(\fR\benvBlock\x12+\n" +
	"\x11websocket_session\x18\x05 \x01(\rR\x10websocketSession\x12%\n" +
	"\x0eraw_connection\x18\x06 \x01(\rR\rrawConnection\x12$\n" +
	"\x0ews_max_message\x18\a \x01(\x04R\fwsMaxMessage\x12\x1c\n" +
	"\n" +
	"ws_ping_ms\x18\b \x01(\rR\bwsPingMs\">\n" +
	"\n" +
	"RequestEnd\x12\x18\n" +
	"\aaborted\x18\x01 \x01(\bR\aaborted\x12\x16\n" +
	"\x06reason\x18\x02 \x01(\tR\x06reason\"c\n" +
	"\fResponseHead\x12\x16\n" +
	"\x06status\x18\x01 \x01(\rR\x06status\x12\x18\n" +
	"\aheaders\x18\x02 \x03(\fR\aheaders\x12!\n" +
	"\fheader_block\x18\x03 \x01(\fR\vheaderBlock\"=\n" +
	"\vResponseEnd\x12\x14\n" +
	"\x05error\x18\x01 \x01(\tR\x05error\x12\x18\n" +
	"\alogvars\x18\x02 \x03(\fR\alogvars\"&\n" +
	"\n" +
	"EarlyHints\x12\x18\n" +
	"\aheaders\x18\x02 \x03(\fR\aheaders\"\xf2\x01\n" +
	"\x05Ready\x12\x1a\n" +
	"\bprotocol\x18\x01 \x01(\rR\bprotocol\x12\x10\n" +
	"\x03pid\x18\x02 \x01(\rR\x03pid\x12\x18\n" +
	"\aruntime\x18\x03 \x01(\tR\aruntime\x12\x14\n" +
	"\x05slots\x18\x04 \x01(\rR\x05slots\x12\x1c\n" +
	"\twebsocket\x18\x05 \x01(\bR\twebsocket\x12\x10\n" +
	"\x03raw\x18\x06 \x01(\bR\x03raw\x12\x1f\n" +
	"\vclient_gone\x18\a \x01(\bR\n" +
	"clientGone\x12\x1d\n" +
	"\n" +
	"raw_socket\x18\b \x01(\bR\trawSocket\x12\x1b\n" +
	"\tws_socket\x18\t \x01(\bR\bwsSocket\"S\n" +
	"\tLoadError\x12\x14\n" +
	"\x05stage\x18\x01 \x01(\tR\x05stage\x12\x18\n" +
	"\amessage\x18\x02 \x01(\tR\amessage\x12\x16\n" +
	"\x06detail\x18\x03 \x01(\tR\x06detail\"\x18\n" +
	"\x04Ping\x12\x10\n" +
	"\x03seq\x18\x01 \x01(\x04R\x03seq\"H\n" +
	"\x04Pong\x12\x10\n" +
	"\x03seq\x18\x01 \x01(\x04R\x03seq\x12\x1a\n" +
	"\brequests\x18\x02 \x01(\x04R\brequests\x12\x12\n" +
	"\x04busy\x18\x03 \x01(\rR\x04busy\"^\n" +
	"\bWsAccept\x12 \n" +
	"\vsubprotocol\x18\x01 \x01(\tR\vsubprotocol\x12\x18\n" +
	"\aheaders\x18\x02 \x03(\fR\aheaders\x12\x16\n" +
	"\x06handed\x18\x03 \x01(\bR\x06handed\"O\n" +
	"\aWsClose\x12\x18\n" +
	"\asession\x18\x01 \x01(\rR\asession\x12\x12\n" +
	"\x04code\x18\x02 \x01(\rR\x04code\x12\x16\n" +
	"\x06reason\x18\x03 \x01(\tR\x06reason\"`\n" +
	"\fCacheRequest\x12\x0e\n" +
	"\x02op\x18\x01 \x01(\rR\x02op\x12\x10\n" +
	"\x03key\x18\x02 \x01(\fR\x03key\x12\x14\n" +
	"\x05value\x18\x03 \x01(\fR\x05value\x12\x18\n" +
	"\aexpires\x18\x04 \x01(\x04R\aexpires\"3\n" +
	"\vCacheAnswer\x12\x0e\n" +
	"\x02ok\x18\x01 \x01(\bR\x02ok\x12\x14\n" +
	"\x05value\x18\x02 \x01(\fR\x05value*\x8d\x03\n" +
	"\tFrameType\x12\x11\n" +
	"\rFRAME_INVALID\x10\x00\x12\x10\n" +
	"\fREQUEST_HEAD\x10\x01\x12\x10\n" +
	"\fREQUEST_BODY\x10\x02\x12\x0f\n" +
	"\vREQUEST_END\x10\x03\x12\x11\n" +
	"\rRESPONSE_HEAD\x10\x04\x12\x11\n" +
	"\rRESPONSE_BODY\x10\x05\x12\x10\n" +
	"\fRESPONSE_END\x10\x06\x12\x0e\n" +
	"\n" +
	"WS_CONNECT\x10\a\x12\r\n" +
	"\tWS_ACCEPT\x10\b\x12\v\n" +
	"\aWS_TEXT\x10\t\x12\r\n" +
	"\tWS_BINARY\x10\n" +
	"\x12\f\n" +
	"\bWS_CLOSE\x10\v\x12\x0f\n" +
	"\vRAW_CONNECT\x10\f\x12\x10\n" +
	"\fRAW_HIJACKED\x10\r\x12\x0f\n" +
	"\vCLIENT_GONE\x10\x0e\x12\x0f\n" +
	"\vEARLY_HINTS\x10\x0f\x12\t\n" +
	"\x05READY\x10\x10\x12\x0e\n" +
	"\n" +
	"LOAD_ERROR\x10\x11\x12\b\n" +
	"\x04PING\x10\x12\x12\b\n" +
	"\x04PONG\x10\x13\x12\x0e\n" +
	"\n" +
	"RELOAD_APP\x10\x14\x12\x11\n" +
	"\rCACHE_REQUEST\x10\x15\x12\x10\n" +
	"\fCACHE_ANSWER\x10\x16\x12\x0e\n" +
	"\n" +
	"RAW_CLOSED\x10\x17B#Z!github.com/gwhq/gw/proto/bridgepbb\x06proto3"

var (
	file_bridge_proto_rawDescOnce sync.Once
	file_bridge_proto_rawDescData []byte
)

func file_bridge_proto_rawDescGZIP() []byte {
	file_bridge_proto_rawDescOnce.Do(func() {
		file_bridge_proto_rawDescData = protoimpl.X.CompressGZIP(unsafe.Slice(unsafe.StringData(file_bridge_proto_rawDesc), len(file_bridge_proto_rawDesc)))
	})
	return file_bridge_proto_rawDescData
}

var file_bridge_proto_enumTypes = make([]protoimpl.EnumInfo, 1)
var file_bridge_proto_msgTypes = make([]protoimpl.MessageInfo, 13)
var file_bridge_proto_goTypes = []any{
	(FrameType)(0),       // 0: gw.bridge.v1.FrameType
	(*RequestHead)(nil),  // 1: gw.bridge.v1.RequestHead
	(*RequestEnd)(nil),   // 2: gw.bridge.v1.RequestEnd
	(*ResponseHead)(nil), // 3: gw.bridge.v1.ResponseHead
	(*ResponseEnd)(nil),  // 4: gw.bridge.v1.ResponseEnd
	(*EarlyHints)(nil),   // 5: gw.bridge.v1.EarlyHints
	(*Ready)(nil),        // 6: gw.bridge.v1.Ready
	(*LoadError)(nil),    // 7: gw.bridge.v1.LoadError
	(*Ping)(nil),         // 8: gw.bridge.v1.Ping
	(*Pong)(nil),         // 9: gw.bridge.v1.Pong
	(*WsAccept)(nil),     // 10: gw.bridge.v1.WsAccept
	(*WsClose)(nil),      // 11: gw.bridge.v1.WsClose
	(*CacheRequest)(nil), // 12: gw.bridge.v1.CacheRequest
	(*CacheAnswer)(nil),  // 13: gw.bridge.v1.CacheAnswer
}
var file_bridge_proto_depIdxs = []int32{
	0, // [0:0] is the sub-list for method output_type
	0, // [0:0] is the sub-list for method input_type
	0, // [0:0] is the sub-list for extension type_name
	0, // [0:0] is the sub-list for extension extendee
	0, // [0:0] is the sub-list for field type_name
}

func init() { file_bridge_proto_init() }
func file_bridge_proto_init() {
	if File_bridge_proto != nil {
		return
	}
	type x struct{}
	out := protoimpl.TypeBuilder{
		File: protoimpl.DescBuilder{
			GoPackagePath: reflect.TypeOf(x{}).PkgPath(),
			RawDescriptor: unsafe.Slice(unsafe.StringData(file_bridge_proto_rawDesc), len(file_bridge_proto_rawDesc)),
			NumEnums:      1,
			NumMessages:   13,
			NumExtensions: 0,
			NumServices:   0,
		},
		GoTypes:           file_bridge_proto_goTypes,
		DependencyIndexes: file_bridge_proto_depIdxs,
		EnumInfos:         file_bridge_proto_enumTypes,
		MessageInfos:      file_bridge_proto_msgTypes,
	}.Build()
	File_bridge_proto = out.File
	file_bridge_proto_goTypes = nil
	file_bridge_proto_depIdxs = nil
}
