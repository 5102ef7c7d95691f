package bridge

import (
	"encoding/binary"
	"net"
	"net/http"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/gwhq/gw/proto/bridgepb"
)

// Raw connections (docs/design/websocket.md, "Raw connections"): an
// upgrade request to a Rack or PSGI app carries the app's end of a
// socketpair, sent ahead on the session channel (RAW_CONNECT); if the app
// takes it (rack.hijack, psgix.io) the runner says RAW_HIJACKED on the slot
// and gw copies bytes between the client and its own end.
const (
	RawConnect  = bridgepb.FrameType_RAW_CONNECT
	RawHijacked = bridgepb.FrameType_RAW_HIJACKED
	RawClosed   = bridgepb.FrameType_RAW_CLOSED
)

// RawHijacker is the ResponseWriter of an upgrade request (the
// gateway's): the worker offers it gw's end of the socketpair before the
// exchange, and it owns that end from then on (closes it if the app did
// not take the connection). At RAW_HIJACKED the exchange calls HijackRaw,
// then only waits for RESPONSE_END.
type RawHijacker interface {
	http.ResponseWriter
	OfferRaw(conn net.Conn)
	HijackRaw() error
}

// RawHandover is a RawHijacker whose client connection may go to the
// runner whole (docs/design/websocket.md "Handover"): ClientSocket returns
// the client's TCP socket when it can (plain HTTP/1.1, nothing read past
// the head; it then stops reading it), else nil and the worker offers a
// socketpair end as before. After sending the socket the worker calls
// OfferSocket with a channel closed once the runner's copy is closed; the
// exchange's HijackRaw then hands the connection over instead of relaying.
type RawHandover interface {
	ClientSocket() *net.TCPConn
	OfferSocket(closed <-chan struct{})
}

// RawHead adds raw_connection id to a finished REQUEST_HEAD frame (at the
// start of head).
func RawHead(head []byte, id uint32) []byte {
	head = protowire.AppendTag(head, 6, protowire.VarintType)
	head = protowire.AppendVarint(head, uint64(id))
	binary.LittleEndian.PutUint32(head[4:8], uint32(len(head)-HeaderSize))
	return head
}

// HandedConnect adds raw_connection id and the session limits the runner
// enforces to a WS_CONNECT frame (ConnectFrame's result) whose session goes
// on the client's socket itself (Mux.SendSocket).
func HandedConnect(connect []byte, id uint32, maxMessage uint64, pingMillis uint32) []byte {
	connect = protowire.AppendTag(connect, 6, protowire.VarintType)
	connect = protowire.AppendVarint(connect, uint64(id))
	if maxMessage != 0 {
		connect = protowire.AppendTag(connect, 7, protowire.VarintType)
		connect = protowire.AppendVarint(connect, maxMessage)
	}
	if pingMillis != 0 {
		connect = protowire.AppendTag(connect, 8, protowire.VarintType)
		connect = protowire.AppendVarint(connect, uint64(pingMillis))
	}
	binary.LittleEndian.PutUint32(connect[4:8], uint32(len(connect)-HeaderSize))
	return connect
}

// RawConnectFrame is RAW_CONNECT for connection id; the byte that carries
// the socket (SCM_RIGHTS) follows it in its own write.
func RawConnectFrame(id uint32) []byte {
	b := make([]byte, HeaderSize+4)
	PutHeader(b, RawConnect, 4)
	binary.LittleEndian.PutUint32(b[HeaderSize:], id)
	return b
}
