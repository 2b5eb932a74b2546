package groqwebhook

import (
	"errors"
	"runtime/debug"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// A signature can only be checked once the whole body is in, and anyone can
// send a fresh timestamp with a well-formed (fake) signature, so the bytes
// held for bodies must be bounded by the server, not by the clients. The
// budget is the one count of them for the whole process: package state, so
// that every site and every config, before and after a reload, draws on it.

// DefaultMaxBuffered is the default of max_buffered.
const DefaultMaxBuffered = 256 << 20

// errServerBusy stops a request whose body does not fit in the budget.
var errServerBusy = errors.New("request bodies over the memory budget")

// bufferedBytes is the memory of body buffers: those held by bodies being
// read, verified or handed on, and the free ones kept for reuse
// (freeBytes). Each handler refuses to take more than its own
// max_buffered, so the process never holds more than the largest
// max_buffered of the configs it runs.
var bufferedBytes atomic.Int64

// heldBytes is what bodies hold right now, without the free buffers.
func heldBytes() int64 {
	return bufferedBytes.Load() - freeBytes.Load()
}

// acquireBuffered takes n bytes of the budget unless that would pass limit.
func acquireBuffered(n, limit int64) bool {
	if bufferedBytes.Add(n) > limit {
		bufferedBytes.Add(-n)
		return false
	}
	return true
}

// releaseBuffered gives n bytes back.
func releaseBuffered(n int64) {
	bufferedBytes.Add(-n)
}

// fitsBuffered reports whether n more bytes would fit under limit now,
// free buffers being there to be given up: a body that announces its
// length is turned away before it is read.
func fitsBuffered(n, limit int64) bool {
	return heldBytes()+n <= limit
}

// While requests are turned away, one warn line a second says how many
// were, instead of one line each: a flood must not become a flood of logs.
var (
	busySinceLog atomic.Int64 // requests turned away since the last line
	busyLoggedAt atomic.Int64 // when the last line was written, unix nanoseconds
)

// logBusy counts a request turned away and, once a second, writes the line
// and hands the memory the turned-away bodies left back to the system:
// between two garbage collections it would otherwise stay in the process,
// on top of the budget (the same move as Envoy's overload action
// shrink_heap).
func (h *Handler) logBusy() {
	busySinceLog.Add(1)
	now := time.Now().UnixNano()
	last := busyLoggedAt.Load()
	if now-last < int64(time.Second) || !busyLoggedAt.CompareAndSwap(last, now) {
		return
	}
	go debug.FreeOSMemory()
	h.logger.Warn("request bodies over max_buffered; turning requests away with 503",
		zap.Int64("turned_away", busySinceLog.Swap(0)),
		zap.Int64("buffered_bytes", heldBytes()),
		zap.Int64("max_buffered", h.MaxBuffered),
	)
}
