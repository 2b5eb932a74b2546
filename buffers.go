package groqwebhook

import (
	"math/bits"
	"sync"
	"sync/atomic"
	"time"
)

// Body buffers are reused: at a 64 KiB body, a fresh buffer per request
// costs more than the HMAC. They are kept in free lists by size, so that a
// small body is never charged for a big buffer. The lists are not a
// sync.Pool, which every garbage collection empties: under a flood of
// requests the collector runs many times a second, every buffer would be
// allocated again after each run, and that garbage, not the budget, would
// decide how much memory the process takes.
//
// A free buffer stays charged to the budget (budget.go), so that buffers in
// use and free together never pass max_buffered. When a body needs bytes
// the budget does not have, free buffers are given up to make room, and a
// free buffer unused for a whole trimInterval is given up too, so an idle
// process does not keep the memory of a past burst.

const (
	// initialBuffer is the most a body's first buffer holds.
	initialBuffer = 64 << 10

	// Buffers of 1 KiB << i, for i in 0..len(freeBuffers)-1, are kept
	// for reuse: up to 4 MiB. Bigger ones are left to the garbage collector.
	minBufferShift = 10
	maxBufferShift = 22

	// trimInterval is how long a free buffer may go unused before it is
	// given back.
	trimInterval = 10 * time.Second
)

type bodyBuffer struct{ b []byte }

// freeList holds free buffers of one size.
type freeList struct {
	mu        sync.Mutex
	buffers   []*bodyBuffer
	low       int  // the fewest it held since the last trim
	scheduled bool // a trim is due
}

var freeBuffers [maxBufferShift - minBufferShift + 1]freeList

// freeBytes is the part of the budget that free buffers hold.
var freeBytes atomic.Int64

// bufferSize rounds n up to a size a buffer is made in: a power of two, at
// least 1 KiB.
func bufferSize(n int64) int64 {
	if n <= 1<<minBufferShift {
		return 1 << minBufferShift
	}
	return 1 << bits.Len64(uint64(n-1))
}

// freeListFor returns the free list for buffers of capacity c, or nil.
func freeListFor(c int64) *freeList {
	if c < 1<<minBufferShift || c > 1<<maxBufferShift || c&(c-1) != 0 {
		return nil
	}
	return &freeBuffers[bits.Len64(uint64(c))-1-minBufferShift]
}

// takeBuffer returns an empty buffer of capacity size, charged to the
// budget, if what bodies hold stays under limit: a free one if there is
// one, else a new one, after giving up free buffers of other sizes if the
// budget has no room for it.
func takeBuffer(size, limit int64) (*bodyBuffer, bool) {
	if heldBytes()+size > limit {
		return nil, false
	}
	l := freeListFor(size)
	if l != nil {
		if buf := l.pop(); buf != nil {
			freeBytes.Add(-size)
			return buf, true
		}
	}
	for !acquireBuffered(size, limit) {
		if !evictFree(bufferedBytes.Load() + size - limit) {
			return nil, false
		}
	}
	return &bodyBuffer{b: make([]byte, 0, size)}, true
}

// putBuffer takes back a charged buffer: onto its free list, or, for a size
// that is not kept, out of the budget.
func putBuffer(buf *bodyBuffer) {
	size := int64(cap(buf.b))
	l := freeListFor(size)
	if l == nil {
		releaseBuffered(size)
		return
	}
	buf.b = buf.b[:0]
	freeBytes.Add(size)
	l.push(buf)
}

func (l *freeList) pop() *bodyBuffer {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(l.buffers)
	if n == 0 {
		return nil
	}
	buf := l.buffers[n-1]
	l.buffers[n-1] = nil
	l.buffers = l.buffers[:n-1]
	l.low = min(l.low, n-1)
	return buf
}

func (l *freeList) push(buf *bodyBuffer) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buffers = append(l.buffers, buf)
	if !l.scheduled {
		l.scheduled = true
		l.low = len(l.buffers)
		time.AfterFunc(trimInterval, l.trim)
	}
}

// drop gives up to n buffers of the list out of the budget, and returns
// how many bytes that freed.
func (l *freeList) drop(n int) int64 {
	n = min(n, len(l.buffers))
	var freed int64
	for _, buf := range l.buffers[:n] {
		freed += int64(cap(buf.b))
	}
	clear(l.buffers[:n])
	l.buffers = append(l.buffers[:0], l.buffers[n:]...)
	freeBytes.Add(-freed)
	releaseBuffered(freed)
	return freed
}

// trim gives up the buffers that were free the whole interval, and looks
// again later while any are left.
func (l *freeList) trim() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.drop(l.low)
	l.low = len(l.buffers)
	if len(l.buffers) == 0 {
		l.scheduled = false
		return
	}
	time.AfterFunc(trimInterval, l.trim)
}

// evictFree gives up free buffers, largest first, until need bytes are
// freed, and reports whether any were.
func evictFree(need int64) bool {
	need = max(need, 1)
	var freed int64
	for i := len(freeBuffers) - 1; i >= 0 && freed < need; i-- {
		l := &freeBuffers[i]
		size := int64(1) << (minBufferShift + i)
		l.mu.Lock()
		freed += l.drop(int((need - freed + size - 1) / size))
		l.low = min(l.low, len(l.buffers))
		l.mu.Unlock()
	}
	return freed > 0
}
