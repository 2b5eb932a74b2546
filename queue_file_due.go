package groqwebhook

import (
	"bytes"
	"container/heap"
	"encoding/hex"
)

// dueIndex is the file store's in-memory copy of its d/ keys that are not
// in flight, ordered as the keys are: by due time, then id. Take reads it
// instead of iterating the database, whose d/ range, after
// many deliveries, is mostly tombstones until a compaction drops them.
// It holds 24 bytes per waiting event and no pointers, so the garbage
// collector never scans it; its size is bounded by max_events.
type dueIndex []dueEntry

type dueEntry struct {
	at int64    // unix nanoseconds, as in the d/ key
	id [16]byte // the event id, decoded from its 32 hex characters
}

func newDueEntry(at int64, id string) (dueEntry, bool) {
	e := dueEntry{at: at}
	_, err := hex.Decode(e.id[:], []byte(id))
	return e, err == nil && len(id) == idLen
}

func (e dueEntry) ID() string { return hex.EncodeToString(e.id[:]) }

func (e dueEntry) less(o dueEntry) bool {
	if e.at != o.at {
		return e.at < o.at
	}
	return bytes.Compare(e.id[:], o.id[:]) < 0
}

// heap.Interface, for container/heap only.
func (x dueIndex) Len() int           { return len(x) }
func (x dueIndex) Less(i, j int) bool { return x[i].less(x[j]) }
func (x dueIndex) Swap(i, j int)      { x[i], x[j] = x[j], x[i] }
func (x *dueIndex) Push(e any)        { *x = append(*x, e.(dueEntry)) }
func (x *dueIndex) Pop() any {
	old := *x
	e := old[len(old)-1]
	*x = old[:len(old)-1]
	return e
}

// add adds an event due at at; an id that is not one of ours is ignored.
func (x *dueIndex) add(at int64, id string) {
	if e, ok := newDueEntry(at, id); ok {
		heap.Push(x, e)
	}
}

// remove removes the entry of id due at at, if there is one. It looks
// through the whole index: only an event changed without being taken (not
// something the engine does) needs it.
func (x *dueIndex) remove(at int64, id string) {
	e, ok := newDueEntry(at, id)
	if !ok {
		return
	}
	for i := range *x {
		if (*x)[i] == e {
			heap.Remove(x, i)
			return
		}
	}
}

// first returns the entry due soonest.
func (x dueIndex) first() (dueEntry, bool) {
	if len(x) == 0 {
		return dueEntry{}, false
	}
	return x[0], true
}

// popDue removes and returns the entry due soonest if it is due by now.
func (x *dueIndex) popDue(now int64) (dueEntry, bool) {
	if len(*x) == 0 || (*x)[0].at > now {
		return dueEntry{}, false
	}
	return heap.Pop(x).(dueEntry), true
}

// oldestID returns the smallest id: ids begin with their receipt time.
func (x dueIndex) oldestID() ([16]byte, bool) {
	var oldest [16]byte
	for i, e := range x {
		if i == 0 || bytes.Compare(e.id[:], oldest[:]) < 0 {
			oldest = e.id
		}
	}
	return oldest, len(x) > 0
}
