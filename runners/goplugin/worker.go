package goplugin

import (
	"context"
	"sync"

	"github.com/gwhq/gw/proto/pluginpb"
	"github.com/gwhq/gw/runners/lifecycle"
)

// worker is one running plugin process: its lifecycle (PID, Kill, Stop,
// Done, Exit, DumpStacks: the SDK logs every goroutine's stack at SIGUSR1)
// and its requests. gRPC multiplexes the requests over one connection, so
// the slot index only counts toward Slots.
type worker struct {
	*lifecycle.Runner
	proc    *process
	handler pluginpb.HandlerClient
	slots   int
	raw     *rawChannel // nil unless the plugin speaks wire.RawVersion
	abortMu sync.Mutex
	aborts  []context.CancelCauseFunc // per slot: ends the request being served
}

func (w *worker) Slots() int { return w.slots }
